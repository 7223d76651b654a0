"""The parcels' way out: the node's answers to a pick list (accepted, rejected, shipped in full
or short), the carrier's delivery reports, and resuming a workflow.

Each report moves one shipment, then the order by whether it was the last one (`ship_some` or
`ship_rest`). A shipped parcel fulfils its node's part of the stock reservation at once, so the
node's on_hand and reserved go down together while the other parcels still wait. A rejected
parcel gives its node's hold back (or writes it off, for "no stock" and "damaged"), and a short
one fulfils it whole (the units not found leave on_hand too: the node's count is corrected);
what did not leave is rerouted by the workflow's `await_shipment` step in the same write.
"""

from __future__ import annotations

from allocation_engine.errors import InvalidInput, NotFound, ProblemCollector
from allocation_engine.orders.commands import (
    REJECT_REASONS,
    AcceptShipment,
    RecordDelivery,
    RecordShipment,
    RejectShipment,
    ResumeOrder,
    SupplyChanged,
)
from allocation_engine.orders.draft import DELIVERED, SHIPPED, Draft
from allocation_engine.orders.events import EventType
from allocation_engine.orders.machines import ShipmentState
from allocation_engine.orders.model import FlowStatus, OrderRecord, Shipment, ShipmentItem
from allocation_engine.service.orders.core import FlowCore
from allocation_engine.service.orders.release import lines_data

WRITE_OFF = frozenset({"no_stock", "damaged"})
"""Rejections whose held units are not sellable at the node: they leave its on_hand."""

SHORT_PICK = "short_pick"
SUPPLY_CUT = "supply_cut"  # the purchase order or transfer it waited for was cut below it


def record_shipment(core: FlowCore, command: RecordShipment) -> OrderRecord:
    """A parcel left its node with a carrier and a tracking number, with every planned unit or
    (a short pick) with the `lines` given."""
    problems = ProblemCollector()
    if not command.carrier.strip():
        problems.add("carrier", command.carrier, "must be given")
    if not command.tracking_number.strip():
        problems.add("tracking_number", command.tracking_number, "must be given")
    problems.raise_if_any()

    def ship(d: Draft) -> None:
        shipment = _shipment(d.record, command.shipment_id)
        sent = _sent(shipment, command.lines)
        missing = _missing(shipment.lines, sent)
        moved = d.shipment_to(
            shipment,
            "ship",
            lines=sent,
            carrier=command.carrier,
            tracking_number=command.tracking_number,
            shipped_at=d.now,
            reason=SHORT_PICK if missing else "",
        )
        record = d.record
        everything = all(s.state in SHIPPED for s in record.live_shipments) and not (
            record.unrouted()
        )
        d.order_to("ship_rest" if everything else "ship_some")
        rid = record.reservation_of(moved)
        core.gateways.stock.ship(rid, moved.node_id, _last_of(record, rid))
        if missing:
            _rejected(d, moved, SHORT_PICK, missing)
        d.emit(
            EventType.SHIPMENT_SHIPPED,
            channel=d.record.channel,  # whom the outbox confirms the parcel to
            external_id=d.record.external_id,
            shipment_id=moved.id,
            node_id=moved.node_id,
            carrier=moved.carrier,
            tracking_number=moved.tracking_number,
            lines=lines_data(moved.lines),
        )

    return core.change(command.order_id, command.idempotency_key, command, ship)


def reject_shipment(core: FlowCore, command: RejectShipment) -> OrderRecord:
    """The parcel's node will not send it: its hold is given back (or written off) and its
    units are rerouted to other nodes in the same write."""
    if command.reason not in REJECT_REASONS:
        raise InvalidInput.one("reason", command.reason, f"must be one of {list(REJECT_REASONS)}")

    def reject(d: Draft) -> None:
        shipment = _shipment(d.record, command.shipment_id)
        moved = d.shipment_to(shipment, "reject", reason=command.reason)
        core.gateways.stock.give_back(
            d.record.reservation_of(moved), moved.node_id, command.reason in WRITE_OFF
        )
        _rejected(d, moved, command.reason, moved.lines, command.note)

    return core.change(command.order_id, command.idempotency_key, command, reject)


def accept_shipment(core: FlowCore, command: AcceptShipment) -> OrderRecord:
    """The node's WMS took the pick list on: the timeline says so; nothing else moves."""

    def accept(d: Draft) -> None:
        shipment = d.shipment_to(_shipment(d.record, command.shipment_id), "accept")
        d.emit(EventType.SHIPMENT_ACCEPTED, shipment_id=shipment.id, node_id=shipment.node_id)

    return core.change(command.order_id, command.idempotency_key, command, accept)


