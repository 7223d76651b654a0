"""TODO docstring."""

from __future__ import annotations

import argparse
import os
from typing import Any

import grpc
from rich.console import Console

from allocation_engine.cli.render import print_error

DEFAULT_TARGET = os.environ.get("ALLOCATION_ENGINE_TARGET", "127.0.0.1:50051")


# client plumbing
def open_channel(args: argparse.Namespace) -> grpc.Channel:
    return grpc.insecure_channel(args.target)


def client_command(run: Any) -> Any:
    """Wraps a client command: RpcErrors become a printed error and exit code 1."""

    def command(args: argparse.Namespace) -> int:
        console = Console()
        try:
            with open_channel(args) as channel:
                return int(run(args, channel, console))
        except grpc.RpcError as error:
            return print_error(error, console)

    return command
