"""PlaceOrder raced over two real server processes on one redis-server, and a server SIGKILLed
between storing the order and its payment: one order, one PaymentIntent captured once, one hold.

Placing stores the order first and calls nobody before that write; opening the payment,
holding the stock and capturing come after it, keyed by the stored order. The card test peer
runs in this process, so it counts what really happened at the provider; the inventory is read
from its Redis authority. A server killed after the write leaves the order stored with its
payment not opened; the shop's retry of PlaceOrder (or ResumeOrder) on a restarted server
finishes it, repeating nothing at the peer or in the inventory.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest

from allocation_engine.adapters.payments.fake_provider import FakeCardProvider
from allocation_engine.adapters.redis.inventory import RedisStore
from allocation_engine.adapters.redis.orders import RedisOrders
from allocation_engine.proto.allocation.v1 import common_pb2 as cpb
from allocation_engine.proto.allocation.v1 import orders_pb2 as opb
from allocation_engine.proto.allocation.v1 import orders_pb2_grpc as opb_grpc
from tests.support.orders import NAMES, NODES, PRICES, free_port, seed

pytestmark = pytest.mark.redis

THREADS = 8  # racing calls per order, half to each server
ROUNDS = 4  # orders raced for, alternately B2C by card and B2B on invoice
COLOGNE = cpb.ShipTo(latitude=50.94, longitude=6.96, country="DE", postal_code="50667")


class HoldingPeer(FakeCardProvider):
    """The card test peer, able to hold one request unanswered: the first POST whose path ends
    in `hold_on` waits until `release` is set, then is carried out (`drop` False: the provider
    acted, the caller never heard) or dropped (`drop` True: it never reached the provider)."""

    def __init__(self) -> None:
        super().__init__()
        self.hold_on = ""
        self.drop = False
        self.holding = threading.Event()
        self.release = threading.Event()
        self._once = threading.Lock()

    def dispatch(self, method: str, path: str, form: dict[str, str], key: str) -> tuple[int, Any]:
        if self.hold_on and method == "POST" and path.endswith(self.hold_on):
            with self._once:
                first = not self.holding.is_set()
                self.holding.set()
            if first:
                self.release.wait(60)
                if self.drop:
                    return 503, {"error": {"type": "api_error", "message": "dropped"}}
        return super().dispatch(method, path, form, key)

    def intents_of(self, order_id: str) -> list[dict[str, Any]]:
        with self._lock:
            return [i for i in self.intents.values() if i["metadata"].get("order_id") == order_id]

    def captures_of(self, order_id: str) -> int:
        """Money captured for the order: one payment_intent.succeeded per real capture."""
        with self._lock:
            return sum(
                1
                for e in self.events
                if e["type"] == "payment_intent.succeeded"
                and e["data"]["object"]["metadata"].get("order_id") == order_id
            )


@dataclass
class Server:
    """One `allocation-engine serve` process on the shared Redis and card peer."""

    process: subprocess.Popen[bytes]
    address: str
    channel: grpc.Channel

    @property
    def orders(self) -> opb_grpc.OrderServiceStub:
        return opb_grpc.OrderServiceStub(self.channel)

    def kill(self) -> None:
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        self.channel.close()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class Servers:
    """Starts serve processes (and stops every one it started)."""

    def __init__(self, redis_url: str, peer: HoldingPeer, tmp: Path) -> None:
        self.redis_url, self.peer, self.tmp = redis_url, peer, tmp
        self.started: list[Server] = []

    def start(self) -> Server:
        port = free_port()
        command = [
            sys.executable,
            "-m",
            "allocation_engine.cli",
            "serve",
            "--port",
            str(port),
            "--redis-url",
            self.redis_url,
            "--card-url",
            self.peer.url,
            "--no-outbox",
            "--mail-dir",
            str(self.tmp / "mail"),
            "--wms-dir",
            str(self.tmp / "wms"),
        ]
        env = {
            **os.environ,
            "ALLOCATION_ENGINE_CARD_KEY": self.peer.api_key,
            "ALLOCATION_ENGINE_WEBHOOK_SECRET": self.peer.webhook_secret,
        }
        log = self.tmp / f"serve-{port}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
        address = f"127.0.0.1:{port}"
        channel = grpc.insecure_channel(address)
        server = Server(process, address, channel)
        self.started.append(server)
        for _ in range(120):  # up to a minute, and no longer than the process lives
            try:
                grpc.channel_ready_future(channel).result(timeout=0.5)
                return server
            except grpc.FutureTimeoutError:
                if process.poll() is not None:
                    break
        tail = log.read_text(errors="replace")[-2000:]
        raise AssertionError(f"serve on {address} did not come up:\n{tail}")

    def stop(self) -> None:
        for server in self.started:
            server.stop()


@pytest.fixture
def peer() -> Iterator[HoldingPeer]:
    running = HoldingPeer()
    running.start()
    yield running
    running.release.set()
    running.stop()


@pytest.fixture
def servers(redis_url: str, peer: HoldingPeer, tmp_path: Path) -> Iterator[Servers]:
    seed(RedisStore.from_url(redis_url))
    started = Servers(redis_url, peer, tmp_path)
    yield started
    started.stop()


def request(external_id: str, business: bool, **lines: int) -> opb.PlaceOrderRequest:
    """A B2C order paid by a card that authorizes at once, or a B2B order on invoice."""
    customer = (
        opb.CustomerRef(id="ACME", email="buyer@acme.example", name="ACME GmbH")
        if business
        else opb.CustomerRef(email="ada@example.com", name="Ada Lovelace")
    )
    return opb.PlaceOrderRequest(
        channel="erp" if business else "web",
        external_order_id=external_id,
        customer=customer,
        customer_type=cpb.CUSTOMER_TYPE_B2B if business else cpb.CUSTOMER_TYPE_B2C,
        lines=[
            opb.PricedLine(sku=sku, quantity=q, unit_price=PRICES[sku], name=NAMES[sku])
            for sku, q in lines.items()
        ],
        currency="EUR",
        ship_to=COLOGNE,
        address=opb.Address(name="Ada Lovelace", street="Hohe Str. 1", city="Koeln"),
        payment_method="" if business else "pm_card_visa",
    )


def reserved(redis_url: str) -> Counter[str]:
    """Units reserved per sku over every node, from the inventory's Redis authority."""
    store = RedisStore.from_url(redis_url)
    held: Counter[str] = Counter()
    for node in NODES:
        for level in store.node_stock(node.id):
            held[level.sku] += level.reserved
    return +held


