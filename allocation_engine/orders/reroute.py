"""What a reroute asks the allocator for: the units no live parcel carries, as an order of
their own, fenced as the original order is and away from the nodes that failed it.

Pure: the workflow step that acts on it is `service/orders/rerouting.py`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from allocation_engine.engine.order import Order, OrderLine
from allocation_engine.orders.model import OrderRecord, ShipmentItem


@dataclass(frozen=True)
class Refusal:
    """Why the rest of an order cannot go out as more parcels (a fence of the order)."""

    reason: str


def excluded_nodes(record: OrderRecord) -> frozenset[str]:
    """Nodes that rejected a parcel of this order or picked one short: none is asked again."""
    return frozenset(s.node_id for s in record.shipments if s.reason)


def rest_order(
    record: OrderRecord, rest: tuple[ShipmentItem, ...], shipment_limit: int | None
) -> Order | Refusal:
    """The order to allocate `rest` (units of `record` no live parcel carries) as, or why the
    order's fences forbid it (see `rest_of`)."""
    live = record.live_shipments
    return rest_of(
        record.order,
        {x.sku: x.quantity for x in rest},
        Parcels(len(live), frozenset(x.sku for s in live for x in s.lines)),
        excluded_nodes(record),
        record.reroutes + 1,
        shipment_limit,
    )


@dataclass(frozen=True)
class Parcels:
    """The parcels of an order that are out (released or shipped): how many, carrying what."""

    count: int
    skus: frozenset[str]


def rest_of(
    order: Order,
    rest: dict[str, int],
    out: Parcels,
    excluded: frozenset[str],
    attempt: int,
    shipment_limit: int | None,
) -> Order | Refusal:
    """`rest` (sku -> units of `order` no parcel out carries) as an order of its own, the
    `attempt`-th reroute of `order`, kept off the `excluded` nodes; or why the fences forbid it.

    `shipment_limit` is what the rule set allows the whole order (1 under ship complete): the
    parcels out count against it. A ship-together group leaves from one node, so a group with
    some units already in a parcel cannot be completed by another.
    """
    if shipment_limit is not None and out.count >= shipment_limit:
        what = "ship complete" if shipment_limit == 1 else f"at most {shipment_limit} parcels"
        return Refusal(f"{what}: {out.count} parcel(s) already out for this order")
    lines = tuple(
        OrderLine(line.sku, rest[line.sku], line.ship_group)
        for line in order.lines
        if line.sku in rest
    )
    for line in order.lines:
        if line.ship_group is None or line.sku not in out.skus:
            continue
        if any(x.ship_group == line.ship_group for x in lines):
            return Refusal(
                f"ship-together group {line.ship_group!r} already has units in a parcel; "
                "the rest cannot follow in another"
            )
    return replace(
        order,
        id=f"{order.id}~R{attempt}",
        lines=lines,
        excluded_nodes=excluded,
        max_shipments=None if shipment_limit is None else shipment_limit - out.count,
    )
