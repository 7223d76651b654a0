"""`allocation-engine channels check FILE [--workflows FILE] [--env]`: validate a channels file,
every problem named; `channels kinds`: the platforms and what each needs of a channel."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from allocation_engine.app.channels import connect_all, platform_specs
from allocation_engine.app.orders import OrderConfig, load_channel_file, load_workflow_file
from allocation_engine.errors import InvalidInput


def _problems(source: str, bad: InvalidInput) -> int:
    print(f"{source}: {len(bad.problems)} problem(s)", file=sys.stderr)
    for problem in bad.problems:
        print(f"  {problem}", file=sys.stderr)
    return 2


def _check(args: argparse.Namespace) -> int:
    """Validates the file, then connects every channel as the server would (nothing is called:
    adapters only read their options), so option values are checked too; with --env the
    secrets come from the environment, else placeholders stand in."""
    config = OrderConfig(workflows=args.workflows, channels=args.file)
    try:
        channels = load_channel_file(config, load_workflow_file(config))
        placeholders = {var: "placeholder" for c in channels for var in c.credentials.values()}
        connect_all(channels, None if args.env else placeholders)
    except InvalidInput as bad:
        return _problems(args.file, bad)
    for c in channels:
        how = f"workflow {c.workflow}" if c.workflow else "workflow by the workflow file"
        types = ", ".join(c.node_types) or "node types as the rules say"
        print(f"{c.name} ({c.kind}): {how}; {types}; {len(c.skus)} mapped skus")
    return 0


def _kinds(args: argparse.Namespace) -> int:
    for kind, spec in platform_specs().items():
        options = ", ".join(f"{o}{'' if required else '?'}" for o, required in spec.options.items())
        print(f"{kind}: credentials {list(spec.credentials)}; options [{options}]")
    return 0


def register(sub: Any) -> None:
    """Adds `channels check` and `channels kinds`."""
    channels = sub.add_parser("channels", help="check channel files (connected shops)")
    csub = channels.add_subparsers(dest="channels_command", required=True)
    check = csub.add_parser("check", help="validate a channels file; every problem is named")
    check.add_argument("file")
    check.add_argument("--workflows", help="the workflow file the server runs (default: shipped)")
    check.add_argument(
        "--env", action="store_true", help="also check the secrets' environment variables are set"
    )
    check.set_defaults(func=_check)
    kinds = csub.add_parser("kinds", help="the platforms and what each needs")
    kinds.set_defaults(func=_kinds)
