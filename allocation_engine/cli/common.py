"""What every client command shares: the server it calls, its deadline, `--json`, and the
wrapper that turns a failed call into a printed error and exit code 1."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from typing import Any

import grpc
from rich.console import Console

from allocation_engine.cli.render import print_error

DEFAULT_TARGET = os.environ.get("ALLOCATION_ENGINE_TARGET", "127.0.0.1:50051")

ClientRun = Callable[[argparse.Namespace, grpc.Channel, Console], int]


def add_client_options(parser: argparse.ArgumentParser, *, mutating: bool = False) -> None:
    """--target, --timeout and --json; `mutating` commands also take an optional --key."""
    parser.add_argument("--target", default=DEFAULT_TARGET, help="server host:port")
    parser.add_argument("--timeout", type=float, default=30.0, help="deadline in seconds")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    if mutating:
        parser.add_argument("--key", help="idempotency key (default: a new one)")


def add_client(sub: Any, name: str, help: str, run: ClientRun, **options: bool) -> Any:
    """A client subcommand with the shared options, calling `run` on an open channel."""
    parser = sub.add_parser(name, help=help)
    add_client_options(parser, **options)
    parser.set_defaults(func=client_command(run))
    return parser


def open_channel(args: argparse.Namespace) -> grpc.Channel:
    return grpc.insecure_channel(args.target)


def client_command(run: ClientRun) -> Callable[[argparse.Namespace], int]:
    """Wraps a client command: RpcErrors become a printed error and exit code 1."""

    def command(args: argparse.Namespace) -> int:
        console = Console()
        try:
            with open_channel(args) as channel:
                return int(run(args, channel, console))
        except grpc.RpcError as error:
            return print_error(error, console)

    return command
