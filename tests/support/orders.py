"""The order workflow tests' world: a small network, real stores and a card test peer.

The network (`NODES`, `STOCK`) is small enough to reason about in every test:
WH-KOELN holds A=10, B=4; WH-BERLIN holds A=3, C=6; ST-BONN (a store) holds B=2.
Prices: A 19.90, B 49.00, C 5.00.
"""

from __future__ import annotations

import email
import socket
import threading
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import default

from aiosmtpd.controller import Controller

from allocation_engine.adapters.clock import FakeClock
from allocation_engine.adapters.mail.notifier import MailRenderer
from allocation_engine.adapters.memory.orders import MemoryOrders
from allocation_engine.adapters.payments import CardProvider, InvoiceProvider
from allocation_engine.adapters.payments.fake_provider import FakeCardProvider
from allocation_engine.adapters.redis.orders import RedisOrders
from allocation_engine.engine import CustomerType, Node, NodeType, ShipTo, default_rules
from allocation_engine.engine.rules import default_rules_text
from allocation_engine.orders.commands import CustomerInfo, PlaceOrder
from allocation_engine.orders.definition import default_workflows
from allocation_engine.orders.model import Address, Item
from allocation_engine.ports.inventory import InventoryStore, SnapshotLine
from allocation_engine.service import Services
from allocation_engine.service.orders.flow import OrderFlow
from allocation_engine.service.orders.steps import Gateways
from allocation_engine.service.orders.stock import InventoryStock

NODES = [
    Node("WH-KOELN", NodeType.WAREHOUSE, 50.94, 6.96, "DE"),
    Node("WH-BERLIN", NodeType.WAREHOUSE, 52.52, 13.40, "DE"),
    Node("ST-BONN", NodeType.STORE, 50.74, 7.10, "DE"),
]


STOCK = [
    SnapshotLine("WH-KOELN", "A", 10),
    SnapshotLine("WH-KOELN", "B", 4),
    SnapshotLine("WH-BERLIN", "A", 3),
    SnapshotLine("WH-BERLIN", "C", 6),
    SnapshotLine("ST-BONN", "B", 2),
]


PRICES = {"A": 1990, "B": 4900, "C": 500}


NAMES = {"A": "Espresso cup", "B": "Milk jug", "C": "Filter papers"}


COLOGNE = ShipTo(50.94, 6.96, "DE", "50667")


ADDRESS = Address("Ada Lovelace", "Hohe Strasse 1", "50667", "Koeln", "DE")


TEMPLATES = MailRenderer("shop@example.com").templates()


def b2c(external_id: str, *, payment_method: str = "pm_card_visa", **lines: int) -> PlaceOrder:
    """A consumer order from the web shop shipping to Cologne, e.g. b2c("w-1", A=2, B=1)."""
    return PlaceOrder(
        channel="web",
        external_id=external_id,
        customer=CustomerInfo(email="ada@example.com", name="Ada Lovelace"),
        items=tuple(Item(sku, q, PRICES[sku], NAMES[sku]) for sku, q in lines.items()),
        ship_to=COLOGNE,
        address=ADDRESS,
        payment_method=payment_method,
    )


def b2b(external_id: str, **lines: int) -> PlaceOrder:
    """A business order from the ERP, paid on invoice."""
    return PlaceOrder(
        channel="erp",
        external_id=external_id,
        customer=CustomerInfo(id="ACME", email="buyer@acme.example", name="ACME GmbH"),
        items=tuple(Item(sku, q, PRICES[sku], NAMES[sku]) for sku, q in lines.items()),
        ship_to=COLOGNE,
        address=Address("ACME GmbH", "Industriestr. 5", "50667", "Koeln", "DE"),
        customer_type=CustomerType.B2B,
    )


def seed(store: InventoryStore) -> None:
    store.upsert_nodes(NODES)
    store.apply_snapshot(1, STOCK)


@dataclass
class World:
    """Everything an order workflow test drives or inspects."""

    flow: OrderFlow
    services: Services
    orders: MemoryOrders | RedisOrders
    peer: FakeCardProvider
    clock: FakeClock

    def on_hand(self, node_id: str, sku: str) -> tuple[int, int]:
        """(on_hand, reserved) of one position, from the store's authority."""
        for level in self.services.store.node_stock(node_id):
            if level.sku == sku:
                return level.on_hand, level.reserved
        return 0, 0


def make_world(
    store: InventoryStore,
    orders: MemoryOrders | RedisOrders,
    peer: FakeCardProvider,
    clock: FakeClock,
) -> World:
    seed(store)
    services = Services.build(store, clock, default_rules(), default_rules_text())
    card = CardProvider(peer.url, peer.api_key, peer.webhook_secret, clock=clock)
    gateways = Gateways(InventoryStock(services), {"card": card, "invoice": InvoiceProvider()})
    flow = OrderFlow(default_workflows(TEMPLATES), orders, gateways, clock)
    return World(flow, services, orders, peer, clock)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Mailbox:
    """A real SMTP server (aiosmtpd) on a free port that keeps every message it accepts."""

    def __init__(self, port: int | None = None) -> None:
        self.messages: list[EmailMessage] = []
        self.arrived = threading.Condition()
        self.port = port or free_port()
        self.refuse: dict[str, str] = {}  # recipient -> the SMTP reply that refuses it
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_RCPT(
        self, server: object, session: object, envelope: object, address: str, options: object
    ) -> str:
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)  # type: ignore[attr-defined]
        return "250 OK"

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        raw: bytes = envelope.content  # type: ignore[attr-defined]
        message = email.message_from_bytes(raw, policy=default)
        assert isinstance(message, EmailMessage)
        self.accept(message)
        return "250 Message accepted for delivery"

    def accept(self, message: EmailMessage) -> None:
        with self.arrived:
            self.messages.append(message)
            self.arrived.notify_all()

    def wait_for(self, count: int, timeout: float = 15.0) -> list[EmailMessage]:
        with self.arrived:
            if not self.arrived.wait_for(lambda: len(self.messages) >= count, timeout):
                subjects = [m["Subject"] for m in self.messages]
                raise AssertionError(f"{len(self.messages)} of {count} e-mails: {subjects}")
            return list(self.messages)

    def start(self) -> Mailbox:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()
