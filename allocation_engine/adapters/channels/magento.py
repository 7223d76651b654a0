"""Magento 2 / Adobe Commerce: orders polled over the REST API, shipments created back.

Follows the Adobe Commerce 2.4 REST API (`/rest/V1`, or `/rest/<store_code>/V1` when the
`store_code` option names a store view). Every call carries `Authorization: Bearer <token>`,
the integration access token (credential `access_token`; an integration's token is used as a
bearer token since 2.4.4 once "Allow OAuth Access Tokens to be used as standalone Bearer
tokens" is on, or an admin token). Magento Open Source pushes no order webhook (Adobe
Commerce's webhooks and I/O Events need Adobe's own modules), so orders are polled and there is
no signature to verify.

Inbound (`OrderImporter`): `GET /rest/V1/orders` with `searchCriteria`: filter group 0
`created_at gteq <t>`, filter group 1 (once the cursor holds an id) `created_at gt <t>` OR
`entity_id gt <id>` (filter groups AND, filters inside a group OR, so together: created after t,
or at t with a higher id), `sortOrders` `created_at ASC` then `entity_id ASC`, `pageSize`
(option `page_size`, default 50) and `currentPage=1`. The cursor is `<created_at>|<entity_id>`
of the last order returned, so orders sharing a second are neither skipped nor repeated; ""
starts at the `created_after` option (ISO 8601, required). `created_at` is UTC in the form
`YYYY-MM-DD HH:MM:SS`. `more` is `total_count` above the page. Orders in state `canceled` or
`closed` are passed over. 429 and 5xx are retried by the HTTP client (Magento itself has no rate
limit headers).

Mapping: `external_id` = `entity_id` (the id the REST API takes back; the customer-facing
`increment_id` such as "000001042" is not used). A line per order item that ships on its own:
an item that is the parent of another (a configurable's or a bundle's parent row) is passed
over, and so is a virtual or downloadable item (`is_virtual`). The child of a configurable
takes the parent row's price and discount (Magento books them there, the child shows 0).
Line sku = `sku` (the simple product's; `product_id` when empty), quantity = `qty_ordered`
(whole units only), unit price = `price_incl_tax` (else `price`) less `discount_amount` / qty,
in minor units of `order_currency_code`, rounded half up. Ship-to =
`extension_attributes.shipping_assignments[0].shipping.address` (`firstname` + `lastname`,
`company`, `street` lines joined, `postcode`, `city`, `country_id`; no coordinates). Customer:
`customer_id` (none for guests), `customer_email`, `customer_firstname` + `customer_lastname`.
Tax id = the address's `vat_id`, else the billing address's, else `customer_taxvat`. `b2b`
when there is a company and a tax id, or when `customer_group_id` is one of the
`b2b_group_ids` option. `paid` when `total_paid` covers `grand_total` (an invoice captured
the money). Not mapped: the store view's language, gift messages, bundle price splits (children
of a fixed-price bundle come at 0), decimal quantities (refused with InvalidInput).

Outbound (`ShipmentConfirmer`): `GET /rest/V1/orders/{entity_id}` for the item ids, then `GET
/rest/V1/shipments` filtered `order_id eq <entity_id>`: a shipment already holding our
tracking number, or our shipment id in a comment, means the parcel was confirmed and nothing
is sent. Otherwise `POST /rest/V1/order/{entity_id}/ship` with `items` [{`order_item_id`,
`qty`}] (a configurable child ships through its parent row, as Magento requires), `tracks`
[{`track_number`, `title`, `carrier_code`}] (`dhl`, `ups`, `fedex`, `usps` or `custom` with our
carrier name as `title`), `notify` and a `comment` naming our shipment id. Magento does not
deduplicate that POST, so it is sent once, never retried by the client: an unanswered POST
raises PeerUnavailable and the next confirm finds the shipment if it was made.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from allocation_engine.adapters.channels import Connection
from allocation_engine.adapters.channels.money import minor_units, unit_price
from allocation_engine.adapters.channels.options import OptionReader
from allocation_engine.adapters.channels.payload import api_object, dig, full_name
from allocation_engine.adapters.http_client import HttpClient, RetryPolicy
from allocation_engine.errors import InvalidInput, PeerUnavailable, ProblemCollector
from allocation_engine.ports.channels import (
    ChannelAddress,
    ChannelLine,
    ChannelOrder,
    ChannelSettings,
    ImportPage,
    ParcelShipped,
)

CREDENTIALS: tuple[str, ...] = ("access_token",)
OPTIONS: dict[str, bool] = {
    "created_after": True,
    "store_code": False,
    "page_size": False,
    "b2b_group_ids": False,
}

TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
"""How Magento writes `created_at` (UTC) and reads it back in a filter value."""

PASSED_OVER_STATES = frozenset({"canceled", "closed"})
CARRIER_CODES = {"dhl": "dhl", "ups": "ups", "fedex": "fedex", "usps": "usps"}
"""Our carrier name (lower-case) -> Magento's built-in carrier code; any other is `custom`."""


