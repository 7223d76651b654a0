"""allocation-engine: optimal order sourcing and split shipments, served over gRPC.

Commands for operators (serve, outbox, load-snapshot, availability), for the systems' engineers
(allocate, reserve, commit, release, order ...), for planners (plan, replay, workflows) and for
solver engineers (bench). Each command group lives in its own module of this package.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from allocation_engine.cli import (
    allocation,
    bench,
    channels,
    feed,
    inventory,
    orders,
    plan,
    repair,
    serve,
    tokens,
    workflows,
)
from allocation_engine.cli.common import UsageError
from allocation_engine.errors import InvalidInput

GROUPS = (
    plan,
    serve,
    allocation,
    inventory,
    orders,
    workflows,
    channels,
    feed,
    bench,
    repair,
    tokens,
)


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
    except UsageError as mistake:
        print(f"error: {mistake}", file=sys.stderr)
        return 2
    except OSError as error:  # a file a command reads or writes on the user's behalf
        where = f"{error.filename}: " if error.filename else ""
        print(f"error: {where}{error.strerror or error}", file=sys.stderr)
        return 2
    return code
