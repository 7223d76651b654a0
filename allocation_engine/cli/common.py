"""What every client command shares: the server it calls, its deadline, `--json`, and the
wrapper that turns a failed call into a printed error and exit code 1."""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
from rich.console import Console

from allocation_engine.api.client import ClientAuth, open_client_channel
from allocation_engine.cli.render import print_error

DEFAULT_TARGET = os.environ.get("ALLOCATION_ENGINE_TARGET", "127.0.0.1:50051")
TOKEN_ENV = "ALLOCATION_ENGINE_TOKEN"
CA_ENV = "ALLOCATION_ENGINE_CA"


class UsageError(Exception):
    """A mistake in what the user gave a command (a file that is not there, a malformed value):
    printed as one line naming the file or the option, exit code 2, no traceback."""


def read_text(path: str | Path) -> str:
    """The text of a file the user named, or a UsageError saying why it cannot be read."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise UsageError(f"{path}: {error.strerror or error}") from None
    except UnicodeDecodeError as error:
        raise UsageError(f"{path}: not UTF-8 text (byte {error.start})") from None


def read_json(path: str | Path) -> Any:
    """The JSON document in a file the user named, or a UsageError with line and column."""
    try:
        return json.loads(read_text(path))
    except json.JSONDecodeError as error:
        raise UsageError(
            f"{path}: not valid JSON: {error.msg} (line {error.lineno}, column {error.colno})"
        ) from None


def add_redis_options(parser: Any, *, required: bool = False) -> None:
    """--redis-url or --redis-cluster (one of them when `required`); `redis_url(args)` reads
    them back as one URL."""
    where = parser.add_mutually_exclusive_group(required=required)
    where.add_argument(
        "--redis-url",
        help="redis://host:port/db, rediss:// for TLS, or redis+cluster://host:port,host:port"
        + ("" if required else " (default: the in-memory store)"),
    )
    where.add_argument(
        "--redis-cluster",
        metavar="HOST:PORT,...",
        help="seed nodes of a Redis Cluster (the same as --redis-url redis+cluster://...)",
    )


def redis_url(args: argparse.Namespace) -> str | None:
    """The store URL the Redis options name, or None for the in-memory store."""
    if getattr(args, "redis_cluster", None):
        return f"redis+cluster://{args.redis_cluster}"
    url: str | None = getattr(args, "redis_url", None)
    return url


ClientRun = Callable[[argparse.Namespace, grpc.Channel, Console], int]


def add_client_options(parser: argparse.ArgumentParser, *, mutating: bool = False) -> None:
    """--target, --timeout and --json; `mutating` commands also take an optional --key."""
    parser.add_argument("--target", default=DEFAULT_TARGET, help="server host:port")
    parser.add_argument("--timeout", type=float, default=30.0, help="deadline in seconds")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    access = parser.add_argument_group("access (for a server with TLS and tokens)")
    access.add_argument(
        "--token", default=os.environ.get(TOKEN_ENV), help=f"API token (default: ${TOKEN_ENV})"
    )
    access.add_argument(
        "--ca",
        type=Path,
        default=os.environ.get(CA_ENV),
        help=f"CA certificate of the server's TLS certificate (default: ${CA_ENV}); "
        "without it the channel is plaintext",
    )
    access.add_argument("--cert", type=Path, help="client certificate (mTLS)")
    access.add_argument("--cert-key", type=Path, help="the client certificate's private key")
    access.add_argument("--server-name", help="the name in the server's certificate")
    if mutating:
        parser.add_argument("--key", help="idempotency key (default: a new one)")


def add_client(sub: Any, name: str, help: str, run: ClientRun, **options: bool) -> Any:
    """A client subcommand with the shared options, calling `run` on an open channel."""
    parser = sub.add_parser(name, help=help)
    add_client_options(parser, **options)
    parser.set_defaults(func=client_command(run))
    return parser


def open_channel(args: argparse.Namespace) -> grpc.Channel:
    """The channel to `--target`, with the access options the command was given."""
    auth = ClientAuth(
        token=args.token,
        ca=Path(args.ca) if args.ca else None,
        cert=args.cert,
        key=args.cert_key,
        server_name=args.server_name,
    )
    return open_client_channel(args.target, auth)


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
