"""How the CLI shows what the server answers: plans, reservations, orders with their
timelines, errors with their rich details (shortfalls, bad fields), and JSON with `--json`."""

from __future__ import annotations

import datetime as dt
from typing import Any

import grpc
from google.protobuf import json_format
from google.protobuf.message import Message
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from rich.console import Console
from rich.table import Table

from allocation_engine.api.convert.allocation import plan_from_proto
from allocation_engine.engine import Plan
from allocation_engine.proto.allocation.v1 import allocation_pb2 as apb
from allocation_engine.proto.allocation.v1 import common_pb2 as cpb
from allocation_engine.proto.allocation.v1 import orders_pb2 as opb


def print_json(message: Message) -> None:
    print(json_format.MessageToJson(message, preserving_proto_field_name=True, indent=2))


def print_error(error: grpc.RpcError, console: Console) -> int:
    """Prints a failed call: code, message and the rich details the server attached."""
    call: Any = error
    console.print(f"[red]{call.code().name}[/red]: {call.details()}")
    status = rpc_status.from_call(call)
    for detail in status.details if status else ():
        stock = cpb.InsufficientStock()
        bad = error_details_pb2.BadRequest()
        if detail.Unpack(stock):
            for s in stock.shortfalls:
                console.print(f"  short: {s.sku} requested {s.requested}, available {s.available}")
        elif detail.Unpack(bad):
            for v in bad.field_violations:
                console.print(f"  {v.field}: {v.description}")
    return 1


def print_reservation(reservation: apb.Reservation, console: Console) -> None:
    state = apb.ReservationState.Name(reservation.state).removeprefix("RESERVATION_STATE_")
    expires = reservation.expires_at.ToDatetime().isoformat(timespec="seconds")
    until = {
        apb.RESERVATION_STATE_HELD: f", held until {expires}Z",
        apb.RESERVATION_STATE_PENDING: f", held until {expires}Z",
        apb.RESERVATION_STATE_COMMITTED: ", held until shipped",
    }.get(reservation.state, "")
    console.print(f"reservation {reservation.id}: {state}{until}")
    if reservation.HasField("plan"):
        print_plan(plan_from_proto(reservation.plan), console)


def print_plan(plan: Plan, console: Console) -> None:
    """One row per shipped line; a transfer to a pickup store shows as `NODE -> STORE`."""
    table = Table(title=f"order {plan.order_id}: {plan.status.value}, total {plan.total_cost:.2f}")
    for column in ("node", "sku", "qty", "km", "shipment cost"):
        table.add_column(column)
    for s in plan.shipments:
        for i, line in enumerate(s.lines):
            first = i == 0
            node = f"{s.node_id} -> {s.transfer_to}" if s.transfer_to else s.node_id
            table.add_row(
                node if first else "",
                line.sku,
                str(line.quantity),
                f"{s.distance_km:.1f}" if first else "",
                f"{s.cost:.2f}" if first else "",
            )
    console.print(table)
    for short in plan.shortfalls:
        console.print(
            f"short: {short.sku} requested {short.requested}, available {short.available}"
        )
    for line in plan.unfilled:
        console.print(f"unfilled: {line.sku} x {line.quantity}")


def money(minor: int, currency: str) -> str:
    return f"{minor / 100:.2f} {currency}"


def when(stamp: Any) -> str:
    if not stamp.seconds and not stamp.nanos:
        return ""
    moment = dt.datetime.fromtimestamp(stamp.seconds, dt.UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def state_name(enum: Any, value: int, prefix: str) -> str:
    return str(enum.Name(value)).removeprefix(prefix)


def print_order(order: opb.OrderView, console: Console) -> None:
    p = order.payment
    status = state_name(opb.WorkflowStatus, order.workflow_status, "WORKFLOW_STATUS_")
    step = f" at {order.current_step}" if order.current_step else ""
    console.print(
        f"[bold]order {order.id}[/bold] ({order.channel} {order.external_order_id}, "
        f"customer {order.customer_id}): "
        f"{state_name(opb.OrderState, order.state, 'ORDER_STATE_')}; "
        f"workflow {order.workflow} {status}{step}"
        + (f" ({order.blocked_reason})" if order.blocked_reason else "")
    )
    console.print(
        f"  payment {p.provider} {p.reference}: "
        f"{state_name(opb.PaymentState, p.state, 'PAYMENT_STATE_')}, owed "
        f"{money(p.amount, order.currency)}, captured {money(p.captured, order.currency)}, "
        f"refunded {money(p.refunded, order.currency)}"
        + (f", credited {money(p.credited, order.currency)}" if p.credited else "")
        + (f" [red]{p.failure}[/red]" if p.failure else "")
    )
    if order.shipments:
        table = Table(title="shipments", title_justify="left")
        for column in ("shipment", "node", "lines", "state", "carrier", "tracking"):
            table.add_column(column)
        for s in order.shipments:
            table.add_row(
                s.id,
                s.node_id,
                ", ".join(f"{x.quantity} x {x.sku}" for x in s.lines),
                state_name(opb.ShipmentState, s.state, "SHIPMENT_STATE_"),
                s.carrier,
                s.tracking_number,
            )
        console.print(table)
    for r in order.returns:
        lines = ", ".join(
            f"{x.sku}: {x.requested} asked, {x.received} in, {x.restocked} restocked, "
            f"{x.written_off} written off"
            for x in r.lines
        )
        console.print(
            f"  return {r.id} ({state_name(opb.ReturnState, r.state, 'RETURN_STATE_')}"
            f"{' at ' + r.node_id if r.node_id else ''}): {lines}; "
            f"refund {money(r.refund, order.currency)}"
        )


QUIET = frozenset({"key", "name", "language", "order_id", "external_order_id", "delivery_mode"})


MONEY = frozenset({"amount", "total", "refund"})


def event_detail(data: dict[str, Any], currency: str) -> str:
    """One line per event: its plain values (money formatted); lists and tables counted."""
    parts = []
    for key, value in data.items():
        if key in QUIET:
            continue
        if isinstance(value, list):
            parts.append(f"{len(value)} {key}")
        elif isinstance(value, dict):
            continue
        elif key in MONEY and isinstance(value, float):
            parts.append(f"{key} {money(int(value), currency)}")
        elif isinstance(value, float) and value.is_integer():
            parts.append(f"{key} {int(value)}")
        elif value not in ("", None):
            parts.append(f"{key} {value}")
    return ", ".join(parts)
