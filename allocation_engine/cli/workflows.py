"""`allocation-engine workflows check FILE | show`: validate a workflow file, every problem
named, or print the shipped workflows."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from allocation_engine.app.orders import template_names
from allocation_engine.errors import InvalidInput
from allocation_engine.orders.definition import default_workflows_text, load_workflows


def _check(args: argparse.Namespace) -> int:
    try:
        workflows = load_workflows(args.file, template_names())
    except InvalidInput as bad:
        print(f"{args.file}: {len(bad.problems)} problem(s)", file=sys.stderr)
        for problem in bad.problems:
            print(f"  {problem}", file=sys.stderr)
        return 2
    for w in workflows.workflows:
        steps = " -> ".join(s.kind for s in w.steps)
        print(f"{w.name} ({w.payment}): {steps}")
    return 0


def _show(args: argparse.Namespace) -> int:
    print(default_workflows_text(), end="")
    return 0


def register(sub: Any) -> None:
    """Adds `workflows check` and `workflows show`."""
    workflows = sub.add_parser("workflows", help="check or show workflow files")
    wsub = workflows.add_subparsers(dest="workflows_command", required=True)
    check = wsub.add_parser("check", help="validate a workflow file; every problem is named")
    check.add_argument("file")
    check.set_defaults(func=_check)
    wsub.add_parser("show", help="print the shipped workflows").set_defaults(func=_show)
