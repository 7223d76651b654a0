"""The parcels' way out: the 3PL's shipment and delivery reports, and resuming a workflow.

Each report moves one shipment, then the order by whether it was the last one (`ship_some` or
`ship_rest`). A shipped parcel fulfils its node's part of the stock reservation at once, so the
node's on_hand and reserved go down together while the other parcels still wait.
"""

from __future__ import annotations

from allocation_engine.errors import NotFound, ProblemCollector
from allocation_engine.orders.commands import RecordDelivery, RecordShipment, ResumeOrder
from allocation_engine.orders.draft import DELIVERED, SHIPPED, Draft
from allocation_engine.orders.events import EventType
from allocation_engine.orders.model import OrderRecord, Shipment
from allocation_engine.service.orders.core import FlowCore


def record_shipment(core: FlowCore, command: RecordShipment) -> OrderRecord:
    """A parcel left its node with a carrier and a tracking number."""
    problems = ProblemCollector()
    if not command.carrier.strip():
        problems.add("carrier", command.carrier, "must be given")
    if not command.tracking_number.strip():
        problems.add("tracking_number", command.tracking_number, "must be given")
    problems.raise_if_any()

    def ship(d: Draft) -> None:
        moved = d.shipment_to(
            _shipment(d.record, command.shipment_id),
            "ship",
            carrier=command.carrier,
            tracking_number=command.tracking_number,
            shipped_at=d.now,
        )
        everything = all(s.state in SHIPPED for s in d.record.shipments)
        d.order_to("ship_rest" if everything else "ship_some")
        core.gateways.stock.ship(d.record.reservation_id, moved.node_id, everything)
        d.emit(
            EventType.SHIPMENT_SHIPPED,
            channel=d.record.channel,  # whom the outbox confirms the parcel to
            external_id=d.record.external_id,
            shipment_id=moved.id,
            node_id=moved.node_id,
            carrier=moved.carrier,
            tracking_number=moved.tracking_number,
            lines=[{"sku": x.sku, "quantity": x.quantity} for x in moved.lines],
        )

    return core.change(command.order_id, command.idempotency_key, command, ship)


def record_delivery(core: FlowCore, command: RecordDelivery) -> OrderRecord:
    """A parcel reached its destination, as the carrier reports it."""

    def deliver(d: Draft) -> None:
        shipment = _shipment(d.record, command.shipment_id)
        moved = d.shipment_to(shipment, "deliver", delivered_at=d.now)
        everything = all(s.state in DELIVERED for s in d.record.shipments)
        d.order_to("deliver_rest" if everything else "deliver_some")
        d.emit(EventType.SHIPMENT_DELIVERED, shipment_id=moved.id, carrier=moved.carrier)

    return core.change(command.order_id, command.idempotency_key, command, deliver)


def resume(core: FlowCore, command: ResumeOrder) -> OrderRecord:
    """Runs a blocked (or waiting) workflow again from its current step: the change loop runs
    the workflow on after every command, so resuming is a command that changes nothing else."""
    return core.change(command.order_id, command.idempotency_key, command, lambda d: None)


def _shipment(record: OrderRecord, shipment_id: str) -> Shipment:
    shipment = record.shipment(shipment_id)
    if shipment is None:
        raise NotFound("shipment_id", shipment_id)
    return shipment
