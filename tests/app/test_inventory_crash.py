"""A server process SIGKILLed in the middle of a release or a reserve leaves nothing that a
retry on another server (or `allocation-engine repair`) cannot finish.

The server under test is a real `allocation-engine serve --redis-url ...` process whose Redis
connection goes through a small TCP proxy in this module. The proxy watches what the server
sends; at a seeded moment (the n-th FCALL of a given function) it SIGKILLs the server and drops
that command, so the kill lands exactly between two steps of a call: after the record changed
and before the holds did, after the holds and before the record, and so on. Another server
(in process, on the same Redis) then retries, and the test checks to the unit that every hold
belongs to an open reservation, that the per-sku view equals the per-node authority, and that
on_hand = available + reserved + safety_stock at every position.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

import grpc
import pytest

from allocation_engine.adapters.clock import FakeClock
from allocation_engine.adapters.redis.inventory import RedisStore
from allocation_engine.engine import Node, NodeType
from allocation_engine.ports.inventory import OPEN_STATES, SnapshotLine
from allocation_engine.proto.allocation.v1 import allocation_pb2 as apb
from allocation_engine.proto.allocation.v1 import allocation_pb2_grpc as apb_grpc
from allocation_engine.proto.allocation.v1 import common_pb2 as cpb
from allocation_engine.proto.allocation.v1 import inventory_pb2 as ipb
from allocation_engine.proto.allocation.v1 import inventory_pb2_grpc as ipb_grpc
from allocation_engine.service.repair import repair
from tests.support.crash import KillingProxy, serve
from tests.support.grpc_inventory import COLOGNE, start_server

pytestmark = pytest.mark.redis

NODES = [
    Node("WH-FRA", NodeType.WAREHOUSE, 50.11, 8.68, "DE"),
    Node("WH-BER", NodeType.WAREHOUSE, 52.52, 13.40, "DE"),
    Node("WH-HAM", NodeType.WAREHOUSE, 53.55, 9.99, "DE"),
    Node("ST-MUC", NodeType.STORE, 48.14, 11.58, "DE"),
]
# Little of each sku per node, so most orders split over several nodes.
STOCK = [SnapshotLine(n.id, sku, 40, 1) for n in NODES for sku in ("A", "B")]


@contextmanager
def other_server(
    redis_url: str, ahead: float = 0.0
) -> Iterator[tuple[apb_grpc.AllocationServiceStub, str]]:
    """The server the client retries on, in process, and its address; `ahead` moves its clock
    on (as a retry that comes after the dead call's lease would)."""
    running = start_server(RedisStore.from_url(redis_url), FakeClock(time.time() + ahead))
    try:
        with grpc.insecure_channel(running.address) as channel:
            yield apb_grpc.AllocationServiceStub(channel), running.address
    finally:
        running.stop(grace=0)


def order(key: str, a: int, b: int) -> apb.ReserveRequest:
    return apb.ReserveRequest(
        idempotency_key=key,
        ttl_seconds=600,
        order=cpb.Order(
            id=key,
            lines=[cpb.OrderLine(sku="A", quantity=a), cpb.OrderLine(sku="B", quantity=b)],
            ship_to=COLOGNE,
        ),
    )


def agree(store: RedisStore, address: str) -> None:
    """Holds, view and authority agree to the unit; every hold has an open reservation."""
    held: Counter[tuple[str, str]] = Counter()
    for node in NODES:
        for hold in store.node_holds(node.id):
            record = store.get_reservation(hold.reservation_id)
            assert record is not None, hold
            assert record.state in OPEN_STATES, (hold, record.state)
            assert record.holds.get(node.id) == dict(hold.lines), hold
            for sku, units in hold.lines.items():
                held[node.id, sku] += units
    with grpc.insecure_channel(address) as channel:
        view = ipb_grpc.InventoryServiceStub(channel).GetAvailability(
            ipb.GetAvailabilityRequest(skus=["A", "B"])
        )
    seen = {(p.node_id, p.sku): p for s in view.skus for p in s.positions}
    for node in NODES:
        for level in store.node_stock(node.id):
            p = seen[node.id, level.sku]
            assert (p.on_hand, p.reserved, p.safety_stock) == (
                level.on_hand,
                level.reserved,
                level.safety_stock,
            ), level
            assert level.reserved == held[node.id, level.sku], level
            assert p.on_hand == p.available + p.reserved + p.safety_stock


def seed(redis_url: str) -> RedisStore:
    store = RedisStore.from_url(redis_url)
    store.upsert_nodes(NODES)
    store.apply_snapshot(1, STOCK)
    return store


# Where a release can be cut: before the record says RELEASING, before the holds are given
# back, before the record says RELEASED (each the n-th such command the server sends).
RELEASE_CUTS: list[tuple[bytes, int]] = [
    (b"ae_replace_reservation", 0),
    (b"ae_release", 0),
    (b"ae_replace_reservation", 1),
    (b"ae_release", 2),
    (b"ae_replace_reservation", 3),
]


def test_a_release_killed_at_any_step_is_finished_by_a_retry_on_another_server(
    redis_url: str,
) -> None:
    """Given held and committed reservations split over several nodes, when the server
    releasing them is SIGKILLed between two steps of a release (seeded cuts), and the client
    retries the release on another server, then every reservation ends RELEASED, nothing is
    held any more, and view and authority agree to the unit."""
    store = seed(redis_url)
    proxy = KillingProxy(redis_url)
    rng = random.Random(7)
    try:
        with other_server(redis_url) as (other, other_address):
            for round_, (pattern, nth) in enumerate(rng.sample(RELEASE_CUTS, 3)):
                ids = []
                for i in range(4):
                    r = other.Reserve(order(f"r{round_}-{i}", 7, 3), timeout=30).reservation
                    if i % 2:
                        other.CommitReservation(
                            apb.CommitReservationRequest(
                                reservation_id=r.id, idempotency_key=f"c-{r.id}"
                            ),
                            timeout=30,
                        )
                    ids.append(r.id)
                    assert len(r.plan.shipments) >= 1
                victim, address = serve(f"redis://127.0.0.1:{proxy.port}/0")
                proxy.arm(victim, pattern, nth)
                try:
                    with grpc.insecure_channel(address) as channel:
                        stub = apb_grpc.AllocationServiceStub(channel)
                        for rid in ids:
                            try:
                                stub.ReleaseReservation(
                                    apb.ReleaseReservationRequest(
                                        reservation_id=rid, idempotency_key=f"x-{rid}"
                                    ),
                                    timeout=10,
                                )
                            except grpc.RpcError as error:
                                assert error.code() == grpc.StatusCode.UNAVAILABLE
                                break
                    assert proxy.fired.wait(10), "the cut was never reached"
                finally:
                    victim.kill()
                    victim.wait()
                for rid in ids:  # the client retries everything it is not sure of
                    again = other.ReleaseReservation(
                        apb.ReleaseReservationRequest(
                            reservation_id=rid, idempotency_key=f"y-{rid}"
                        ),
                        timeout=10,
                    ).reservation
                    assert again.state == apb.RESERVATION_STATE_RELEASED
                assert all(not store.node_holds(n.id) for n in NODES)
                agree(store, other_address)
                assert repair(store, time.time()).fixed == 0
    finally:
        proxy.close()


# Where a reserve can be cut: before any hold, before the record says HELD, in the middle of a
# second reservation's holds.
RESERVE_CUTS: list[tuple[bytes, int]] = [
    (b"ae_hold", 0),
    (b"ae_replace_reservation", 0),
    (b"ae_hold", 1),
    (b"ae_replace_reservation", 1),
]


def test_a_reserve_killed_at_any_step_is_finished_by_a_retry_on_another_server(
    redis_url: str,
) -> None:
    """Given a server SIGKILLed between two steps of a Reserve (seeded cuts), when the client
    retries with the same key on another server after the dead call's lease, then it holds
    once, every hold belongs to an open reservation and view and authority agree."""
    store = seed(redis_url)
    proxy = KillingProxy(redis_url)
    rng = random.Random(11)
    try:
        for round_, (pattern, nth) in enumerate(rng.sample(RESERVE_CUTS, 3)):
            victim, address = serve(f"redis://127.0.0.1:{proxy.port}/0")
            proxy.arm(victim, pattern, nth)
            requests = [order(f"h{round_}-{i}", 5 + i, 2) for i in range(3)]
            try:
                with grpc.insecure_channel(address) as channel:
                    stub = apb_grpc.AllocationServiceStub(channel)
                    for request in requests:
                        try:
                            stub.Reserve(request, timeout=10)
                        except grpc.RpcError as error:
                            assert error.code() == grpc.StatusCode.UNAVAILABLE
                            break
                assert proxy.fired.wait(10), "the cut was never reached"
            finally:
                victim.kill()
                victim.wait()
            with other_server(redis_url, ahead=11.0) as (other, other_address):
                for request in requests:
                    answer = other.Reserve(request, timeout=10).reservation
                    assert answer.state == apb.RESERVATION_STATE_HELD
                    assert other.Reserve(request, timeout=10).reservation == answer
                agree(store, other_address)
            assert repair(store, time.time()).fixed == 0
    finally:
        proxy.close()
