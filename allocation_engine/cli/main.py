"""allocation-engine: optimal order sourcing and split shipments, served over gRPC.

Commands for operators (serve, outbox, load-snapshot, availability), for the systems' engineers
(allocate, reserve, commit, release, order ...), for planners (plan, replay, workflows) and for
solver engineers (bench). Each command group lives in its own module of this package.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from allocation_engine.cli import allocation, bench, inventory, orders, plan, serve, workflows
from allocation_engine.errors import InvalidInput

GROUPS = (plan, serve, allocation, inventory, orders, workflows, bench)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="allocation-engine", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for group in GROUPS:
        group.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except InvalidInput as bad:
        print(f"invalid input: {bad}", file=sys.stderr)
        return 2
    return code
