"""Order and customer events to a CRM through the outbox, over both order stores, to a real
local HTTP endpoint that checks the HMAC-SHA256 signature: every event arrives once under
`crm:<order>/<seq>` with the new customer's account on its `order.placed`; a receiver that dies
after reading a message, or is down for a while, loses nothing and is never answered twice for
one key; a wrong secret is refused and retried, never recorded as delivered."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from allocation_engine.adapters.feeds.crm_http import HttpCrm, signature
from allocation_engine.adapters.http_client import RetryPolicy
from allocation_engine.adapters.mail.notifier import MailRenderer, SmtpNotifier
from allocation_engine.adapters.wms import FolderWms
from allocation_engine.service.feeds.crm import CrmEvents, crm_key
from allocation_engine.service.outbox import Dispatcher
from allocation_engine.testing.crm_peer import CrmPeer
from tests.support.orders import Mailbox, World, b2b, b2c, free_port

SECRET = "s3cret"
FAST = RetryPolicy(attempts=2, initial=0.01, maximum=0.02)


@pytest.fixture
def crm() -> Iterator[CrmPeer]:
    peer = CrmPeer(SECRET, free_port()).start()
    yield peer
    peer.stop()


def dispatcher(world: World, mailbox: Mailbox, tmp_path: Path, url: str, secret: str) -> Dispatcher:
    notifier = SmtpNotifier("127.0.0.1", mailbox.port, MailRenderer("shop@example.com"))
    events = CrmEvents(HttpCrm(url, secret, timeout=2.0, retry=FAST), world.orders.customer)
    return Dispatcher(world.orders, notifier, FolderWms(tmp_path), "d-1", crm=events)


def every_key(world: World) -> set[str]:
    return {crm_key(e) for r in world.flow.list_orders() for e in world.flow.get(r.id).timeline}


def run_until(d: Dispatcher, done: object, seconds: float = 15.0) -> None:
    """Runs the dispatcher (past leases) until `done()` holds."""
    deadline = time.monotonic() + seconds
    while not done() and time.monotonic() < deadline:  # type: ignore[operator]
        d.run_once(wait_seconds=0.05)
        time.sleep(0.05)


def test_every_event_arrives_once_with_the_new_customer(
    any_world: World, mailbox: Mailbox, crm: CrmPeer, tmp_path: Path
) -> None:
    """Given two orders placed, when the dispatcher runs, then the CRM got each of their
    events once, signed, and the B2C order's `order.placed` carries the account it created."""
    any_world.flow.place(b2c("w-1", A=2))
    any_world.flow.place(b2b("po-1", C=1))
    keys = every_key(any_world)
    d = dispatcher(any_world, mailbox, tmp_path, crm.url, SECRET)
    run_until(d, lambda: set(crm.messages) >= keys)
    assert set(crm.messages) == keys and crm.refused == 0
    assert all(n == 1 for n in crm.answered.values())
    assert all(any_world.orders.delivered(k) for k in keys)
    placed = [m for m in crm.messages.values() if m["type"] == "order.placed"]
    created = [m["customer_created"] for m in placed if "customer_created" in m]
    assert created and created[0]["email"] and created[0]["price_terms"]
    assert all("context" not in m["data"] for m in crm.messages.values())


def test_a_receiver_killed_mid_delivery_loses_nothing_and_doubles_nothing(
    any_world: World, mailbox: Mailbox, crm: CrmPeer, tmp_path: Path
) -> None:
    """Given a CRM that dies after reading the first messages (before answering), and later
    goes down altogether while another order is placed, when the dispatcher keeps running and
    the CRM comes back on its port, then every event of both orders is there, and no key was
    ever answered twice (a receipt stops every repeat after a success)."""
    any_world.flow.place(b2c("w-1", A=2))
    crm.cut_next(3)
    d = dispatcher(any_world, mailbox, tmp_path, crm.url, SECRET)
    first = every_key(any_world)
    run_until(d, lambda: all(any_world.orders.delivered(k) for k in first))
    crm.stop()
    any_world.flow.place(b2b("po-1", C=1))
    for _ in range(3):
        d.run_once(wait_seconds=0.05)  # refused connections: nothing acknowledged
    crm.start()
    keys = every_key(any_world)
    run_until(d, lambda: all(any_world.orders.delivered(k) for k in keys))
    assert set(crm.messages) == keys
    assert set(crm.answered) == keys and all(n == 1 for n in crm.answered.values())
    assert sum(crm.received.values()) > len(keys)  # the cut messages came again
    assert any_world.orders.claim("d-2", 100, 0.3) == []  # all acknowledged


def test_a_wrong_secret_is_refused_and_kept_for_later(
    world: World, mailbox: Mailbox, crm: CrmPeer, tmp_path: Path
) -> None:
    """Given a sender signing with another secret, when it delivers, then the CRM refuses
    every message (401), none is receipted, and a sender with the right secret delivers them."""
    world.flow.place(b2c("w-1", A=1))
    keys = every_key(world)
    wrong = dispatcher(world, mailbox, tmp_path, crm.url, "other")
    wrong.run_once(wait_seconds=0.05)
    assert crm.refused >= 1 and crm.messages == {}
    assert not any(world.orders.delivered(k) for k in keys)
    run_until(
        dispatcher(world, mailbox, tmp_path, crm.url, SECRET), lambda: crm.messages.keys() >= keys
    )
    assert set(crm.messages) == keys


def test_the_signature_is_the_hmac_of_the_exact_body() -> None:
    """Given the RFC-style test vector, then the signature is its hex HMAC-SHA256."""
    body = b"The quick brown fox jumps over the lazy dog"
    assert signature("key", body) == (
        "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
    )