def race(targets: list[Server], place: opb.PlaceOrderRequest) -> list[opb.PlaceOrderResponse]:
    """THREADS calls sending `place` at once, alternately to each server; every answer."""
    start = threading.Barrier(THREADS, timeout=60)
    answers: list[opb.PlaceOrderResponse] = []
    errors: list[BaseException] = []

    def call(server: Server) -> None:
        start.wait()
        try:
            answers.append(server.orders.PlaceOrder(place, timeout=60))
        except BaseException as failed:  # collected, so the test names it
            errors.append(failed)

    workers = [
        threading.Thread(target=call, args=(targets[n % len(targets)],)) for n in range(THREADS)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert errors == []
    return answers


def test_placements_raced_over_two_servers_make_one_order_one_capture_one_hold(
    servers: Servers, peer: HoldingPeer, redis_url: str
) -> None:
    """Given two server processes on one Redis, when 8 calls place the same order at once,
    half on each server (4 seeded rounds, card and invoice orders), then every call answers
    with the same order, one of them created it, the card peer opened one PaymentIntent for
    it and captured it once, and the inventory reserves exactly the order's units."""
    both = [servers.start(), servers.start()]
    chance = random.Random(11)
    expected: Counter[str] = Counter()
    for n in range(ROUNDS):
        business = n % 2 == 1
        lines = {"A": chance.randint(1, 2), "C": chance.randint(1, 2)}
        answers = race(both, request(f"ext-{n}", business, **lines))
        assert len({a.order.id for a in answers}) == 1
        assert sum(a.created for a in answers) == 1
        order = answers[0].order
        assert order.state == opb.ORDER_STATE_RELEASED
        expected += Counter(lines)
        assert reserved(redis_url) == expected
        if business:
            assert peer.intents_of(order.id) == []
        else:
            assert order.payment.state == opb.PAYMENT_STATE_CAPTURED
            assert [i["id"] for i in peer.intents_of(order.id)] == [order.payment.reference]
            assert peer.captures_of(order.id) == 1


@pytest.mark.parametrize(
    ("hold_on", "drop", "finish"),
    [
        ("/payment_intents", True, "place"),  # killed before the peer opened anything
        ("/payment_intents", False, "place"),  # the peer authorized the card, nobody heard
        ("/capture", False, "place"),  # the stock was held and the money taken, nobody heard
        ("/payment_intents", False, "resume"),
    ],
    ids=["open-unsent", "open-done", "capture-done", "open-done-resume"],
)
def test_a_server_killed_between_storing_the_order_and_its_payment_repeats_nothing(
    servers: Servers,
    peer: HoldingPeer,
    redis_url: str,
    hold_on: str,
    drop: bool,
    finish: str,
) -> None:
    """Given a server placing an order, when it is SIGKILLed while its call to the card peer
    (opening the payment, or capturing it) is in flight, then the order is stored with its
    payment not opened; when the shop retries PlaceOrder on a restarted server (or sends
    ResumeOrder), then the order is finished: one PaymentIntent, captured once, one hold."""
    peer.hold_on, peer.drop = hold_on, drop
    place = request("ext-kill", business=False, A=2, B=1)
    doomed = servers.start()
    failed: list[grpc.RpcError] = []

    def call() -> None:
        try:
            doomed.orders.PlaceOrder(place, timeout=60)
        except grpc.RpcError as lost:
            failed.append(lost)

    caller = threading.Thread(target=call)
    caller.start()
    assert peer.holding.wait(60), "the server never called the card peer"
    orders = RedisOrders.from_url(redis_url)
    order_id = orders.find_external("web", "ext-kill")
    assert order_id is not None  # the order was stored before anything was called
    stored = orders.load(order_id)
    assert (stored.version, stored.payment.opened) == (1, False)
    doomed.kill()
    caller.join(60)
    assert len(failed) == 1 and failed[0].code() == grpc.StatusCode.UNAVAILABLE
    peer.release.set()  # the peer now does (or drops) what the dead server asked
    assert orders.load(order_id).payment.opened is False

    again = servers.start()
    if finish == "place":
        answer = again.orders.PlaceOrder(place, timeout=60)
        assert (answer.created, answer.order.id) == (False, order_id)
    else:
        again.orders.ResumeOrder(
            opb.ResumeOrderRequest(order_id=order_id, idempotency_key="resume-1"), timeout=60
        )
    record = orders.load(order_id)
    assert record.state.value == "RELEASED"
    assert (record.payment.state.value, record.payment.opened) == ("CAPTURED", True)
    assert [i["id"] for i in peer.intents_of(order_id)] == [record.payment.reference]
    assert peer.captures_of(order_id) == 1
    assert reserved(redis_url) == Counter({"A": 2, "B": 1})
    repeat = again.orders.PlaceOrder(place, timeout=60)  # and once more: nothing moves
    assert (repeat.created, repeat.order.id) == (False, order_id)
    assert peer.captures_of(order_id) == 1
    assert reserved(redis_url) == Counter({"A": 2, "B": 1})
