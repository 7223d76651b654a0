"""Client commands of InventoryService: `availability` and `load-snapshot` (a CSV streamed in
chunks, read lazily, so a file of millions of positions never sits in memory)."""

from __future__ import annotations

import argparse
import csv
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import grpc
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TransferSpeedColumn
from rich.table import Table

from allocation_engine.cli.common import UsageError, add_client
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


REQUIRED_COLUMNS = ("node_id", "sku", "on_hand")


@dataclass(frozen=True)
class SnapshotRow:
    node_id: str
    sku: str
    on_hand: int
    safety_stock: int | None


def _count(row: dict[str, str | None], column: str, where: str) -> int | None:
    text = (row.get(column) or "").strip()
    if not text:
        return None
    if not text.isdigit():
        raise UsageError(f"{where}: {column}={text[:40]!r}: must be a whole number >= 0")
    return int(text)


def snapshot_rows(
    path: Path, on_bytes: Callable[[int], None] | None = None
) -> Iterator[SnapshotRow]:
    """The rows of a snapshot CSV (node_id,sku,on_hand[,safety_stock]), read lazily; a bad row
    is a UsageError naming the file, the line, the column and the value."""

    def lines(handle: BinaryIO) -> Iterator[str]:
        read = 0
        for number, raw in enumerate(handle, start=1):
            read += len(raw)
            if on_bytes is not None:
                on_bytes(read)
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError:
                raise UsageError(f"{path}:{number}: not UTF-8 text") from None

    try:
        handle = path.open("rb")
    except OSError as error:
        raise UsageError(f"{path}: {error.strerror or error}") from None
    with handle:
        rows = csv.DictReader(lines(handle))
        missing = [c for c in REQUIRED_COLUMNS if c not in (rows.fieldnames or ())]
        if missing:
            raise UsageError(f"{path}: missing columns {missing} (header: node_id,sku,on_hand)")
        for row in rows:
            where = f"{path}:{rows.line_num}"
            if None in row:
                raise UsageError(f"{where}: more fields than the header names")
            node_id, sku = (row["node_id"] or "").strip(), (row["sku"] or "").strip()
            if not node_id or not sku:
                raise UsageError(f"{where}: node_id and sku are required")
            on_hand = _count(row, "on_hand", where)
            if on_hand is None:
                raise UsageError(f"{where}: on_hand is required")
            yield SnapshotRow(node_id, sku, on_hand, _count(row, "safety_stock", where))


def snapshot_chunks(
    path: Path, version: int, chunk_positions: int, progress: Progress | None = None
) -> Iterator[ipb.SnapshotChunk]:
    """Streams a snapshot CSV as chunks of `chunk_positions`, reading it lazily. The whole file
    is checked first, so a bad line refuses the load before anything is sent, and every chunk
    says how many the stream has, so a load cut short (Ctrl-C, a killed loader) changes
    nothing on the server."""
    rows = sum(1 for _ in snapshot_rows(path))
    total = -(-rows // chunk_positions)
    task = progress.add_task("snapshot", total=path.stat().st_size) if progress else None

    def advance(read: int) -> None:
        if progress is not None and task is not None:
            progress.update(task, completed=read)

    chunk = ipb.SnapshotChunk(version=version, total_chunks=total)
    for row in snapshot_rows(path, advance):
        position = chunk.positions.add(node_id=row.node_id, sku=row.sku, on_hand=row.on_hand)
        if row.safety_stock is not None:
            position.safety_stock = row.safety_stock
        if len(chunk.positions) >= chunk_positions:
            yield chunk
            chunk = ipb.SnapshotChunk(version=version, total_chunks=total)
    if chunk.positions:
        yield chunk


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
        chunks = snapshot_chunks(Path(args.file), args.version, args.chunk, progress)
        first = next(chunks, None)  # checks the whole file before the call opens
        response = stub.ApplySnapshot(itertools.chain([first] if first else [], chunks))
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
