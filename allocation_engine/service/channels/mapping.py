"""From a platform's order to our `PlaceOrder`: the part every platform shares.

- Skus: the channel's mapping table turns a platform sku or variant id into ours; a line whose
  sku the table does not know is refused, naming the line, when the channel has a table (an
  unmapped line would be sourced as a sku no node stocks); without a table skus pass as they
  are. Lines that map to the same sku are merged (the engine takes each sku once); where their
  unit prices differ (a platform spreading a line total's odd cents over its units) the merged
  line's unit price is their average, rounded half up to the cent.
- Ship-to: the platform's coordinates when it sent them, else the postal code's centroid
  (`PostalCentroids`); an address that cannot be located is refused naming the field.
- Customer: the platform's customer id, namespaced by channel (two shops both have a customer
  1001), and the e-mail; a business buyer (`b2b`) becomes a B2B order.
- Click & collect when the platform names the store to collect from. (The channel's workflow
  and node types apply to its orders from every edge: `FlowCore.channel_workflows`, the
  planner's channel fences.)
"""

from __future__ import annotations

from collections.abc import Mapping

from allocation_engine.engine.order import CustomerType, DeliveryMode, ShipTo
from allocation_engine.errors import ProblemCollector
from allocation_engine.orders.commands import CustomerInfo, PlaceOrder
from allocation_engine.orders.model import LANGUAGES, Address, Item
from allocation_engine.ports.channels import ChannelOrder, ChannelSettings, PostalCentroids


def place_command(
    settings: ChannelSettings, order: ChannelOrder, centroids: PostalCentroids
) -> PlaceOrder:
    """The PlaceOrder `order` amounts to on channel `settings` (`InvalidInput` naming every
    line or field that cannot be mapped)."""
    problems = ProblemCollector()
    units: dict[str, int] = {}
    money: dict[str, int] = {}
    names: dict[str, str] = {}
    for i, line in enumerate(order.lines):
        sku = our_sku(settings, line.sku)
        if sku is None:
            problems.add(
                f"lines[{i}].sku", line.sku, f"not in the sku table of channel {settings.name}"
            )
            continue
        if line.quantity <= 0:
            problems.add(f"lines[{i}].quantity", line.quantity, "must be at least 1")
            continue
        units[sku] = units.get(sku, 0) + line.quantity
        money[sku] = money.get(sku, 0) + line.quantity * line.unit_price
        names.setdefault(sku, line.name)
    items = {
        sku: Item(sku, quantity, (2 * money[sku] + quantity) // (2 * quantity), names[sku])
        for sku, quantity in units.items()
    }
    if not order.lines:
        problems.add("lines", [], "the order has no lines")
    ship_to = _ship_to(order, centroids, problems)
    problems.raise_if_any()
    assert ship_to is not None
    a = order.ship_to
    return PlaceOrder(
        channel=settings.name,
        external_id=order.external_id,
        customer=CustomerInfo(
            id=f"{settings.name}:{order.customer_id}" if order.customer_id else "",
            email=order.email,
            name=order.customer_name or a.name,
            language=order.language if order.language in LANGUAGES else "",
        ),
        items=tuple(items.values()),
        ship_to=ship_to,
        address=Address(
            name=a.name if not a.company else f"{a.name}, {a.company}".strip(", "),
            street=a.street,
            postal_code=a.postal_code,
            city=a.city,
            country=a.country.upper(),
        ),
        currency=order.currency.upper(),
        customer_type=CustomerType.B2B if order.b2b else CustomerType.B2C,
        delivery_mode=(
            DeliveryMode.CLICK_AND_COLLECT
            if order.pickup_store_id
            else DeliveryMode.SHIP_TO_ADDRESS
        ),
        pickup_store_id=order.pickup_store_id or None,
    )


def _ship_to(
    order: ChannelOrder, centroids: PostalCentroids, problems: ProblemCollector
) -> ShipTo | None:
    a = order.ship_to
    country = a.country.strip().upper()
    if len(country) != 2 or not country.isalpha():
        problems.add("ship_to.country", a.country, "an ISO 3166-1 alpha-2 code such as DE")
        return None
    if a.latitude is not None and a.longitude is not None:
        return ShipTo(a.latitude, a.longitude, country, a.postal_code)
    located = centroids.locate(country, a.postal_code)
    if located is None:
        problems.add(
            "ship_to.postal_code",
            a.postal_code,
            f"no coordinates in the order and no centroid for this code in {country}",
        )
        return None
    return ShipTo(located[0], located[1], country, a.postal_code)


def our_sku(settings: ChannelSettings, sku: str) -> str | None:
    """Our sku for the platform's `sku`: from the channel's table, or `sku` itself when the
    channel has none; None when the table does not know it."""
    return settings.skus.get(sku) if settings.skus else sku


def platform_skus(settings: ChannelSettings) -> Mapping[str, str]:
    """Our sku -> the platform's (the first platform sku mapped to it), for confirmations."""
    back: dict[str, str] = {}
    for theirs, ours in settings.skus.items():
        back.setdefault(ours, theirs)
    return back
