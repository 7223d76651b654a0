"""`allocation-engine serve` (the gRPC service) and `allocation-engine outbox` (a stand-alone
dispatcher of e-mails and pick lists): the command line of the composition root in `app/`."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from types import FrameType
from typing import Any

from allocation_engine.api.access import NotProductionReady
from allocation_engine.api.server import PortInUse
from allocation_engine.app import outbox, serve, workers
from allocation_engine.app.demo import DEMO_SHOP, DEMO_SHOP_SECRETS
from allocation_engine.app.feeds import CRM_SECRET_ENV
from allocation_engine.app.orders import OrderConfig
from allocation_engine.cli.common import DEFAULT_TARGET, TOKEN_ENV, add_redis_options, redis_url
from allocation_engine.errors import InvalidInput
from allocation_engine.observability.logs import FORMATS
from allocation_engine.observability.tracing import EXPORTERS

CARD_KEY_ENV = "ALLOCATION_ENGINE_CARD_KEY"
WEBHOOK_SECRET_ENV = "ALLOCATION_ENGINE_WEBHOOK_SECRET"
DEMO = "the demo network (4 warehouses, 30 stores, 5 suppliers, 300 skus)"
PORT_IN_USE = 3
"""Exit code of `serve` when its port is taken (2 is a usage mistake, 1 a failed call)."""


def _order_config(args: argparse.Namespace) -> OrderConfig:
    return OrderConfig(
        workflows=getattr(args, "workflows", None),
        redis_url=redis_url(args),
        smtp=args.smtp,
        mail_from=args.mail_from,
        mail_dir=args.mail_dir,
        wms_dir=args.wms_dir,
        wms_url=args.wms_url,
        card_url=getattr(args, "card_url", None),
        card_key=os.environ.get(CARD_KEY_ENV, ""),
        webhook_secret=os.environ.get(WEBHOOK_SECRET_ENV, ""),
        demo=getattr(args, "demo", False),
        dispatch=not getattr(args, "no_outbox", False),
        lease_seconds=args.lease,
        channels=args.channels,
        crm_url=args.crm_url,
        crm_secret=os.environ.get(CRM_SECRET_ENV, ""),
    )


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _on_stop_signal(stop: Any) -> None:
    """Calls `stop` once, on the first SIGTERM or Ctrl-C."""
    stopping = threading.Event()

    def handler(signum: int, frame: FrameType | None) -> None:
        if not stopping.is_set():
            stopping.set()
            stop()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def _serve(args: argparse.Namespace) -> int:
    """Runs the gRPC server until SIGTERM or Ctrl-C, then stops gracefully."""
    config = serve.ServeConfig(
        host=args.host,
        port=args.port,
        redis_url=redis_url(args),
        rules=args.rules,
        demo=args.demo,
        threads=args.threads,
        reuse_port=args.reuse_port,
        orders=_order_config(args),
        access=serve.AccessConfig(
            auth=args.auth or args.production,
            tls_cert=args.tls_cert,
            tls_key=args.tls_key,
            tls_client_ca=args.tls_client_ca,
            production=args.production,
            rate=args.rate_limit,
            burst=args.burst,
        ),
        telemetry=serve.TelemetryConfig(
            metrics_host=args.metrics_host,
            metrics_port=args.metrics_port,
            trace_exporter=args.trace_exporter,
            otlp_endpoint=args.otlp_endpoint,
            log_format=args.log_format,
        ),
        http_host=args.http_host,
        http_port=args.http_port,
        feed_dir=args.feed_dir,
    )
    if args.workers > 1:
        return workers.run_workers(config, args.workers, args.grace)
    try:
        running = serve.start(config)
    except PortInUse as taken:
        print(f"allocation-engine serve: {taken}", file=sys.stderr)
        return PORT_IN_USE
    except (serve.AccessRefused, NotProductionReady, InvalidInput) as refused:
        print(f"allocation-engine serve: {refused}", file=sys.stderr)
        return 2
    store = f"Redis at {config.redis_url}" if config.redis_url else "the in-memory store"
    demo = f" with {DEMO}" if running.seeded else ""
    scheme = "TLS" if running.server.secure else "plaintext"
    print(f"allocation-engine serving on {running.address} ({scheme}), {store}{demo}.")
    if not config.access.auth:
        print(
            "AUTHENTICATION IS OFF: every RPC is open to this machine (loopback only; "
            "use --auth or --production to require tokens)."
        )
    elif running.dev_token:
        print(f"Development admin token (this process only): {running.dev_token}")
        print(f"  export {TOKEN_ENV}={running.dev_token}")
    print("Try it from another terminal:")
    target = "" if running.address == DEFAULT_TARGET else f" --target {running.address}"
    print(f"  allocation-engine allocate examples/order.json{target}")
    print(f"  allocation-engine reserve examples/order.json --key demo-1{target}")
    print(f"  allocation-engine availability SKU-0001{target}")
    if running.metrics_port is not None:
        where = f"{config.telemetry.metrics_host}:{running.metrics_port}"
        print(f"Prometheus metrics on http://{where}/metrics")
    if running.http is not None:
        print(f"HTTP edge on {running.http.url} (OpenAPI at {running.http.url}/docs)")
        for channel in running.orders.channels:
            how = "polled" if channel.name in running.orders.connected.importers else "webhooks"
            print(
                f"  channel {channel.name} ({channel.kind}, {how}): "
                f"{running.http.url}/webhooks/{channel.name}"
            )
        if any(c.name == DEMO_SHOP for c in running.orders.channels):
            print(
                f"  the demo shop signs with '{DEMO_SHOP_SECRETS['DEMO_SHOPIFY_WEBHOOK_SECRET']}'"
                ": README, 'Sales channels', replays a signed order webhook with curl"
            )
    print("Stop with Ctrl-C or SIGTERM (health goes NOT_SERVING, calls in flight finish).")
    for note in running.orders.notes:
        print(f"Order workflows: {note}.")
    print(f"  allocation-engine order place examples/order-b2c.json{target}")
    sys.stdout.flush()
    _on_stop_signal(lambda: running.stop_soon(args.grace))
    running.wait()
    print("allocation-engine stopped.")
    return 0


def _outbox(args: argparse.Namespace) -> int:
    """Sends e-mails and pick lists from the Redis event log until SIGTERM."""
    dispatcher = outbox.build_dispatcher(_order_config(args), args.consumer)
    stopping = threading.Event()
    _on_stop_signal(stopping.set)
    print(f"outbox dispatcher {dispatcher.consumer} on {redis_url(args)}", flush=True)
    outbox.run(dispatcher, stopping)
    return 0


def _delivery_options(parser: Any) -> None:
    parser.add_argument(
        "--channels",
        help="channels.toml: the connected shops and marketplaces (secrets from the "
        "environment variables it names); with --demo and none given, a local demo shop",
    )
    parser.add_argument("--smtp", help="mail server host:port (default: .eml files, --mail-dir)")
    parser.add_argument("--mail-from", default="shop@allocation-engine.local", help="sender")
    parser.add_argument("--mail-dir", default="var/mail", help="where e-mails go without --smtp")
    parser.add_argument("--wms-dir", default="var/wms", help="pick lists, one folder per node")
    parser.add_argument("--wms-url", help="POST pick lists here ({node_id} is replaced)")
    parser.add_argument(
        "--crm-url", help=f"POST every order event here, signed with ${CRM_SECRET_ENV}"
    )
    parser.add_argument(
        "--lease", type=float, default=30.0, help="seconds before an unacknowledged event retries"
    )


def register(sub: Any) -> None:
    """Adds `serve` and `outbox`."""
    parser = sub.add_parser("serve", help="run the gRPC service")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=50051)
    add_redis_options(parser)
    parser.add_argument("--rules", help="rule set TOML published at start")
    parser.add_argument("--demo", action="store_true", help="load the demo network if empty")
    parser.add_argument(
        "--workers",
        type=_positive,
        default=1,
        help="server processes sharing the port (one per core; needs a Redis store); a "
        "supervisor forwards signals and replaces a child that dies",
    )
    parser.add_argument("--threads", type=int, default=16, help="threads serving calls, each")
    parser.add_argument(
        "--reuse-port",
        action="store_true",
        help="share the port with other serve processes started with --reuse-port (the kernel "
        "spreads connections over them); without it a port in use is an error "
        f"(exit code {PORT_IN_USE})",
    )
    parser.add_argument("--grace", type=float, default=10.0, help="seconds calls get to finish")
    edge = parser.add_argument_group("HTTP edge and sales channels")
    edge.add_argument(
        "--http-port",
        type=int,
        help="serve the HTTP edge here too: platform webhooks, REST, OpenAPI at /docs "
        "(same tokens and TLS as gRPC)",
    )
    edge.add_argument("--http-host", default="127.0.0.1", help="address of the HTTP edge")
    edge.add_argument(
        "--feed-dir",
        help="an ERP drop folder this server sweeps: stock snapshots, deltas and purchase "
        "orders written there are applied once (docs/feeds.md)",
    )
    access = parser.add_argument_group("access")
    access.add_argument(
        "--auth",
        action="store_true",
        help="require an API token or client certificate on every RPC but health (without it "
        "the server only listens on loopback); over the in-memory store a development admin "
        "token is printed",
    )
    access.add_argument(
        "--production",
        action="store_true",
        help="--auth, and refuse to start without TLS and at least one registered caller",
    )
    access.add_argument("--tls-cert", help="server certificate chain (PEM)")
    access.add_argument("--tls-key", help="the certificate's private key (PEM)")
    access.add_argument("--tls-client-ca", help="CA of client certificates: mTLS, required")
    access.add_argument(
        "--rate-limit", type=float, default=50.0, help="calls per second per caller (default)"
    )
    access.add_argument("--burst", type=int, default=100, help="calls a caller may burst")
    seen = parser.add_argument_group("telemetry")
    seen.add_argument(
        "--metrics-port",
        type=int,
        help="serve Prometheus metrics here (with --workers, child i on this port + i)",
    )
    seen.add_argument("--metrics-host", default="127.0.0.1", help="address of the metrics port")
    seen.add_argument("--trace-exporter", choices=EXPORTERS, default="none", help="where traces go")
    seen.add_argument("--otlp-endpoint", help="OTLP collector host:port (default localhost:4317)")
    seen.add_argument("--log-format", choices=FORMATS, default="json", help="log lines on stderr")
    group = parser.add_argument_group("order workflows")
    group.add_argument("--workflows", help="workflow TOML (default: the shipped workflows)")
    group.add_argument("--card-url", help=f"PaymentIntent-style API; key in ${CARD_KEY_ENV}")
    group.add_argument("--no-outbox", action="store_true", help="run no dispatcher here")
    _delivery_options(group)
    parser.set_defaults(func=_serve)

    dispatcher = sub.add_parser(
        "outbox", help="send e-mails and pick lists from the Redis event log"
    )
    add_redis_options(dispatcher, required=True)
    dispatcher.add_argument("--consumer", help="consumer name (default: host-pid)")
    _delivery_options(dispatcher)
    dispatcher.set_defaults(func=_outbox)
