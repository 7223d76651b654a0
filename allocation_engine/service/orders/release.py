"""Handing a parcel to its node: the release transition and the pick list it carries.

The outbox turns each `SHIPMENT_RELEASED` event into the pick list the node's WMS receives;
the workflow's release step, its wait for the parcels and a reroute all release parcels this
way. A parcel holding units of incoming supply (a backorder, a pre-order) is not released
before they are on the shelf: it is promised the day they are expected, and promised again
when that day moves.
"""

from __future__ import annotations

from typing import Any

from allocation_engine.orders.draft import Draft
from allocation_engine.orders.events import EventType
from allocation_engine.orders.machines import ORDER, ShipmentState
from allocation_engine.orders.model import Shipment, ShipmentItem
from allocation_engine.ports.stock import StockHold
from allocation_engine.service.orders.gateways import Gateways


def new_parcels(d: Draft, hold: StockHold, reservation_id: str = "") -> tuple[Shipment, ...]:
    """The parcels of a fresh hold, numbered on from the order's others (`<order>-S<n>`), held
    by `reservation_id` ("" = the order's own), added to the order."""
    first = len(d.record.shipments) + 1
    parcels = tuple(
        Shipment(
            f"{d.record.id}-S{first + i}",
            node_id,
            lines,
            reservation_id=reservation_id,
            ready_on=ready_on,
        )
        for i, (node_id, lines, ready_on) in enumerate(hold.shipments)
    )
    d.update(shipments=d.record.shipments + parcels)
    return parcels


def promise_waiting(d: Draft, parcels: tuple[Shipment, ...]) -> None:
    """Tells the customer the day each new parcel waiting for supply is to leave."""
    for parcel in parcels:
        if parcel.ready_on:
            _backordered(d, parcel, "")


def release_ready(gateways: Gateways, d: Draft) -> None:
    """Releases every pending parcel whose units are all on the shelf, and promises again the
    ones waiting for supply whose expected day moved; the order counts as released from its
    first released parcel on. Only a parcel that was promised a day asks the store (most
    parcels come off the shelf and are released at once)."""
    for shipment in d.record.shipments:
        if shipment.state is not ShipmentState.PENDING:
            continue
        if not shipment.ready_on:
            release(d, shipment)
            continue
        awaited = gateways.stock.awaiting(d.record.reservation_of(shipment), shipment.node_id)
        if not awaited.ready_on:
            release(d, shipment)
        elif awaited.ready_on != shipment.ready_on:
            promised = d.shipment_to(shipment, "promise", ready_on=awaited.ready_on)
            _backordered(d, promised, shipment.ready_on)
    released = any(s.state is ShipmentState.RELEASED for s in d.record.shipments)
    if released and ORDER.allows(d.record.state, "release"):
        d.order_to("release")


def _backordered(d: Draft, parcel: Shipment, previous: str) -> None:
    """The customer's promise for a parcel waiting for supply (`previous`: the day it moved
    from)."""
    d.emit(
        EventType.SHIPMENT_BACKORDERED,
        shipment_id=parcel.id,
        node_id=parcel.node_id,
        ready_on=parcel.ready_on,
        previous=previous,
        lines=lines_data(parcel.lines),
    )


def release(d: Draft, shipment: Shipment) -> Shipment:
    """Releases a pending parcel to its node's WMS."""
    moved = d.shipment_to(shipment, "release")
    d.emit(EventType.SHIPMENT_RELEASED, **pick_list_data(d, moved))
    return moved


def pick_list_data(d: Draft, shipment: Shipment) -> dict[str, Any]:
    """The pick list of one parcel as event data (the outbox hands it to the WMS)."""
    a = d.record.address
    return {
        "shipment_id": shipment.id,
        "order_id": d.record.id,
        "external_order_id": d.record.external_id,
        "node_id": shipment.node_id,
        "lines": [
            {
                "sku": line.sku,
                "quantity": line.quantity,
                "name": (item.name if (item := d.record.item(line.sku)) else "") or line.sku,
            }
            for line in shipment.lines
        ],
        "ship_to": {
            "name": a.name,
            "street": a.street,
            "postal_code": a.postal_code,
            "city": a.city,
            "country": a.country,
        },
        "delivery_mode": d.record.order.delivery_mode.value,
    }


def parcels_data(shipments: tuple[Shipment, ...]) -> list[dict[str, Any]]:
    """Parcels as event data: id, node and units."""
    return [{"id": s.id, "node_id": s.node_id, "lines": lines_data(s.lines)} for s in shipments]


def lines_data(lines: tuple[ShipmentItem, ...]) -> list[dict[str, Any]]:
    """Units of a parcel as event data."""
    return [{"sku": line.sku, "quantity": line.quantity} for line in lines]
