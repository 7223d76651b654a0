"""Client commands of InventoryService: `availability` and `load-snapshot` (a CSV streamed in
chunks, read lazily, so a file of millions of positions never sits in memory)."""

from __future__ import annotations

import argparse
import csv
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import grpc
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TransferSpeedColumn
from rich.table import Table

from allocation_engine.cli.common import add_client
from allocation_engine.cli.render import print_json
from allocation_engine.proto.allocation.v1 import inventory_pb2 as ipb
from allocation_engine.proto.allocation.v1 import inventory_pb2_grpc as ipb_grpc

CHUNK_POSITIONS = 5_000


def _availability(args: argparse.Namespace, channel: grpc.Channel, console: Console) -> int:
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


def _load_snapshot(args: argparse.Namespace, channel: grpc.Channel, console: Console) -> int:
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


def register(sub: Any) -> None:
    """Adds availability and load-snapshot."""
    availability = add_client(sub, "availability", "stock per sku across nodes", _availability)
    availability.add_argument("sku", nargs="+")
    availability.add_argument("--node", action="append", help="only this node (repeatable)")

    load = add_client(sub, "load-snapshot", "stream a snapshot CSV to the server", _load_snapshot)
    load.add_argument("file", help="CSV with node_id,sku,on_hand[,safety_stock]")
    load.add_argument("--version", type=int, required=True, help="snapshot version")
    load.add_argument("--chunk", type=int, default=CHUNK_POSITIONS, help="positions per chunk")
