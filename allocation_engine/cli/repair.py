"""`allocation-engine repair`: finishes what crashed server processes left half-done.

Finds holds owned by settled (released, expired, fulfilled, failed) or missing reservations
and gives them back, finishes releases a crash cut short, expires overdue reservations, and
reconciles the per-sku planning views with the per-node authority. Idempotent and safe to run
while servers serve; prints what it fixed (or `--json`).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from typing import Any

from allocation_engine.app.repair import run_repair
from allocation_engine.cli.common import add_redis_options, redis_url


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "repair",
        help="free leaked holds, finish cut-short releases, reconcile views (Redis)",
        description=__doc__,
    )
    add_redis_options(parser, required=True)
    parser.add_argument(
        "--cluster-layout",
        action="store_true",
        default=None,
        help="the store writes views in a second step (default: a cluster client)",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.set_defaults(func=_repair)


def _repair(args: argparse.Namespace) -> int:
    report = run_repair(str(redis_url(args)), cluster_layout=args.cluster_layout)
    if args.json:
        print(json.dumps({**asdict(report), "fixed": report.fixed}))
        return 0
    print(f"checked {report.nodes} nodes")
    for rid in report.releases_finished:
        print(f"finished release of {rid}")
    for rid in report.expired:
        print(f"expired {rid}")
    for hold in report.holds_freed:
        print(
            f"freed {hold.units} units held at {hold.node_id} by {hold.reservation_id} ({hold.why})"
        )
    if report.views_fixed:
        print(f"reconciled {report.views_fixed} view entries with the per-node authority")
    print(f"fixed {report.fixed}" if report.fixed else "nothing to fix")
    return 0
