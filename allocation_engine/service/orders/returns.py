"""Returns: asked for by the customer, received at a node, inspected, refunded and restocked.

A return is opened for delivered units, received (every unit at one node, where it is
inspected) in one or more deliveries, and inspected once: each received unit is restocked
(accepted and refunded at its unit price) or written off (not refunded). Money moves before
stock, so a refund the provider refuses leaves the inventory untouched.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from allocation_engine.errors import InvalidInput, NotFound, ProblemCollector
from allocation_engine.orders.commands import (
    InspectReturn,
    ReceiveReturn,
    RequestReturn,
    ReturnItem,
)
from allocation_engine.orders.draft import DELIVERED, Draft
from allocation_engine.orders.events import EventType
from allocation_engine.orders.machines import RETURN, ReturnState
from allocation_engine.orders.model import OrderRecord, Return, ReturnLine
from allocation_engine.service.orders.core import FlowCore
from allocation_engine.service.orders.refunds import refund


def request_return(core: FlowCore, command: RequestReturn) -> tuple[OrderRecord, str]:
    """Opens a return for delivered units; answers with the order and the return's id
    (R<n> within the order), the same id again when the request is retried."""

    def request(d: Draft) -> None:
        record = d.record
        _check_items(command.items, lambda sku: _returnable(record, sku), "delivered")
        ret = Return(
            id=f"R{len(record.returns) + 1}",
            lines=tuple(ReturnLine(i.sku, i.quantity) for i in command.items),
            reason=command.reason,
            requested_at=d.now,
            key=command.idempotency_key,
        )
        d.update(returns=(*record.returns, ret))
        d.emit(
            EventType.RETURN_REQUESTED,
            return_id=ret.id,
            reason=ret.reason,
            lines=_lines(command.items),
        )

    record = core.change(command.order_id, command.idempotency_key, command, request)
    return record, next(r.id for r in record.returns if r.key == command.idempotency_key)


def receive_return(core: FlowCore, command: ReceiveReturn) -> OrderRecord:
    """Returned goods arrived at a node (every unit goes there for inspection)."""
    if not core.gateways.stock.has_node(command.node_id):
        raise InvalidInput.one("node_id", command.node_id, "unknown node")

    def receive(d: Draft) -> None:
        ret = _return(d.record, command.return_id)
        if ret.node_id and ret.node_id != command.node_id:
            raise InvalidInput.one(
                "node_id", command.node_id, f"return {ret.id} is received at {ret.node_id}"
            )

        def open_units(sku: str) -> int:
            line = ret.line(sku)
            return line.requested - line.received if line else 0

        _check_items(command.items, open_units, f"expected in return {ret.id}")
        got = {i.sku: i.quantity for i in command.items}
        lines = tuple(
            replace(line, received=line.received + got.get(line.sku, 0)) for line in ret.lines
        )
        complete = all(line.received == line.requested for line in lines)
        d.return_to(
            ret,
            "receive_rest" if complete else "receive_some",
            lines=lines,
            node_id=command.node_id,
        )
        back = sum(line.received for r in d.record.returns for line in r.lines)
        d.order_to("return_rest" if back == d.record.units else "return_some")
        d.emit(
            EventType.RETURN_RECEIVED,
            return_id=ret.id,
            node_id=command.node_id,
            lines=_lines(command.items),
        )

    return core.change(command.order_id, command.idempotency_key, command, receive)


def inspect_return(core: FlowCore, command: InspectReturn) -> OrderRecord:
    """Each received unit is restocked (accepted, refunded) or written off (not refunded)."""

    def inspect(d: Draft) -> None:
        ret = _return(d.record, command.return_id)
        RETURN.next(ret.state, "inspect", ret.id)  # legal at all? (before any money moves)
        _check_inspections(ret, command)
        verdict = {i.sku: i for i in command.inspections}
        lines = tuple(
            replace(
                line,
                restocked=verdict[line.sku].restock if line.received else 0,
                written_off=verdict[line.sku].write_off if line.received else 0,
            )
            for line in ret.lines
        )
        amount = sum(
            line.restocked * item.unit_price
            for line in lines
            if (item := d.record.item(line.sku)) is not None
        )
        d.return_to(ret, "inspect", lines=lines, refund=amount)
        d.emit(
            EventType.RETURN_INSPECTED,
            return_id=ret.id,
            node_id=ret.node_id,
            refund=amount,
            lines=[
                {"sku": x.sku, "restocked": x.restocked, "written_off": x.written_off}
                for x in lines
                if x.received
            ],
        )
        key = d.record.key(ret.id)
        # money before stock: if the refund fails, nothing moved
        refund(core.gateways, d, amount, key, return_id=ret.id)
        for line in lines:
            if line.restocked:
                core.gateways.stock.restock(
                    ret.node_id, line.sku, line.restocked, f"{key}:restock:{line.sku}"
                )

    return core.change(command.order_id, command.idempotency_key, command, inspect)


def _return(record: OrderRecord, return_id: str) -> Return:
    ret = record.return_(return_id)
    if ret is None:
        raise NotFound("return_id", return_id)
    return ret


def _returnable(record: OrderRecord, sku: str) -> int:
    """Delivered units of `sku` not yet claimed by a return (inspected returns claim only what
    arrived; the rest may be asked for again)."""
    claimed = 0
    for ret in record.returns:
        line = ret.line(sku)
        if line is not None:
            claimed += line.received if ret.state is ReturnState.INSPECTED else line.requested
    return record.units_in(sku, DELIVERED) - claimed


def _check_items(items: tuple[ReturnItem, ...], limit: Callable[[str], int], what: str) -> None:
    """At least one item, each sku once, each quantity an integer from 1 to `limit(sku)`."""
    problems = ProblemCollector()
    if not items:
        problems.add("items", [], "needs at least one item")
    seen: set[str] = set()
    for i, item in enumerate(items):
        if item.sku in seen:
            problems.add(f"items[{i}].sku", item.sku, "repeats an earlier item; merge them")
            continue
        seen.add(item.sku)
        most = limit(item.sku)
        if not isinstance(item.quantity, int) or item.quantity <= 0:
            problems.add(f"items[{i}].quantity", item.quantity, "must be an integer > 0")
        elif item.quantity > most:
            problems.add(
                f"items[{i}].quantity", item.quantity, f"only {max(most, 0)} of {item.sku} {what}"
            )
    problems.raise_if_any()


def _check_inspections(ret: Return, command: InspectReturn) -> None:
    """Every received unit gets exactly one verdict."""
    problems = ProblemCollector()
    given = {}
    for i, inspection in enumerate(command.inspections):
        where = f"inspections[{i}]"
        line = ret.line(inspection.sku)
        if line is None or line.received == 0:
            problems.add(f"{where}.sku", inspection.sku, f"nothing of it arrived in {ret.id}")
        elif inspection.sku in given:
            problems.add(f"{where}.sku", inspection.sku, "repeats an earlier inspection")
        elif min(inspection.restock, inspection.write_off) < 0:
            problems.add(where, inspection, "restock and write_off must be >= 0")
        elif inspection.restock + inspection.write_off != line.received:
            problems.add(
                where,
                inspection,
                f"restock + write_off must be the {line.received} units received",
            )
        given[inspection.sku] = inspection
    for line in ret.lines:
        if line.received and line.sku not in given:
            problems.add("inspections", line.sku, f"{line.received} received units not inspected")
    problems.raise_if_any()


def _lines(items: tuple[ReturnItem, ...]) -> list[dict[str, object]]:
    return [{"sku": i.sku, "quantity": i.quantity} for i in items]
