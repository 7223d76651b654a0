"""TODO docstring."""

from __future__ import annotations

import argparse
import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import grpc
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TransferSpeedColumn
from rich.table import Table

from allocation_engine.api.convert.allocation import plan_from_proto
from allocation_engine.api.convert.common import order_to_proto
from allocation_engine.cli.common import DEFAULT_TARGET, client_command
from allocation_engine.cli.render import print_json, print_reservation
from allocation_engine.cli.serve import _cmd_serve
from allocation_engine.engine.codec import order_from_dict
from allocation_engine.proto.allocation.v1 import allocation_pb2 as apb
from allocation_engine.proto.allocation.v1 import allocation_pb2_grpc as apb_grpc
from allocation_engine.proto.allocation.v1 import common_pb2 as cpb
from allocation_engine.proto.allocation.v1 import inventory_pb2 as ipb
from allocation_engine.proto.allocation.v1 import inventory_pb2_grpc as ipb_grpc
from allocation_engine.proto.allocation.v1 import rules_pb2 as rpb

CHUNK_POSITIONS = 5_000


def _order(path: str) -> cpb.Order:
    return order_to_proto(order_from_dict(json.loads(Path(path).read_text())))


# client commands
@client_command
def _cmd_allocate(args: argparse.Namespace, channel: grpc.Channel, console: Console) -> int:
    """Plans an order on the server (holds nothing)."""
    request = apb.AllocateRequest(order=_order(args.order), explain=args.explain)
    if args.rules:
        request.rule_set.CopyFrom(rpb.RuleSet(toml=Path(args.rules).read_text()))
    response = apb_grpc.AllocationServiceStub(channel).Allocate(request, timeout=args.timeout)
    if args.json:
        print_json(response)
        return 0
    from allocation_engine.cli.render import print_plan

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


@client_command
def _cmd_reserve(args: argparse.Namespace, channel: grpc.Channel, console: Console) -> int:
    """Plans an order and holds its stock."""
    request = apb.ReserveRequest(
        idempotency_key=args.key, order=_order(args.order), ttl_seconds=args.ttl
    )
    response = apb_grpc.AllocationServiceStub(channel).Reserve(request, timeout=args.timeout)
    return _answer_reservation(args, response, console)


@client_command
def _cmd_commit(args: argparse.Namespace, channel: grpc.Channel, console: Console) -> int:
    """Keeps a held reservation until its shipment is confirmed."""
    request = apb.CommitReservationRequest(
        reservation_id=args.reservation, idempotency_key=args.key
    )
    response = apb_grpc.AllocationServiceStub(channel).CommitReservation(
        request, timeout=args.timeout
    )
    return _answer_reservation(args, response, console)


@client_command
def _cmd_release(args: argparse.Namespace, channel: grpc.Channel, console: Console) -> int:
    """Gives a reservation's stock back."""
    request = apb.ReleaseReservationRequest(
        reservation_id=args.reservation, idempotency_key=args.key
    )
    response = apb_grpc.AllocationServiceStub(channel).ReleaseReservation(
        request, timeout=args.timeout
    )
    return _answer_reservation(args, response, console)


@client_command
def _cmd_availability(args: argparse.Namespace, channel: grpc.Channel, console: Console) -> int:
    """Per sku across nodes: on_hand, reserved, safety stock, available."""
    response = ipb_grpc.InventoryServiceStub(channel).GetAvailability(
        ipb.GetAvailabilityRequest(skus=args.sku, node_ids=args.node or []), timeout=args.timeout
    )
    if args.json:
        print_json(response)
        return 0
    for sku in response.skus:
        console.print(
            f"[bold]{sku.sku}[/bold]: available {sku.available} "
            f"(on hand {sku.on_hand}, reserved {sku.reserved}, safety stock {sku.safety_stock})"
        )
        table = Table()
        for column in ("node", "on hand", "reserved", "safety", "available"):
            table.add_column(column, justify="left" if column == "node" else "right")
        for p in sku.positions:
            table.add_row(
                p.node_id, str(p.on_hand), str(p.reserved), str(p.safety_stock), str(p.available)
            )
        console.print(table)
    return 0


