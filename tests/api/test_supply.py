"""Incoming supply over gRPC on a real server on a free port, over the memory store and a real
redis-server: lots put, listed, received and revised; available-to-promise by date; reservations
that hold lot units when the published rules enable backorders; bad fields named.

The clock stands at 2027-01-15 (UTC). The tiny network: WH-FRA holds A=5, B=2; WH-BER A=10
(safety 1); ST-MUC B=3."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from allocation_engine.adapters.memory.inventory import MemoryStore
from allocation_engine.adapters.redis.inventory import RedisStore
from allocation_engine.engine.rules import default_rules_text
from allocation_engine.ports.inventory import InventoryStore
from allocation_engine.proto.allocation.v1 import allocation_pb2 as apb
from allocation_engine.proto.allocation.v1 import allocation_pb2_grpc as apb_grpc
from allocation_engine.proto.allocation.v1 import inventory_pb2 as ipb
from allocation_engine.proto.allocation.v1 import inventory_pb2_grpc as ipb_grpc
from allocation_engine.proto.allocation.v1 import rules_pb2 as rpb
from allocation_engine.proto.allocation.v1 import rules_pb2_grpc as rpb_grpc
from tests.support.grpc_inventory import bad_fields, order, reserve

TODAY = "2027-01-15"


@pytest.fixture(params=["memory", "redis"])
def store(request: pytest.FixtureRequest) -> InventoryStore:
    """The server's store: in memory, then on the session's own redis-server."""
    if request.param == "memory":
        return MemoryStore()
    return RedisStore.from_url(request.getfixturevalue("redis_url"))


def backorders(rules: rpb_grpc.RulesServiceStub) -> None:
    """Publishes the default rules with backorders enabled."""
    text = default_rules_text().replace("\nenabled = false\n", "\nenabled = true\n", 1)
    rules.PutRules(rpb.PutRulesRequest(toml=text, idempotency_key="backorders"))


def lot(
    lot_id: str, node: str, sku: str, units: int, expected: str, transfer: bool = False
) -> ipb.SupplyLot:
    kind = ipb.SUPPLY_KIND_TRANSFER if transfer else ipb.SUPPLY_KIND_PO
    return ipb.SupplyLot(
        id=lot_id, node_id=node, sku=sku, units=units, expected=expected, kind=kind
    )


def put(
    inventory: ipb_grpc.InventoryServiceStub, key: str, *lots: ipb.SupplyLot
) -> list[ipb.SupplyLot]:
    return list(inventory.PutSupply(ipb.PutSupplyRequest(idempotency_key=key, lots=lots)).lots)


def promise(
    inventory: ipb_grpc.InventoryServiceStub, sku: str, **kw: Any
) -> dict[str, list[tuple[str, int]]]:
    answer = inventory.GetAvailableToPromise(ipb.GetAvailableToPromiseRequest(sku=sku, **kw))
    return {n.node_id: [(s.date, s.units) for s in n.steps] for n in answer.nodes}


def test_lots_are_put_listed_and_idempotent_by_key(
    inventory: ipb_grpc.InventoryServiceStub,
) -> None:
    stored = put(
        inventory,
        "p1",
        lot("PO-1", "WH-FRA", "A", 8, "2027-01-20"),
        lot("TR-1", "ST-MUC", "A", 2, "2027-01-17", transfer=True),
    )
    assert [(x.id, x.units, x.held, x.kind) for x in stored] == [
        ("PO-1", 8, 0, ipb.SUPPLY_KIND_PO),
        ("TR-1", 2, 0, ipb.SUPPLY_KIND_TRANSFER),
    ]
    again = put(
        inventory,
        "p1",
        lot("PO-1", "WH-FRA", "A", 8, "2027-01-20"),
        lot("TR-1", "ST-MUC", "A", 2, "2027-01-17", transfer=True),
    )
    assert again == stored
    with pytest.raises(grpc.RpcError) as reused:
        put(inventory, "p1", lot("PO-1", "WH-FRA", "A", 9, "2027-01-20"))
    assert reused.value.code() == grpc.StatusCode.ALREADY_EXISTS
    listed = inventory.ListSupply(ipb.ListSupplyRequest(skus=["A"], node_id="ST-MUC")).lots
    assert [x.id for x in listed] == ["TR-1"]
    assert [x.id for x in inventory.ListSupply(ipb.ListSupplyRequest()).lots] == ["TR-1", "PO-1"]


def test_available_to_promise_counts_shelf_then_lots_by_date(
    inventory: ipb_grpc.InventoryServiceStub,
) -> None:
    put(
        inventory,
        "p1",
        lot("PO-1", "WH-FRA", "A", 8, "2027-01-20"),
        lot("PO-2", "WH-FRA", "A", 4, "2027-03-01"),
        lot("PO-0", "ST-MUC", "A", 2, "2027-01-01"),  # overdue: counts today
    )
    assert promise(inventory, "A") == {
        "ST-MUC": [(TODAY, 2)],
        "WH-BER": [(TODAY, 9)],
        "WH-FRA": [(TODAY, 5), ("2027-01-20", 13), ("2027-03-01", 17)],
    }
    assert promise(inventory, "A", node_id="WH-FRA", horizon_days=10) == {
        "WH-FRA": [(TODAY, 5), ("2027-01-20", 13)]
    }


def test_reservations_hold_lot_units_under_backorders_and_receipt_moves_them_to_the_shelf(
    inventory: ipb_grpc.InventoryServiceStub,
    allocation: apb_grpc.AllocationServiceStub,
    rules: rpb_grpc.RulesServiceStub,
    store: InventoryStore,
) -> None:
    """With backorders enabled, an order beyond the shelf waits for a PO; the lot is held, so
    nothing of it is promisable any more; receiving it moves the hold to the shelf."""
    backorders(rules)
    put(inventory, "p1", lot("PO-1", "WH-FRA", "B", 6, "2027-01-18"))
    held = reserve(allocation, "k1", order("o-1", B=11), ttl=3600)  # 5 on shelves + the PO
    [po] = inventory.ListSupply(ipb.ListSupplyRequest(skus=["B"])).lots
    assert po.held == 6
    assert promise(inventory, "B") == {}
    [fra] = [h for h in store.node_holds("WH-FRA") if h.reservation_id == held.id]
    assert (fra.lines, fra.lots) == ({"B": 2}, {"PO-1": 6})
    received = inventory.ReceiveSupply(
        ipb.ReceiveSupplyRequest(idempotency_key="g1", lot_id="PO-1", units=6)
    )
    assert list(received.reservation_ids) == [held.id]
    assert list(received.on_shelf) == [held.id]
    assert not received.HasField("lot")
    assert (received.position.on_hand, received.position.reserved) == (8, 8)
    [fra] = [h for h in store.node_holds("WH-FRA") if h.reservation_id == held.id]
    assert (fra.lines, fra.lots) == ({"B": 8}, {})
    assert inventory.ListSupply(ipb.ListSupplyRequest()).lots == []


def test_a_released_reservation_gives_its_lot_units_back(
    inventory: ipb_grpc.InventoryServiceStub,
    allocation: apb_grpc.AllocationServiceStub,
    rules: rpb_grpc.RulesServiceStub,
) -> None:
    backorders(rules)
    put(inventory, "p1", lot("PO-1", "WH-FRA", "B", 6, "2027-01-18"))
    held = reserve(allocation, "k1", order("o-1", B=11), ttl=3600)
    allocation.ReleaseReservation(
        apb.ReleaseReservationRequest(reservation_id=held.id, idempotency_key="x1")
    )
    [po] = inventory.ListSupply(ipb.ListSupplyRequest(skus=["B"])).lots
    assert po.held == 0
    assert promise(inventory, "B")["WH-FRA"] == [(TODAY, 2), ("2027-01-18", 8)]


def test_revising_a_lot_names_the_broken_reservations(
    inventory: ipb_grpc.InventoryServiceStub,
    allocation: apb_grpc.AllocationServiceStub,
    rules: rpb_grpc.RulesServiceStub,
) -> None:
    """Late, every reservation promised before the new date breaks; cut, those held beyond."""
    backorders(rules)
    put(inventory, "p1", lot("PO-1", "ST-MUC", "B", 5, "2027-01-18"))
    first = reserve(allocation, "k1", order("o-1", B=10), ttl=3600)  # 5 on shelves + the PO
    late = inventory.ReviseSupply(
        ipb.ReviseSupplyRequest(idempotency_key="v1", lot_id="PO-1", expected="2027-02-01")
    )
    assert list(late.broken_reservation_ids) == [first.id]
    assert late.lot.expected == "2027-02-01"
    cut = inventory.ReviseSupply(
        ipb.ReviseSupplyRequest(idempotency_key="v2", lot_id="PO-1", units=4)
    )
    assert list(cut.broken_reservation_ids) == [first.id]
    assert (cut.lot.units, cut.lot.held) == (4, 5)


def test_bad_supply_fields_are_named(inventory: ipb_grpc.InventoryServiceStub) -> None:
    with pytest.raises(grpc.RpcError) as bad_date:
        put(inventory, "p1", lot("PO-1", "WH-FRA", "A", 3, "2027-02-30"))
    assert bad_date.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad_fields(bad_date.value) == ["lots[0].expected"]
    with pytest.raises(grpc.RpcError) as unknown:
        put(inventory, "p2", lot("PO-1", "WH-XXX", "A", 3, "2027-02-01"))
    assert bad_fields(unknown.value) == ["lots[0].node_id"]
    with pytest.raises(grpc.RpcError) as far:
        put(inventory, "p3", lot("PO-1", "WH-FRA", "A", 3, "2029-01-01"))
    assert bad_fields(far.value) == ["lots[0].expected"]
    with pytest.raises(grpc.RpcError) as too_many:
        put(inventory, "p4", lot("PO-1", "WH-FRA", "A", 10**9 + 1, "2027-02-01"))
    assert bad_fields(too_many.value) == ["lots[0].units"]
    with pytest.raises(grpc.RpcError) as missing:
        inventory.ReceiveSupply(
            ipb.ReceiveSupplyRequest(idempotency_key="g", lot_id="NOPE", units=1)
        )
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as nothing:
        inventory.ReviseSupply(ipb.ReviseSupplyRequest(idempotency_key="v", lot_id="NOPE"))
    assert bad_fields(nothing.value) == ["units"]
    with pytest.raises(grpc.RpcError) as horizon:
        promise(inventory, "A", horizon_days=400)
    assert bad_fields(horizon.value) == ["horizon_days"]
