"""Handing a parcel to its node: the release transition and the pick list it carries.

The outbox turns each `SHIPMENT_RELEASED` event into the pick list the node's WMS receives;
both the workflow's release step and a reroute release parcels this way.
"""

from __future__ import annotations

from typing import Any

from allocation_engine.orders.draft import Draft
from allocation_engine.orders.events import EventType
from allocation_engine.orders.model import Shipment, ShipmentItem


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
