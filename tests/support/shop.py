"""The shop the order end-to-end tests drive: a real gRPC server over a real redis-server, a
real SMTP server, the card test peer sending signed webhooks, and pick lists written to a folder
per node (see tests/api/test_orders_e2e.py and test_reroute_e2e.py)."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import grpc

from allocation_engine.adapters.clock import SystemClock
from allocation_engine.adapters.payments.fake_provider import FakeCardProvider
from allocation_engine.adapters.redis.inventory import RedisStore
from allocation_engine.api.server import AllocationServer
from allocation_engine.app.orders import OrderConfig, OrderRuntime
from allocation_engine.engine import default_rules
from allocation_engine.engine.rules import default_rules_text
from allocation_engine.proto.allocation.v1 import inventory_pb2 as ipb
from allocation_engine.proto.allocation.v1 import inventory_pb2_grpc as ipb_grpc
from allocation_engine.proto.allocation.v1 import orders_pb2_grpc as opb_grpc
from allocation_engine.service import Services
from tests.support.inbox import Inbox
from tests.support.orders import Mailbox, seed


@dataclass
class Shop:
    orders: opb_grpc.OrderServiceStub
    inventory: ipb_grpc.InventoryServiceStub
    peer: FakeCardProvider
    webhooks: Inbox
    mailbox: Mailbox
    wms: Path
    channel: grpc.Channel  # for the other services' stubs
    address: str  # host:port, for the CLI

    def available(self, node_id: str, sku: str) -> int:
        answer = self.inventory.GetAvailability(
            ipb.GetAvailabilityRequest(skus=[sku], node_ids=[node_id])
        )
        return sum(p.available for a in answer.skus for p in a.positions)

    def confirm_card(self, intent_id: str) -> None:
        """What the shop's checkout page does with the client secret: the customer pays."""
        request = urllib.request.Request(
            f"{self.peer.url}/v1/payment_intents/{intent_id}/confirm",
            data=b"payment_method=pm_card_visa",
            headers={"Authorization": f"Bearer {self.peer.api_key}"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=5) as answer:
            assert json.loads(answer.read())["status"] == "requires_capture"


@contextmanager
def open_shop(redis_url: str, mailbox: Mailbox, tmp_path: Path) -> Iterator[Shop]:
    """The shop on `redis_url`, started and, on leaving, stopped."""
    store = RedisStore.from_url(redis_url)
    seed(store)
    services = Services.build(store, SystemClock(), default_rules(), default_rules_text())
    webhooks = Inbox()
    peer = FakeCardProvider(webhook_url=webhooks.url + "/webhooks/card").start()
    runtime = OrderRuntime.build(
        services,
        OrderConfig(
            redis_url=redis_url,
            smtp=f"127.0.0.1:{mailbox.port}",
            mail_from="shop@example.com",
            wms_dir=str(tmp_path / "wms"),
            card_url=peer.url,
            card_key=peer.api_key,
            webhook_secret=peer.webhook_secret,
            lease_seconds=2.0,
        ),
        SystemClock(),
    )
    server = AllocationServer(services, port=0, extra=[runtime.register]).start()
    runtime.start()
    try:
        with grpc.insecure_channel(server.address) as channel:
            yield Shop(
                opb_grpc.OrderServiceStub(channel),
                ipb_grpc.InventoryServiceStub(channel),
                peer,
                webhooks,
                mailbox,
                tmp_path / "wms",
                channel,
                server.address,
            )
    finally:
        runtime.stop()
        server.stop(grace=0)
        peer.stop()
        webhooks.close()
