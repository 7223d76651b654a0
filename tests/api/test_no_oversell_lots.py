"""No oversold purchase order: 12 clients reserve one sku through two gRPC servers sharing one
real Redis (single, then Cluster) while backorders let plans wait for an incoming lot; the lot is
never held beyond its units, and releasing every reservation gives every unit back."""

from __future__ import annotations

import random
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import grpc
import pytest

from allocation_engine.adapters.clock import SystemClock
from allocation_engine.adapters.redis.inventory import RedisStore
from allocation_engine.api.server import AllocationServer
from allocation_engine.engine import Node, NodeType, default_rules
from allocation_engine.engine.rules import default_rules_text
from allocation_engine.ports.inventory import SnapshotLine, SupplyLot
from allocation_engine.proto.allocation.v1 import allocation_pb2 as apb
from allocation_engine.proto.allocation.v1 import allocation_pb2_grpc as apb_grpc
from allocation_engine.proto.allocation.v1 import common_pb2 as cpb
from allocation_engine.service import Services
from tests.support.grpc_inventory import COLOGNE

CLIENTS = 12
SHELF, LOT = 8, 30
NODES = [
    Node("WH-FRA", NodeType.WAREHOUSE, 50.11, 8.68, "DE"),
    Node("WH-BER", NodeType.WAREHOUSE, 52.52, 13.40, "DE"),
]


def client(address: str, number: int, ids: list[str], lock: threading.Lock) -> None:
    """Reserves 1 to 3 units of H until a single unit is refused."""
    rng = random.Random(number)
    with grpc.insecure_channel(address) as channel:
        stub = apb_grpc.AllocationServiceStub(channel)
        for count in range(200):
            quantity = rng.randint(1, 3) if count < 20 else 1
            key = f"c{number}-{count}"
            request = apb.ReserveRequest(
                idempotency_key=key,
                ttl_seconds=600,
                order=cpb.Order(
                    id=key, lines=[cpb.OrderLine(sku="H", quantity=quantity)], ship_to=COLOGNE
                ),
            )
            try:
                reservation = stub.Reserve(request, timeout=60).reservation
            except grpc.RpcError as error:
                assert error.code() == grpc.StatusCode.FAILED_PRECONDITION, error.details()
                if quantity == 1:
                    return
                continue
            with lock:
                ids.append(reservation.id)


@pytest.mark.redis
def test_concurrent_reservations_never_oversell_a_lot(any_redis_url: str) -> None:
    """Given 8 on the shelf and a PO of 30 due in 5 days, when 12 clients reserve until nothing
    is left, then exactly 38 units are held, the lot's holds sum to its held count (never over
    30), and after every release the lot and the shelf are whole again."""
    seed = RedisStore.from_url(any_redis_url)
    seed.upsert_nodes(NODES)
    seed.apply_snapshot(1, [SnapshotLine("WH-BER", "H", SHELF)])
    due = datetime.now(UTC).date() + timedelta(days=5)
    seed.put_supply("po", [SupplyLot("PO-1", "WH-FRA", "H", LOT, due)])
    seed.put_rules(default_rules_text().replace("\nenabled = false\n", "\nenabled = true\n", 1))
    servers = [
        AllocationServer(
            Services.build(
                RedisStore.from_url(any_redis_url),
                SystemClock(),
                default_rules(),
                default_rules_text(),
            ),
            port=0,
            threads=8,
        ).start()
        for _ in range(2)
    ]
    ids: list[str] = []
    lock = threading.Lock()
    try:
        threads = [
            threading.Thread(target=client, args=(servers[i % 2].address, i, ids, lock))
            for i in range(CLIENTS)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(240)
        assert not any(t.is_alive() for t in threads)
        client(servers[0].address, CLIENTS, ids, lock)  # alone: whatever a lost race left

        records = [seed.get_reservation(rid) for rid in set(ids)]
        from_lot = sum(r.lot_holds.get("WH-FRA", {}).get("PO-1", 0) for r in records if r)
        from_shelf = sum(sum(lines.values()) for r in records if r for lines in r.holds.values())
        [po] = seed.list_supply(["H"])
        assert po.held == from_lot == LOT
        assert from_shelf == SHELF
        [ber] = seed.node_stock("WH-BER")
        assert ber.reserved == SHELF
        held_at_node = sum(h.lots.get("PO-1", 0) for h in seed.node_holds("WH-FRA"))
        assert held_at_node == LOT

        with grpc.insecure_channel(servers[1].address) as channel:
            stub = apb_grpc.AllocationServiceStub(channel)
            with ThreadPoolExecutor(8) as pool:
                list(
                    pool.map(
                        lambda rid: stub.ReleaseReservation(
                            apb.ReleaseReservationRequest(
                                reservation_id=rid, idempotency_key=f"rel-{rid}"
                            ),
                            timeout=60,
                        ),
                        set(ids),
                    )
                )
        [po] = seed.list_supply(["H"])
        assert (po.units, po.held) == (LOT, 0)
        [ber] = seed.node_stock("WH-BER")
        assert (ber.on_hand, ber.reserved) == (SHELF, 0)
        assert seed.node_holds("WH-FRA") == () and seed.node_holds("WH-BER") == ()
    finally:
        for server in servers:
            server.stop(grace=0)
