"""`allocation-engine plan FILE`: plans one order in-process on the embedded demo network, no
server needed (what `allocate` does on a server, for trying rules and orders locally)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from rich.console import Console

from allocation_engine.app.demo import demo_inventory, demo_network
from allocation_engine.cli.common import read_json
from allocation_engine.cli.render import print_plan
from allocation_engine.engine import METHODS, RuleSet, allocate, load_rules
from allocation_engine.engine.codec import order_from_dict, plan_to_dict


def _rules(path: str | None) -> RuleSet:
    return load_rules(path) if path else RuleSet()


def _plan(args: argparse.Namespace) -> int:
    """Plans one order in-process against the embedded demo network (no server needed)."""
    order = order_from_dict(read_json(args.order))
    network = demo_network()
    plan = allocate(order, network, demo_inventory(network), _rules(args.rules), method=args.method)
    if args.json:
        print(json.dumps(plan_to_dict(plan, explain=args.explain), indent=2))
    else:
        console = Console()
        print_plan(plan, console)
        if args.explain:
            for e in plan.explanations:
                console.print(f"{e.node_id:16} {e.reason.name:24} {e.detail}")
    return 0


def register(sub: Any) -> None:
    """Adds `plan`."""
    plan = sub.add_parser("plan", help="plan one order in-process on the demo network")
    plan.add_argument("order", help="order JSON file (see examples/order.json)")
    plan.add_argument("--rules", help="rule set TOML (default: built-in defaults)")
    plan.add_argument("--method", choices=METHODS, default="engine")
    plan.add_argument(
        "--explain", action="store_true", help="say why each node was or was not used"
    )
    plan.add_argument("--json", action="store_true", help="machine-readable output")
    plan.set_defaults(func=_plan)
