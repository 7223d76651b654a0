"""No oversell: 32 clients reserve the same hot skus at once through two server processes'
worth of gRPC servers sharing one real redis-server."""

from __future__ import annotations

import random
import threading
from collections import Counter

import grpc
import pytest

from allocation_engine.adapters.clock import SystemClock
from allocation_engine.adapters.redis.inventory import RedisStore
from allocation_engine.api.server import AllocationServer
from allocation_engine.engine import Node, NodeType, default_rules
from allocation_engine.engine.rules import default_rules_text
from allocation_engine.ports.inventory import SnapshotLine
from allocation_engine.proto.allocation.v1 import allocation_pb2 as apb
from allocation_engine.proto.allocation.v1 import allocation_pb2_grpc as apb_grpc
from allocation_engine.proto.allocation.v1 import common_pb2 as cpb
from allocation_engine.proto.allocation.v1 import inventory_pb2 as ipb
from allocation_engine.proto.allocation.v1 import inventory_pb2_grpc as ipb_grpc
from allocation_engine.service import Services
from tests.support.grpc_inventory import COLOGNE

CLIENTS = 32
NODES = [
    Node("WH-FRA", NodeType.WAREHOUSE, 50.11, 8.68, "DE"),
    Node("WH-BER", NodeType.WAREHOUSE, 52.52, 13.40, "DE"),
    Node("WH-HAM", NodeType.WAREHOUSE, 53.55, 9.99, "DE"),
    Node("ST-MUC", NodeType.STORE, 48.14, 11.58, "DE"),
]
STOCK = [
    SnapshotLine("WH-FRA", "H1", 60, 2),
    SnapshotLine("WH-BER", "H1", 45, 0),
    SnapshotLine("WH-HAM", "H1", 30, 5),
    SnapshotLine("ST-MUC", "H1", 12, 1),
    SnapshotLine("WH-FRA", "H2", 25, 0),
    SnapshotLine("WH-BER", "H2", 30, 3),
    SnapshotLine("ST-MUC", "H2", 9, 0),
]


def existing(sku: str) -> int:
    return sum(line.on_hand - (line.safety_stock or 0) for line in STOCK if line.sku == sku)


def client(address: str, number: int, held: Counter[str], keys: list[str], lock: threading.Lock):
    """Reserves random orders of the hot skus until neither has a single unit left."""
    rng = random.Random(number)
    exhausted: set[str] = set()
    with grpc.insecure_channel(address) as channel:
        stub = apb_grpc.AllocationServiceStub(channel)
        count = 0
        while exhausted != {"H1", "H2"}:
            count += 1
            wanted = {
                sku: rng.randint(1, 3)
                for sku in rng.sample(["H1", "H2"], rng.randint(1, 2))
                if sku not in exhausted
            } or {sku: 1 for sku in {"H1", "H2"} - exhausted}
            if count > 3 and rng.random() < 0.5:
                wanted = {sku: 1 for sku in list(wanted)[:1]}
            key = f"c{number}-{count}"
            request = apb.ReserveRequest(
                idempotency_key=key,
                ttl_seconds=600,
                order=cpb.Order(
                    id=key,
                    lines=[cpb.OrderLine(sku=s, quantity=q) for s, q in wanted.items()],
                    ship_to=COLOGNE,
                ),
            )
            try:
                reservation = stub.Reserve(request, timeout=60).reservation
            except grpc.RpcError as error:
                assert error.code() == grpc.StatusCode.FAILED_PRECONDITION, error.details()
                if len(wanted) == 1 and sum(wanted.values()) == 1:
                    exhausted |= set(wanted)
                continue
            if count % 5 == 0:  # a retry with the same key returns the same reservation
                assert stub.Reserve(request, timeout=60).reservation.id == reservation.id
            with lock:
                keys.append(reservation.id)
                for shipment in reservation.plan.shipments:
                    for line in shipment.lines:
                        held[line.sku] += line.quantity


@pytest.mark.redis
def test_32_concurrent_clients_never_oversell(any_redis_url: str) -> None:
    redis_url = any_redis_url
    """Given hot skus at four nodes, when 32 clients reserve them through two servers until
    nothing is left, then exactly the units that existed are held, every hold is in the store,
    and on_hand = available + reserved + safety_stock at every position."""
    seed = RedisStore.from_url(redis_url)
    seed.upsert_nodes(NODES)
    seed.apply_snapshot(1, STOCK)
    servers = [
        AllocationServer(
            Services.build(
                RedisStore.from_url(redis_url), SystemClock(), default_rules(), default_rules_text()
            ),
            port=0,
            threads=16,
        ).start()
        for _ in range(2)
    ]
    held: Counter[str] = Counter()
    ids: list[str] = []
    lock = threading.Lock()
    try:
        threads = [
            threading.Thread(
                target=client, args=(servers[i % 2].address, i, held, ids, lock), daemon=True
            )
            for i in range(CLIENTS)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(240)
        assert not any(t.is_alive() for t in threads)
        # A client may give up on a unit it lost five races for; one last client, alone,
        # takes whatever is left so the count below is exact.
        client(servers[0].address, CLIENTS, held, ids, lock)

        assert held == Counter({"H1": existing("H1"), "H2": existing("H2")})
        with grpc.insecure_channel(servers[0].address) as channel:
            view = ipb_grpc.InventoryServiceStub(channel).GetAvailability(
                ipb.GetAvailabilityRequest(skus=["H1", "H2"])
            )
        per_node: Counter[tuple[str, str]] = Counter()
        for rid in set(ids):
            record = seed.get_reservation(rid)
            assert record is not None and record.state.value == "HELD"
            for node_id, lines in record.holds.items():
                for sku, units in lines.items():
                    per_node[node_id, sku] += units
        for sku in view.skus:
            assert sku.available == 0
            for p in sku.positions:
                assert p.on_hand == p.available + p.reserved + p.safety_stock
                assert p.reserved == per_node[p.node_id, p.sku]
        for node in NODES:
            for level in seed.node_stock(node.id):
                assert level.on_hand == level.available + level.reserved + level.safety_stock
                assert level.reserved == per_node[node.id, level.sku]
    finally:
        for server in servers:
            server.stop(grace=0)
