"""A crash between a state change and its e-mail loses nothing and sends nothing twice.

The workflow commits the state change and the `notification.requested` event in one atomic
write; a separate dispatcher process (`allocation-engine outbox`) sends the e-mails from the
Redis stream. Here the orders are placed while no dispatcher runs, then dispatchers are killed
with SIGKILL mid-way and restarted, against a real redis-server and a real SMTP server.

What "nothing twice" means, precisely: SMTP has no idempotency, so a dispatcher killed after the
server stored a message but before it saw "250 OK" cannot know it was sent, and its successor
sends it again. That copy carries the same Message-ID (the notification's key), and a mailbox
keyed by Message-ID holds it once. Every other crash window (before sending, after sending and
receipting, before acknowledging) repeats nothing even on the wire: the receipt is checked
before each send.
"""

from __future__ import annotations

import asyncio
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

import pytest

from allocation_engine.adapters.clock import FakeClock
from allocation_engine.adapters.mail.notifier import message_id
from allocation_engine.adapters.payments.fake_provider import FakeCardProvider
from allocation_engine.adapters.redis.inventory import RedisStore
from allocation_engine.adapters.redis.orders import RedisOrders
from allocation_engine.orders.events import EventType
from tests.support.orders import Mailbox, b2c, make_world

pytestmark = pytest.mark.redis

ORDERS = 6  # each asks for 2 e-mails (order received, payment confirmed) and 1 pick list
DOMAIN = "example.com"


class SlowMailbox(Mailbox):
    """Takes each message, then waits `delay` seconds before answering 250 (a slow relay), so
    kills land inside SMTP transactions; `freeze_at` makes it hold message n until released."""

    def __init__(self, delay: float = 0.0, freeze_at: int | None = None) -> None:
        super().__init__()
        self.delay, self.freeze_at = delay, freeze_at
        self.frozen = threading.Event()
        self.release = threading.Event()

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        answer = await super().handle_DATA(server, session, envelope)
        if len(self.messages) == self.freeze_at:
            self.frozen.set()
            await asyncio.get_running_loop().run_in_executor(None, self.release.wait)
        await asyncio.sleep(self.delay)
        return answer


@pytest.fixture
def peer() -> Iterator[FakeCardProvider]:
    running = FakeCardProvider().start()
    yield running
    running.stop()


def place_orders(redis_url: str, peer: FakeCardProvider) -> set[str]:
    """Places the orders with no dispatcher running; returns the Message-IDs they ask for."""
    orders = RedisOrders.from_url(redis_url)
    world = make_world(RedisStore.from_url(redis_url), orders, peer, FakeClock())
    keys = set()
    for n in range(ORDERS):
        record = world.flow.place(b2c(f"w-{n}", A=1)).record
        keys |= {
            message_id(e.data["key"], DOMAIN)
            for e in world.flow.get(record.id).timeline
            if e.type is EventType.NOTIFICATION_REQUESTED
        }
    assert len(keys) == 2 * ORDERS
    return keys


def dispatcher(redis_url: str, mailbox: Mailbox, wms: Path) -> subprocess.Popen[bytes]:
    command = [
        sys.executable,
        "-m",
        "allocation_engine.cli",
        "outbox",
        "--redis-url",
        redis_url,
        "--smtp",
        f"127.0.0.1:{mailbox.port}",
        "--mail-from",
        f"shop@{DOMAIN}",
        "--wms-dir",
        str(wms),
        "--lease",
        "1",
    ]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def wait_for_all(mailbox: Mailbox, expected: set[str], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while {m["Message-ID"] for m in mailbox.messages} != expected:
        assert time.monotonic() < deadline, "e-mails missing after restart"
        time.sleep(0.1)


def test_a_dispatcher_killed_inside_an_smtp_transaction_loses_nothing(
    redis_url: str, peer: FakeCardProvider, tmp_path: Path
) -> None:
    """Given 12 e-mails waiting in the log, when the dispatcher is SIGKILLed while the mail
    server holds the 5th message unanswered, and a new dispatcher takes over, then all 12
    arrive; only the 5th arrives twice on the wire, both times with the same Message-ID."""
    expected = place_orders(redis_url, peer)
    mailbox = SlowMailbox(freeze_at=5).start()
    try:
        first = dispatcher(redis_url, mailbox, tmp_path)
        assert mailbox.frozen.wait(60), "the dispatcher never reached the 5th e-mail"
        in_flight = mailbox.messages[4]["Message-ID"]
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
        mailbox.release.set()
        second = dispatcher(redis_url, mailbox, tmp_path)
        try:
            wait_for_all(mailbox, expected)
            time.sleep(1.5)  # anything still to come would come now
        finally:
            stop(second)
    finally:
        mailbox.stop()
    wire = Counter(m["Message-ID"] for m in mailbox.messages)
    assert set(wire) == expected
    assert {k: n for k, n in wire.items() if n > 1} == {in_flight: 2}
    assert len(list(tmp_path.rglob("*.json"))) == ORDERS  # every pick list, once each


def test_dispatchers_killed_at_random_moments_lose_nothing(
    redis_url: str, peer: FakeCardProvider, tmp_path: Path
) -> None:
    """Given 12 e-mails waiting and a mail server that answers after 50 ms, when dispatchers
    are SIGKILLed at random moments three times and restarted, then every e-mail arrives, and
    copies on the wire (same Message-ID) are at most one per kill."""
    expected = place_orders(redis_url, peer)
    chance = random.Random(4)
    mailbox = SlowMailbox(delay=0.05).start()
    kills = 0
    try:
        for _ in range(3):
            process = dispatcher(redis_url, mailbox, tmp_path)
            count = len(mailbox.messages)
            deadline = time.monotonic() + 60
            while len(mailbox.messages) < count + 2 and time.monotonic() < deadline:
                if {m["Message-ID"] for m in mailbox.messages} == expected:
                    break  # nothing left to interrupt
                time.sleep(0.01)
            time.sleep(chance.uniform(0, 0.1))
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
            kills += 1
        last = dispatcher(redis_url, mailbox, tmp_path)
        try:
            wait_for_all(mailbox, expected)
            time.sleep(1.5)
        finally:
            stop(last)
    finally:
        mailbox.stop()
    wire = Counter(m["Message-ID"] for m in mailbox.messages)
    assert set(wire) == expected
    assert sum(wire.values()) - len(expected) <= kills
    assert all(n <= 2 for n in wire.values())
