"""`allocation-engine feed`: applies ERP files (stock snapshots, stock deltas, purchase orders)
to the Redis store, each once, or watches a drop folder for them; or sends a 3PL's shipment
manifest to a server (see docs/feeds.md).

`feed FILE...` applies the files in the order given; each stands alone (one refused does not
stop the next) and the exit code is 1 when any was refused. `feed --watch DIR` applies every
`*.csv` written into DIR and moves it to DIR/done/, or to DIR/refused/ with a .error.txt.
`feed --manifest FILE --target HOST:PORT` checks the manifest whole, then records each parcel
it lists as shipped (RecordShipment, idempotent per parcel: a manifest sent again changes
nothing); the exit code is 1 when the server refused any parcel.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from dataclasses import asdict
from pathlib import Path
from typing import Any

import grpc

from allocation_engine.api.convert.tpl import record_request
from allocation_engine.app.feeds import erp_drop_folder, open_erp_feeds, refusal
from allocation_engine.cli.common import (
    UsageError,
    add_client_options,
    add_redis_options,
    open_channel,
    redis_url,
)
from allocation_engine.errors import InvalidInput
from allocation_engine.proto.allocation.v1 import orders_pb2_grpc as opb_grpc
from allocation_engine.service.feeds.erp import FeedReport
from allocation_engine.service.feeds.table import explain
from allocation_engine.service.feeds.tpl import manifest_reports


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "feed",
        help="apply ERP stock and purchase-order files once, or watch a drop folder",
        description=__doc__,
    )
    parser.add_argument("files", nargs="*", type=Path, help="CSV files to apply, in order")
    parser.add_argument("--watch", type=Path, metavar="DIR", help="apply what lands in DIR")
    parser.add_argument("--once", action="store_true", help="with --watch: one sweep, then exit")
    parser.add_argument("--interval", type=float, default=2.0, help="seconds between sweeps")
    parser.add_argument(
        "--version", type=int, help="a snapshot's version (default: the digits ending its name)"
    )
    parser.add_argument(
        "--manifest", type=Path, metavar="FILE", help="a 3PL's shipment manifest CSV to send"
    )
    add_redis_options(parser)
    add_client_options(parser)
    parser.set_defaults(func=_feed)


def _feed(args: argparse.Namespace) -> int:
    if sum(map(bool, (args.files, args.watch, args.manifest))) != 1:
        raise UsageError("give files to apply, --watch DIR or --manifest FILE")
    if args.manifest:
        return _manifest(args)
    if args.watch and not args.watch.is_dir():
        raise UsageError(f"{args.watch}: not a directory")
    url = redis_url(args)
    if url is None:
        raise UsageError("ERP files go to a store: give --redis-url or --redis-cluster")
    feeds = open_erp_feeds(url)
    if args.files:
        refused = 0
        for path in args.files:
            try:
                report = feeds.apply(path, args.version)
            except Exception as error:
                text = refusal(error)
                if text is None:
                    raise
                refused += 1
                _print(args, path.name, path, None, text)
            else:
                _print(args, path.name, path, report)
        return 1 if refused else 0
    folder = erp_drop_folder(args.watch, feeds, settle_seconds=0.0 if args.once else 1.0)
    if args.once:
        taken = folder.sweep()
        for item in taken:
            _print(args, item.name, item.moved_to, item.result, item.error)
        return 1 if any(item.error for item in taken) else 0
    stop = threading.Event()
    try:
        folder.watch(
            stop,
            args.interval,
            on_taken=lambda t: _print(args, t.name, t.moved_to, t.result, t.error),
            on_error=lambda error: print(f"error (retrying): {error}", file=sys.stderr),
        )
    except KeyboardInterrupt:
        stop.set()
    return 0


def _manifest(args: argparse.Namespace) -> int:
    """Checks the manifest whole, then records each parcel; one line per parcel."""
    try:
        reports = manifest_reports(args.manifest)
    except InvalidInput as refused:
        print(f"{args.manifest.name}: refused\n  " + explain(refused).replace("\n", "\n  "))
        return 1
    failed = 0
    with open_channel(args) as channel:
        stub = opb_grpc.OrderServiceStub(channel)
        for report in reports:
            name = f"{report.order_id}/{report.shipment_id}"
            try:
                stub.RecordShipment(record_request(report), timeout=args.timeout)
            except grpc.RpcError as error:
                failed += 1
                print(f"{name}: refused: {error.code().name}: {error.details()}", flush=True)
            else:
                print(f"{name}: shipped ({len(report.lines)} lines)", flush=True)
    return 1 if failed else 0


def _print(
    args: argparse.Namespace, name: str, moved_to: Path, result: object, error: str | None = None
) -> None:
    """One line per file: what it did, or why it was refused (with every problem below)."""
    report = result if isinstance(result, FeedReport) else None
    if args.json:
        body: dict[str, Any] = {"file": name, "moved_to": str(moved_to)}
        body.update(asdict(report) if report else {"refused": error})
        print(json.dumps(body), flush=True)
    elif report is None:
        print(f"{name}: refused\n  " + str(error).replace("\n", "\n  "), flush=True)
    else:
        print(f"{name}: {summary(report)}", flush=True)


def summary(report: FeedReport) -> str:
    """A report in words: `snapshot v2, 3 rows: 3 positions set, 1 zeroed, 0 skipped`."""
    again = " (applied before: nothing changed now)" if report.replayed else ""
    if report.version is not None:
        return (
            f"snapshot v{report.version}, {report.rows} rows: {report.applied} positions set, "
            f"{report.zeroed} zeroed, {report.skipped} skipped (newer data){again}"
        )
    return (
        f"{report.kind}, {report.rows} rows: {report.applied} positions moved, "
        f"{report.clamped} clamped{again}"
    )
