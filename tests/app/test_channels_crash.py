"""A server killed with SIGKILL while webhooks arrive and confirmations go out loses nothing
and doubles nothing.

A real `allocation-engine serve` process (HTTP edge, Redis store, a Shopify channel) takes
signed orders/create webhooks from the Shopify peer, which redelivers every one that did not get
a 2xx (as Shopify does, for 48 hours); the server is killed at random instants mid-delivery and
restarted. Then every parcel is recorded as shipped and the server is killed again while its
outbox sends the fulfillments. In the end each order exists once, and the shop holds exactly
one fulfillment per parcel, each POSTed once.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest

from allocation_engine.adapters.redis.orders import RedisOrders
from allocation_engine.proto.allocation.v1 import orders_pb2 as opb
from allocation_engine.proto.allocation.v1 import orders_pb2_grpc as opb_grpc
from allocation_engine.testing.channel_peers.shopify import SKUS, ShopifyPeer
from tests.support.orders import free_port

pytestmark = pytest.mark.redis

ORDERS = 12
SAMPLE = Path(__file__).parent.parent / "data" / "channels" / "shopify" / "orders-create.json"


def shop_order(n: int) -> dict[str, Any]:
    order: dict[str, Any] = json.loads(SAMPLE.read_text())
    order["id"] = 7_000_000_000 + n
    order["email"] = f"buyer{n}@example.de"
    order["customer"] = dict(order["customer"], id=8_000_000_000 + n, email=order["email"])
    for i, item in enumerate(order["line_items"]):
        item["id"] = 9_000_000_000 + 10 * n + i
    return order


class Server:
    """`allocation-engine serve` as a child process that can be killed and started again."""

    def __init__(self, tmp: Path, redis_url: str, peer: ShopifyPeer) -> None:
        channels = tmp / "channels.toml"
        skus = "\n".join(f'"{k}" = "{v}"' for k, v in SKUS.items())
        channels.write_text(
            '[[channel]]\nname = "shop"\nkind = "shopify"\n'
            f'base_url = "{peer.url}"\nworkflow = "marketplace-paid"\n'
            '[channel.credentials]\nwebhook_secret = "CRASH_SHOP_SECRET"\n'
            'access_token = "CRASH_SHOP_TOKEN"\n'
            f"[channel.skus]\n{skus}\n"
        )
        self.grpc_port, self.http_port = free_port(), free_port()
        self.command = [
            sys.executable, "-m", "allocation_engine.cli", "serve", "--demo",
            "--port", str(self.grpc_port), "--http-port", str(self.http_port),
            "--redis-url", redis_url, "--channels", str(channels),
            "--mail-dir", str(tmp / "mail"), "--wms-dir", str(tmp / "wms"),
            "--lease", "1", "--log-format", "text",
        ]  # fmt: skip
        self.env = {
            **os.environ,
            "CRASH_SHOP_SECRET": peer.client_secret,
            "CRASH_SHOP_TOKEN": peer.access_token,
        }
        self.url = f"http://127.0.0.1:{self.http_port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            self.command, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.05)
        raise AssertionError("the server did not come up")

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(15)


@pytest.fixture
def shop() -> Iterator[ShopifyPeer]:
    peer = ShopifyPeer({}).start()
    yield peer
    peer.stop()


@pytest.fixture
def server(tmp_path: Path, redis_url: str, shop: ShopifyPeer) -> Iterator[Server]:
    running = Server(tmp_path, redis_url, shop)
    running.start()
    yield running
    running.stop()


def deliver_until_accepted(server: Server, shop: ShopifyPeer, bodies: dict[int, bytes]) -> int:
    """Delivers every webhook (each keeps its webhook id, as Shopify's retries do), killing the
    server at random instants meanwhile, until each got a 2xx; returns how many kills."""
    rng = random.Random(13)
    pending = dict(bodies)
    kills = 0
    while pending:
        killer = None
        if kills < 4:
            killer = threading.Timer(rng.uniform(0.0, 0.15), server.kill)
            killer.start()
        for n, body in list(pending.items()):
            try:
                answer = shop.deliver(server.url, "shop", body, webhook_id=f"wh-{n}")
            except httpx.HTTPError:
                break  # the server died mid-call: its successor gets the delivery again
            if answer.status_code == 200:
                del pending[n]
        if killer is not None:
            killer.join()
            kills += 1
            server.start()
    return kills


def test_webhooks_and_confirmations_survive_sigkill(
    server: Server, shop: ShopifyPeer, redis_url: str
) -> None:
    """Given webhooks delivered while the server is SIGKILLed at random and restarted, then
    each order exists exactly once; given every parcel shipped and the server SIGKILLed while
    its outbox confirms them, then after a restart the shop holds exactly one fulfillment per
    parcel, each POSTed once."""
    bodies = {}
    for n in range(ORDERS):
        order = shop.take(shop_order(n))
        bodies[n] = json.dumps(order).encode()
    kills = deliver_until_accepted(server, shop, bodies)
    assert kills >= 1
    store = RedisOrders.from_url(redis_url)
    records = [store.load(r.id) for r in store.list_orders(None, None, 0, 100)]
    assert Counter(r.external_id for r in records) == Counter(
        str(7_000_000_000 + n) for n in range(ORDERS)
    )

    deadline = time.monotonic() + 30
    while any(r.state.value != "RELEASED" for r in records) and time.monotonic() < deadline:
        time.sleep(0.2)
        records = [store.load(r.id) for r in records]
    parcels = [(r, s) for r in records for s in r.shipments]
    with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        orders = opb_grpc.OrderServiceStub(channel)
        for i, (record, shipment) in enumerate(parcels):
            orders.RecordShipment(
                opb.RecordShipmentRequest(
                    order_id=record.id,
                    shipment_id=shipment.id,
                    carrier="DHL",
                    tracking_number=f"TRK{i:06d}",
                    idempotency_key=f"ship-{shipment.id}",
                ),
                timeout=10,
            )
    time.sleep(0.05)
    server.kill()  # while the outbox is sending the fulfillments
    server.start()
    tracking = {f"TRK{i:06d}" for i in range(len(parcels))}

    def confirmed() -> set[str]:
        return {
            c["tracking_number"]
            for n in range(ORDERS)
            for c in shop.confirmations(str(7_000_000_000 + n))
        }

    deadline = time.monotonic() + 60
    while confirmed() != tracking and time.monotonic() < deadline:
        time.sleep(0.2)
    assert confirmed() == tracking
    posts = Counter(
        r.json()["fulfillment"]["tracking_info"]["number"]
        for r in shop.received("POST", r"/fulfillments\.json$")
    )
    assert set(posts.values()) == {1}, posts