def connect(
    settings: ChannelSettings, secrets: Mapping[str, str], *, retry: RetryPolicy | None = None
) -> Connection:
    """The importer and the confirmer of one Magento store, both behind one bearer token."""
    channel = MagentoChannel(settings, secrets, retry=retry)
    return Connection(importer=channel, confirmer=channel)


class MagentoChannel:
    """Polls one Magento store's orders and creates its shipments."""

    def __init__(
        self,
        settings: ChannelSettings,
        secrets: Mapping[str, str],
        *,
        retry: RetryPolicy | None = None,
    ) -> None:
        read = OptionReader(settings, secrets)
        token = read.secrets(CREDENTIALS)["access_token"]
        self._start = read.time("created_after").strftime(TIME_FORMAT)
        self._page_size = read.count("page_size", 50)
        groups = settings.options.get("b2b_group_ids", ())
        if isinstance(groups, str) or not isinstance(groups, Sequence):
            read.problems.add("options.b2b_group_ids", groups, "expected a list of group ids")
            groups = ()
        read.done()
        self.name = settings.name
        self._b2b_groups = frozenset(str(g) for g in groups)
        store = read.text("store_code")
        self._prefix = f"/rest/{store}/V1" if store else "/rest/V1"
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        self._http = HttpClient(settings.base_url, headers=headers, retry=retry)
        # POST /ship is not deduplicated by Magento: one attempt, the next confirm checks first.
        self._ship_http = HttpClient(
            settings.base_url, headers=headers, retry=RetryPolicy(attempts=1)
        )

    # --- OrderImporter -----------------------------------------------------------------------

    def fetch(self, cursor: str) -> ImportPage:
        """The orders created after `cursor`, oldest first, one page of `page_size`."""
        after, last_id = _read_cursor(cursor) if cursor else (self._start, 0)
        params: dict[str, Any] = {
            **_filter(0, 0, "created_at", after, "gteq"),
            "searchCriteria[sortOrders][0][field]": "created_at",
            "searchCriteria[sortOrders][0][direction]": "ASC",
            "searchCriteria[sortOrders][1][field]": "entity_id",
            "searchCriteria[sortOrders][1][direction]": "ASC",
            "searchCriteria[pageSize]": self._page_size,
            "searchCriteria[currentPage]": 1,
        }
        if last_id:
            params |= _filter(1, 0, "created_at", after, "gt")
            params |= _filter(1, 1, "entity_id", str(last_id), "gt")
        response = self._http.get(f"{self._prefix}/orders", params=params)
        body = api_object(response, "order search answer")
        items = body.get("items")
        if not isinstance(items, list):
            raise PeerUnavailable(f"{response.request.url}: the order search answered no items")
        orders: list[ChannelOrder] = []
        for index, raw in enumerate(items):
            try:
                after, last_id = _position(raw)
                if str(raw.get("state", "")) not in PASSED_OVER_STATES:
                    orders.append(read_order(raw, self._b2b_groups))
            except InvalidInput as bad:
                raise bad.under(f"items[{index}].") from None
        total = body.get("total_count", len(items))
        more = isinstance(total, int) and total > len(items)
        return ImportPage(tuple(orders), f"{after}|{last_id}" if items else cursor, more)

    # --- ShipmentConfirmer -------------------------------------------------------------------

    def confirm(self, parcel: ParcelShipped) -> None:
        """Creates the parcel's shipment with its track, unless an earlier confirm did."""
        order_id = parcel.external_id
        if self._confirmed(order_id, parcel):
            return
        order = self._http.get(f"{self._prefix}/orders/{order_id}").json()
        items = _ship_items(order, parcel)
        carrier = parcel.carrier.strip()
        body = {
            "items": items,
            "notify": True,
            "appendComment": True,
            "comment": {"comment": _comment(parcel), "is_visible_on_front": 0},
            "tracks": [
                {
                    "track_number": parcel.tracking_number,
                    "title": carrier,
                    "carrier_code": CARRIER_CODES.get(carrier.lower(), "custom"),
                }
            ],
        }
        self._ship_http.post(f"{self._prefix}/order/{order_id}/ship", json=body)

    def _confirmed(self, order_id: str, parcel: ParcelShipped) -> bool:
        """Whether a shipment of the order already carries the parcel's tracking number or
        names its shipment id in a comment."""
        params = _filter(0, 0, "order_id", order_id, "eq")
        found = self._http.get(f"{self._prefix}/shipments", params=params).json()
        marker = _comment(parcel)
        for shipment in found.get("items") or []:
            tracks = {str(t.get("track_number", "")) for t in shipment.get("tracks") or []}
            notes = {str(c.get("comment", "")) for c in shipment.get("comments") or []}
            if (parcel.tracking_number and parcel.tracking_number in tracks) or marker in notes:
                return True
        return False


