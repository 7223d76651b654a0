"""TODO docstring."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from types import FrameType

from allocation_engine.app.orders import OrderConfig, OrderRuntime
from allocation_engine.cli.common import DEFAULT_TARGET
from allocation_engine.ports.clock import Clock
from allocation_engine.service import Services


# serve
def _cmd_serve(args: argparse.Namespace) -> int:
    """Runs the gRPC server until SIGTERM or Ctrl-C, then stops gracefully."""
    from allocation_engine.api.server import AllocationServer
    from allocation_engine.app.serve import build_services, seed_demo

    services = build_services(args.redis_url, args.rules)
    seeded = seed_demo(services) if args.demo else False
    orders = serve_orders(services, args, services.clock)  # OrderService and its outbox
    server = AllocationServer(
        services,
        host=args.host,
        port=args.port,
        workers=args.workers,
        extra=[orders.register],
    )
    server.start()
    store = f"Redis at {args.redis_url}" if args.redis_url else "the in-memory store"
    demo = " with the demo network (4 warehouses, 30 stores, 5 suppliers, 300 skus)"
    print(f"allocation-engine serving on {server.address}, {store}{demo if seeded else ''}.")
    print("Try it from another terminal:")
    target = "" if server.address == DEFAULT_TARGET else f" --target {server.address}"
    print(f"  allocation-engine allocate examples/order.json{target}")
    print(f"  allocation-engine reserve examples/order.json --key demo-1{target}")
    print(f"  allocation-engine availability SKU-0001{target}")
    print("Stop with Ctrl-C or SIGTERM (health goes NOT_SERVING, calls in flight finish).")
    orders.start()  # prints where e-mails, pick lists and card payments go
    sys.stdout.flush()
    stopping = threading.Event()

    def stop(signum: int, frame: FrameType | None) -> None:
        if not stopping.is_set():
            stopping.set()
            threading.Thread(target=server.stop, args=(args.grace,), daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    server.wait()
    orders.stop()
    print("allocation-engine stopped.")
    return 0


CARD_KEY_ENV = "ALLOCATION_ENGINE_CARD_KEY"


WEBHOOK_SECRET_ENV = "ALLOCATION_ENGINE_WEBHOOK_SECRET"


def _order_config(args: argparse.Namespace, *, demo: bool) -> OrderConfig:
    return OrderConfig(
        workflows=getattr(args, "workflows", None),
        redis_url=args.redis_url,
        smtp=args.smtp,
        mail_from=args.mail_from,
        mail_dir=args.mail_dir,
        wms_dir=args.wms_dir,
        wms_url=args.wms_url,
        card_url=getattr(args, "card_url", None),
        card_key=os.environ.get(CARD_KEY_ENV, ""),
        webhook_secret=os.environ.get(WEBHOOK_SECRET_ENV, ""),
        demo=demo,
        dispatch=not getattr(args, "no_outbox", False),
        lease_seconds=args.lease,
    )


def serve_orders(services: Services, args: argparse.Namespace, clock: Clock) -> OrderRuntime:
    """The order workflow runtime for `serve`, from its command line."""
    return OrderRuntime.build(services, _order_config(args, demo=args.demo), clock)
