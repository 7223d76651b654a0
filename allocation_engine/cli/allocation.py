"""Client commands of AllocationService: `allocate` (plan only), `reserve`, `commit`, `release`."""

from __future__ import annotations

import argparse
from typing import Any

import grpc
from rich.console import Console

from allocation_engine.api.convert.allocation import plan_from_proto
from allocation_engine.api.convert.common import order_to_proto
from allocation_engine.cli.common import add_client, read_json, read_text
from allocation_engine.cli.render import print_json, print_plan, print_reservation
from allocation_engine.engine.codec import order_from_dict
from allocation_engine.proto.allocation.v1 import allocation_pb2 as apb
from allocation_engine.proto.allocation.v1 import allocation_pb2_grpc as apb_grpc
from allocation_engine.proto.allocation.v1 import common_pb2 as cpb
from allocation_engine.proto.allocation.v1 import rules_pb2 as rpb


def _order(path: str) -> cpb.Order:
    return order_to_proto(order_from_dict(read_json(path)))


def _allocate(args: argparse.Namespace, channel: grpc.Channel, console: Console) -> int:
    """Plans an order on the server (holds nothing)."""
    request = apb.AllocateRequest(order=_order(args.order), explain=args.explain)
    if args.rules:
        request.rule_set.CopyFrom(rpb.RuleSet(toml=read_text(args.rules)))
    response = apb_grpc.AllocationServiceStub(channel).Allocate(request, timeout=args.timeout)
    if args.json:
        print_json(response)
        return 0
    print_plan(plan_from_proto(response.plan), console)
    for e in response.plan.explanations:
        console.print(f"{e.node_id:16} {e.reason:24} {e.detail}")
    return 0


def _answer_reservation(args: argparse.Namespace, response: Any, console: Console) -> int:
    if args.json:
        print_json(response)
    else:
        print_reservation(response.reservation, console)
    return 0


def _reserve(args: argparse.Namespace, channel: grpc.Channel, console: Console) -> int:
    """Plans an order and holds its stock."""
    request = apb.ReserveRequest(
        idempotency_key=args.key, order=_order(args.order), ttl_seconds=args.ttl
    )
    response = apb_grpc.AllocationServiceStub(channel).Reserve(request, timeout=args.timeout)
    return _answer_reservation(args, response, console)


def _commit(args: argparse.Namespace, channel: grpc.Channel, console: Console) -> int:
    """Keeps a held reservation until its shipment is confirmed."""
    request = apb.CommitReservationRequest(
        reservation_id=args.reservation, idempotency_key=args.key
    )
    response = apb_grpc.AllocationServiceStub(channel).CommitReservation(
        request, timeout=args.timeout
    )
    return _answer_reservation(args, response, console)


def _release(args: argparse.Namespace, channel: grpc.Channel, console: Console) -> int:
    """Gives a reservation's stock back."""
    request = apb.ReleaseReservationRequest(
        reservation_id=args.reservation, idempotency_key=args.key
    )
    response = apb_grpc.AllocationServiceStub(channel).ReleaseReservation(
        request, timeout=args.timeout
    )
    return _answer_reservation(args, response, console)


def register(sub: Any) -> None:
    """Adds allocate, reserve, commit and release."""
    allocate = add_client(sub, "allocate", "plan an order on the server", _allocate)
    allocate.add_argument("order", help="order JSON file (see examples/order.json)")
    allocate.add_argument("--rules", help="what-if rule set TOML for this request only")
    allocate.add_argument("--explain", action="store_true", help="why each node was (not) used")

    reserve = add_client(sub, "reserve", "plan an order and hold its stock", _reserve)
    reserve.add_argument("order", help="order JSON file")
    reserve.add_argument("--key", required=True, help="idempotency key")
    reserve.add_argument("--ttl", type=int, default=0, help="hold seconds (0 = server default)")

    for name, run in (("commit", _commit), ("release", _release)):
        command = add_client(sub, name, f"{name} a reservation", run)
        command.add_argument("reservation", help="reservation id")
        command.add_argument("--key", required=True, help="idempotency key")