# --- reading an order --------------------------------------------------------------------------


def read_order(raw: Any, b2b_groups: frozenset[str] = frozenset()) -> ChannelOrder:
    """One order of `GET /V1/orders` (or `/V1/orders/{id}`) as a ChannelOrder; `InvalidInput`
    naming every unreadable field by its path in the order."""
    if not isinstance(raw, Mapping):
        raise InvalidInput.one("", raw, "an order is a JSON object")
    problems = ProblemCollector()
    entity_id = raw.get("entity_id")
    if not _is_id(entity_id):
        problems.add("entity_id", entity_id, "expected the order's numeric id")
    currency = raw.get("order_currency_code")
    if not isinstance(currency, str) or len(currency) != 3 or not currency.isalpha():
        problems.add("order_currency_code", currency, "expected an ISO 4217 code")
        currency = "EUR"  # only to read the rest; the order is refused above
    lines = _lines(raw.get("items"), currency, problems)
    address = _shipping_address(raw, problems)
    given = raw.get("billing_address")
    billing: Mapping[str, Any] = given if isinstance(given, Mapping) else {}
    company = str(address.get("company") or billing.get("company") or "").strip()
    tax_id = str(
        address.get("vat_id") or billing.get("vat_id") or raw.get("customer_taxvat") or ""
    ).strip()
    paid = _paid(raw, currency, problems)
    problems.raise_if_any()
    street = address.get("street") or []
    group = raw.get("customer_group_id")
    return ChannelOrder(
        external_id=str(entity_id),
        lines=tuple(lines),
        ship_to=ChannelAddress(
            name=full_name(address, "firstname", "lastname"),
            street=", ".join(str(s) for s in street) if isinstance(street, list) else str(street),
            postal_code=str(address.get("postcode") or ""),
            city=str(address.get("city") or ""),
            country=str(address.get("country_id") or "").upper(),
            company=str(address.get("company") or ""),
        ),
        currency=currency.upper(),
        customer_id=str(raw.get("customer_id") or ""),
        email=str(raw.get("customer_email") or ""),
        customer_name=full_name(raw, "customer_firstname", "customer_lastname"),
        company=company,
        tax_id=tax_id,
        b2b=bool(company and tax_id) or (group is not None and str(group) in b2b_groups),
        paid=paid,
    )