def snapshot_chunks(
    path: Path, version: int, chunk_positions: int, progress: Progress | None = None
) -> Iterator[ipb.SnapshotChunk]:
    """Streams a CSV (node_id,sku,on_hand[,safety_stock]) as chunks, reading it lazily."""
    task = progress.add_task("snapshot", total=path.stat().st_size) if progress else None
    read = 0

    def lines(handle: BinaryIO) -> Iterator[str]:
        nonlocal read
        for raw in handle:
            read += len(raw)
            yield raw.decode("utf-8")

    with path.open("rb") as handle:
        rows = csv.DictReader(lines(handle))
        missing = {"node_id", "sku", "on_hand"} - set(rows.fieldnames or ())
        if missing:
            raise SystemExit(f"{path}: missing columns {sorted(missing)}")
        chunk = ipb.SnapshotChunk(version=version)
        for row in rows:
            position = chunk.positions.add(
                node_id=row["node_id"], sku=row["sku"], on_hand=int(row["on_hand"])
            )
            if row.get("safety_stock"):
                position.safety_stock = int(row["safety_stock"])
            if len(chunk.positions) >= chunk_positions:
                yield chunk
                chunk = ipb.SnapshotChunk(version=version)
                if progress is not None and task is not None:
                    progress.update(task, completed=read)
        if chunk.positions:
            yield chunk
        if progress is not None and task is not None:
            progress.update(task, completed=read)


@client_command
def _cmd_load_snapshot(args: argparse.Namespace, channel: grpc.Channel, console: Console) -> int:
    """Streams a snapshot CSV to the server in chunks, with a progress bar."""
    stub = ipb_grpc.InventoryServiceStub(channel)
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>5.1f}%"),
        TransferSpeedColumn(),
        console=console,
        disable=args.json,
    ) as progress:
        response = stub.ApplySnapshot(
            snapshot_chunks(Path(args.file), args.version, args.chunk, progress)
        )
    if args.json:
        print_json(response)
    else:
        console.print(
            f"snapshot version {response.version}: {response.positions_applied} positions "
            f"applied, {response.positions_skipped} skipped (newer data), {response.chunks} chunks"
        )
    return 0


def add_service_commands(sub: Any) -> None:
    """Registers the service subcommands on the CLI's subparsers."""
    serve = sub.add_parser("serve", help="run the gRPC service")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=50051)
    serve.add_argument("--redis-url", help="redis://host:port/db (default: in-memory store)")
    serve.add_argument("--rules", help="rule set TOML published at start")
    serve.add_argument("--demo", action="store_true", help="load the demo network if empty")
    serve.add_argument("--workers", type=int, default=16, help="threads serving calls")
    serve.add_argument("--grace", type=float, default=10.0, help="seconds calls get to finish")
    serve.set_defaults(func=_cmd_serve)

    def client(name: str, help: str, func: Any) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = sub.add_parser(name, help=help)
        parser.add_argument("--target", default=DEFAULT_TARGET, help="server host:port")
        parser.add_argument("--timeout", type=float, default=30.0, help="deadline in seconds")
        parser.add_argument("--json", action="store_true", help="machine-readable output")
        parser.set_defaults(func=func)
        return parser

    allocate = client("allocate", "plan an order on the server", _cmd_allocate)
    allocate.add_argument("order", help="order JSON file (see examples/order.json)")
    allocate.add_argument("--rules", help="what-if rule set TOML for this request only")
    allocate.add_argument("--explain", action="store_true", help="why each node was (not) used")

    reserve = client("reserve", "plan an order and hold its stock", _cmd_reserve)
    reserve.add_argument("order", help="order JSON file")
    reserve.add_argument("--key", required=True, help="idempotency key")
    reserve.add_argument("--ttl", type=int, default=0, help="hold seconds (0 = server default)")

    for name, func in (("commit", _cmd_commit), ("release", _cmd_release)):
        command = client(name, f"{name} a reservation", func)
        command.add_argument("reservation", help="reservation id")
        command.add_argument("--key", required=True, help="idempotency key")

    availability = client("availability", "stock per sku across nodes", _cmd_availability)
    availability.add_argument("sku", nargs="+")
    availability.add_argument("--node", action="append", help="only this node (repeatable)")

    load = client("load-snapshot", "stream a snapshot CSV to the server", _cmd_load_snapshot)
    load.add_argument("file", help="CSV with node_id,sku,on_hand[,safety_stock]")
    load.add_argument("--version", type=int, required=True, help="snapshot version")
    load.add_argument("--chunk", type=int, default=CHUNK_POSITIONS, help="positions per chunk")
