"""TODO docstring."""

from __future__ import annotations

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
    table = Table(title=f"order {plan.order_id}: {plan.status.value}, total {plan.total_cost:.2f}")
    for column in ("node", "sku", "qty", "km", "shipment cost"):
        table.add_column(column)
    for s in plan.shipments:
        for i, line in enumerate(s.lines):
            first = i == 0
            table.add_row(
                s.node_id if first else "",
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