def _lines(items: Any, currency: str, problems: ProblemCollector) -> list[ChannelLine]:
    """The order items that ship on their own, priced per unit after the line discount."""
    if not isinstance(items, list) or not items:
        problems.add("items", items, "expected a non-empty list of order items")
        return []
    by_id = {_key(i.get("item_id")): i for i in items if isinstance(i, Mapping)}
    parents = {_key(i.get("parent_item_id")) for i in by_id.values()} - {None}
    lines = []
    for index, item in enumerate(items):
        at = f"items[{index}]"
        if not isinstance(item, Mapping):
            problems.add(at, item, "an order item is a JSON object")
            continue
        if _key(item.get("item_id")) in parents or _truthy(item.get("is_virtual")):
            continue
        parent_id = _key(item.get("parent_item_id"))
        parent = (by_id.get(parent_id) if parent_id else None) or {}
        priced, priced_at = (item, at)
        if parent.get("product_type") == "configurable":
            priced, priced_at = parent, f"items[{items.index(parent)}]"
        quantity = _quantity(item.get("qty_ordered"), f"{at}.qty_ordered", problems)
        sku = str(item.get("sku") or item.get("product_id") or "").strip()
        if not sku:
            problems.add(f"{at}.sku", item.get("sku"), "an order item needs a sku or product_id")
        price_field = "price_incl_tax" if priced.get("price_incl_tax") is not None else "price"
        try:
            price: Any = priced.get(price_field)
            unit = minor_units(price, currency, f"{priced_at}.{price_field}")
            discount = minor_units(
                priced.get("discount_amount") or 0,
                currency,
                f"{priced_at}.discount_amount",
                signed=True,  # Magento writes an item's discount positive, an order's negative
            )
        except InvalidInput as bad:
            problems.extend(bad.problems)
            continue
        if quantity:
            row = unit * quantity - abs(discount)
            net = max(unit_price(row, quantity), 0)
            lines.append(ChannelLine(sku, quantity, net, str(item.get("name") or "")))
    return lines


def _shipping_address(raw: Mapping[str, Any], problems: ProblemCollector) -> Mapping[str, Any]:
    """`extension_attributes.shipping_assignments[0].shipping.address`, checked for the parts
    a parcel needs."""
    at = "extension_attributes.shipping_assignments[0].shipping.address"
    node = dig(raw, "extension_attributes", "shipping_assignments", 0, "shipping", "address")
    if not isinstance(node, Mapping):
        problems.add(at, node, "the order has no shipping address (a virtual order?)")
        return {}
    country = node.get("country_id")
    if not isinstance(country, str) or len(country) != 2 or not country.isalpha():
        problems.add(f"{at}.country_id", country, "expected an ISO 3166-1 alpha-2 code")
    if not str(node.get("postcode") or "").strip():
        problems.add(f"{at}.postcode", node.get("postcode"), "a shipping address needs one")
    return node


def _paid(raw: Mapping[str, Any], currency: str, problems: ProblemCollector) -> bool:
    """Whether an invoice captured the whole `grand_total` (`total_paid` covers it)."""
    if raw.get("total_paid") is None:
        return False
    try:
        total = minor_units(raw.get("grand_total", 0), currency, "grand_total")
        paid = minor_units(raw["total_paid"], currency, "total_paid")
    except InvalidInput as bad:
        problems.extend(bad.problems)
        return False
    return paid >= total > 0


def _quantity(value: Any, field: str, problems: ProblemCollector) -> int:
    """A whole, positive `qty_ordered` (Magento writes 2 or 2.0 or "2.0000"); 0 when bad."""
    try:
        amount = Decimal(repr(value) if isinstance(value, float) else str(value))
    except InvalidOperation:
        amount = Decimal("NaN")
    if isinstance(value, bool) or not amount.is_finite() or amount != amount.to_integral_value():
        problems.add(field, value, "expected a whole number of units")
        return 0
    if amount < 1:
        problems.add(field, value, "expected at least one unit")
        return 0
    return int(amount)


# --- confirming a parcel -----------------------------------------------------------------------


