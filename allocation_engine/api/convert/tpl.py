"""A 3PL's shipment report (`service.feeds.tpl`) -> the OrderService request it amounts to,
under the report's own idempotency key."""

from __future__ import annotations

from allocation_engine.proto.allocation.v1 import allocation_pb2 as apb
from allocation_engine.proto.allocation.v1 import orders_pb2 as opb
from allocation_engine.service.feeds.tpl import ShipmentReport


def record_request(report: ShipmentReport) -> opb.RecordShipmentRequest:
    """A shipped parcel: its lines are the units that left (empty: as planned)."""
    return opb.RecordShipmentRequest(
        order_id=report.order_id,
        shipment_id=report.shipment_id,
        carrier=report.carrier,
        tracking_number=report.tracking,
        idempotency_key=report.idempotency_key,
        lines=[apb.ShipmentLine(sku=x.sku, quantity=x.quantity) for x in report.lines],
    )


def reject_request(report: ShipmentReport) -> opb.RejectShipmentRequest:
    """A rejected parcel, with its reason and note."""
    return opb.RejectShipmentRequest(
        order_id=report.order_id,
        shipment_id=report.shipment_id,
        reason=opb.RejectReason.Value(f"REJECT_REASON_{report.reason.upper()}"),
        idempotency_key=report.idempotency_key,
        note=report.note,
    )