def supply_changed(core: FlowCore, command: SupplyChanged) -> OrderRecord:
    """Supply the order's parcels wait for moved: the workflow releases what is now on the
    shelf and re-promises what comes later (its `await_shipment` step); a parcel whose lot was
    cut below it gives its hold back and is rerouted like a rejected one."""

    def cut(d: Draft) -> None:
        if not command.broken:
            return
        stock = core.gateways.stock
        for shipment in d.record.shipments:
            if (
                shipment.state is not ShipmentState.PENDING
                or d.record.reservation_of(shipment) != command.reservation_id
                or not stock.awaiting(command.reservation_id, shipment.node_id).cut
            ):
                continue
            stock.give_back(command.reservation_id, shipment.node_id, write_off=False)
            moved = d.shipment_to(shipment, "cancel", reason=SUPPLY_CUT)
            _rejected(d, moved, SUPPLY_CUT, moved.lines)

    return core.change(command.order_id, command.idempotency_key, command, cut)


def record_delivery(core: FlowCore, command: RecordDelivery) -> OrderRecord:
    """A parcel reached its destination, as the carrier reports it."""

    def deliver(d: Draft) -> None:
        shipment = _shipment(d.record, command.shipment_id)
        moved = d.shipment_to(shipment, "deliver", delivered_at=d.now)
        everything = all(s.state in DELIVERED for s in d.record.live_shipments)
        d.order_to("deliver_rest" if everything else "deliver_some")
        d.emit(EventType.SHIPMENT_DELIVERED, shipment_id=moved.id, carrier=moved.carrier)

    return core.change(command.order_id, command.idempotency_key, command, deliver)


def resume(core: FlowCore, command: ResumeOrder) -> OrderRecord:
    """Runs a blocked (or waiting) workflow again from its current step: the change loop runs
    the workflow on after every command, so resuming is a command that changes nothing else,
    except that an order held past its workflow's cap of reroutes may reroute once more (the
    operator who resumes it decided so)."""

    def again(d: Draft) -> None:
        record = d.record
        cap = d.workflow.reroute.max_reroutes + record.extra_reroutes
        if record.status is FlowStatus.BLOCKED and record.unrouted() and record.reroutes >= cap:
            d.update(extra_reroutes=record.extra_reroutes + 1)

    return core.change(command.order_id, command.idempotency_key, command, again)


def _rejected(
    d: Draft, shipment: Shipment, reason: str, lines: tuple[ShipmentItem, ...], note: str = ""
) -> None:
    """The timeline's record of units a parcel will not carry, and why: they are rerouted."""
    d.emit(
        EventType.SHIPMENT_REJECTED,
        shipment_id=shipment.id,
        node_id=shipment.node_id,
        reason=reason,
        note=note,
        lines=lines_data(lines),
    )


def _last_of(record: OrderRecord, reservation_id: str) -> bool:
    """Whether every parcel of one reservation has now left (or was rejected)."""
    return all(
        s.state in SHIPPED or s.state is ShipmentState.REJECTED
        for s in record.shipments
        if record.reservation_of(s) == reservation_id
    )


def _sent(shipment: Shipment, lines: tuple[ShipmentItem, ...]) -> tuple[ShipmentItem, ...]:
    """The units that left: as planned when `lines` is empty, else `lines` (each sku of the
    parcel at most once, at most its planned units, at least one unit in all)."""
    if not lines:
        return shipment.lines
    planned = {x.sku: x.quantity for x in shipment.lines}
    problems = ProblemCollector()
    seen: set[str] = set()
    for i, line in enumerate(lines):
        if line.sku not in planned:
            problems.add(f"lines[{i}].sku", line.sku, f"not in parcel {shipment.id}")
        elif line.sku in seen:
            problems.add(f"lines[{i}].sku", line.sku, "repeats an earlier line")
        elif not 0 <= line.quantity <= planned[line.sku]:
            problems.add(
                f"lines[{i}].quantity",
                line.quantity,
                f"must be in [0, {planned[line.sku]}] (the units planned for {line.sku})",
            )
        seen.add(line.sku)
    problems.raise_if_any()
    sent = {x.sku: x.quantity for x in lines}
    out = tuple(ShipmentItem(x.sku, sent[x.sku]) for x in shipment.lines if sent.get(x.sku, 0) > 0)
    if not out:
        raise InvalidInput.one("lines", "no units", "nothing left: use RejectShipment instead")
    return out


def _missing(
    planned: tuple[ShipmentItem, ...], sent: tuple[ShipmentItem, ...]
) -> tuple[ShipmentItem, ...]:
    left = {x.sku: x.quantity for x in sent}
    return tuple(
        ShipmentItem(x.sku, x.quantity - left.get(x.sku, 0))
        for x in planned
        if x.quantity > left.get(x.sku, 0)
    )


def _shipment(record: OrderRecord, shipment_id: str) -> Shipment:
    shipment = record.shipment(shipment_id)
    if shipment is None:
        raise NotFound("shipment_id", shipment_id)
    return shipment