def _ship_items(order: Mapping[str, Any], parcel: ParcelShipped) -> list[dict[str, int]]:
    """The parcel's lines as `{order_item_id, qty}` of the rows Magento ships, spreading a
    sku's units over its items by what each has left to ship."""
    items = [i for i in order.get("items") or [] if isinstance(i, Mapping)]
    by_id = {i.get("item_id"): i for i in items}
    parents = {i.get("parent_item_id") for i in items if i.get("parent_item_id")}
    left: dict[int, int] = {}
    rows: dict[str, list[int]] = {}
    for item in items:
        if item.get("item_id") in parents or _truthy(item.get("is_virtual")):
            continue
        parent = by_id.get(item.get("parent_item_id")) or {}
        row = parent if parent.get("product_type") == "configurable" else item
        row_id = int(row["item_id"])
        left[row_id] = int(Decimal(str(row.get("qty_ordered") or 0))) - int(
            Decimal(str(row.get("qty_shipped") or 0))
        )
        sku = str(item.get("sku") or item.get("product_id") or "")
        rows.setdefault(sku, []).append(row_id)
    shipped: dict[int, int] = {}
    problems = ProblemCollector()
    for index, line in enumerate(parcel.lines):
        wanted = line.quantity
        for row_id in rows.get(line.sku, []):
            take = min(wanted, left[row_id] - shipped.get(row_id, 0))
            if take > 0:
                shipped[row_id] = shipped.get(row_id, 0) + take
                wanted -= take
        if wanted > 0:
            problems.add(
                f"lines[{index}]",
                f"{line.sku} x {line.quantity}",
                f"more than Magento order {parcel.external_id} has left to ship of that sku",
            )
    problems.raise_if_any()
    return [{"order_item_id": row_id, "qty": qty} for row_id, qty in shipped.items()]


def _comment(parcel: ParcelShipped) -> str:
    """The shipment comment that names our parcel, so a later confirm recognises it."""
    return f"Parcel {parcel.shipment_id} shipped from {parcel.node_id}"


# --- small readers -----------------------------------------------------------------------------


def _filter(group: int, index: int, field: str, value: str, condition: str) -> dict[str, str]:
    """One `searchCriteria` filter as Magento's bracketed query parameters."""
    key = f"searchCriteria[filter_groups][{group}][filters][{index}]"
    return {f"{key}[field]": field, f"{key}[value]": value, f"{key}[condition_type]": condition}


def _read_cursor(cursor: str) -> tuple[str, int]:
    """`<created_at>|<entity_id>` back into its parts; `InvalidInput` for anything else."""
    moment, _, last = cursor.rpartition("|")
    try:
        datetime.strptime(moment, TIME_FORMAT)
        return moment, int(last)
    except ValueError:
        raise InvalidInput.one("cursor", cursor, "expected '<created_at>|<entity_id>'") from None


def _position(raw: Any) -> tuple[str, int]:
    """Where a listed order puts the cursor: its `created_at` and `entity_id`, or
    `InvalidInput` naming the one that cannot be read."""
    if not isinstance(raw, Mapping):
        raise InvalidInput.one("", raw, "an order is a JSON object")
    created_at, entity_id = raw.get("created_at"), raw.get("entity_id")
    try:
        datetime.strptime(str(created_at), TIME_FORMAT)
    except ValueError:
        raise InvalidInput.one("created_at", created_at, "expected 'YYYY-MM-DD HH:MM:SS'") from None
    if not _is_id(entity_id):
        raise InvalidInput.one("entity_id", entity_id, "expected the order's numeric id")
    return str(created_at), int(str(entity_id))


def _is_id(value: Any) -> bool:
    """Whether `value` is a positive entity id (Magento writes them as numbers)."""
    return (
        isinstance(value, int | str)
        and not isinstance(value, bool)
        and str(value).isdigit()
        and int(value) > 0
    )


def _key(value: Any) -> str | None:
    """An item id or parent id as a key ("7" and 7 alike); None for none or for a value no
    id can be (a list, an object, a bool)."""
    if isinstance(value, int | str) and not isinstance(value, bool) and str(value).strip():
        return str(value).strip()
    return None


def _truthy(value: Any) -> bool:
    """Magento's flags come as 0/1, "0"/"1" or booleans."""
    return str(value).lower() in {"1", "true"}
