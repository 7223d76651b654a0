"""Incoming supply in the `InventoryStore`: every test runs against the memory store, Redis,
Redis with the Cluster layout, and a real Redis Cluster (the `store` fixture), so all keep the
same promises: lots kept with their node, holds that never take more of a lot than it has,
receipts that turn lot holds into shelf holds in promise order, revisions that say which
promises broke."""

from __future__ import annotations

import threading
from datetime import date

import pytest

from allocation_engine.engine import Node, NodeType
from allocation_engine.errors import InvalidInput, NotFound
from allocation_engine.ports.inventory import (
    Hold,
    InventoryStore,
    Level,
    SnapshotLine,
    SupplyKind,
    SupplyLot,
)

NOW = 1_800_000_000.0
JAN5, JAN9, JAN20 = date(2027, 1, 5), date(2027, 1, 9), date(2027, 1, 20)


@pytest.fixture
def supplied(store: InventoryStore) -> InventoryStore:
    """Nodes A and B; A has 3 of S1 on the shelf, a PO of 10 S1 due Jan 5 and a transfer of 4
    S2 due Jan 9; B a PO of 6 S1 due Jan 20."""
    store.upsert_nodes(
        [Node("A", NodeType.WAREHOUSE, 50.0, 8.0, "DE"), Node("B", NodeType.STORE, 52, 13, "DE")]
    )
    store.apply_snapshot(1, [SnapshotLine("A", "S1", 3, 0)])
    store.put_supply(
        "k0",
        [
            SupplyLot("PO-1", "A", "S1", 10, JAN5),
            SupplyLot("TR-1", "A", "S2", 4, JAN9, SupplyKind.TRANSFER),
            SupplyLot("PO-2", "B", "S1", 6, JAN20),
        ],
    )
    return store


def lot(store: InventoryStore, lot_id: str) -> SupplyLot | None:
    found = [x for x in store.list_supply() if x.id == lot_id]
    return found[0] if found else None


def hold(rid: str, lines: dict[str, int], lots: dict[str, int], node: str = "A") -> Hold:
    return Hold(node, rid, lines, NOW + 600, lots=lots)


def test_lots_are_listed_by_node_and_filtered_by_sku_and_node(supplied: InventoryStore) -> None:
    """Every lot comes back as put, by node then id; skus and node narrow the list."""
    assert [x.id for x in supplied.list_supply()] == ["PO-1", "TR-1", "PO-2"]
    assert supplied.list_supply(["S2"]) == (
        SupplyLot("TR-1", "A", "S2", 4, JAN9, SupplyKind.TRANSFER, 0),
    )
    assert [x.id for x in supplied.list_supply(["S1"], "B")] == ["PO-2"]
    assert supplied.list_supply(["NONE"]) == ()


def test_put_updates_units_and_date_and_is_idempotent_by_key(supplied: InventoryStore) -> None:
    """A later put sets units and date; the same key again changes nothing at a node."""
    out = supplied.put_supply("k1", [SupplyLot("PO-1", "A", "S1", 12, JAN9)])
    assert out == (SupplyLot("PO-1", "A", "S1", 12, JAN9),)
    supplied.put_supply("k1", [SupplyLot("PO-1", "A", "S1", 99, JAN20)])
    assert lot(supplied, "PO-1") == SupplyLot("PO-1", "A", "S1", 12, JAN9)


def test_put_refuses_units_below_held_and_a_lot_id_of_another_node(
    supplied: InventoryStore,
) -> None:
    """Units may not go below what is held against the lot; a lot id belongs to one node and sku."""
    [taken] = supplied.hold([hold("r1", {}, {"PO-1": 7})], NOW)
    assert taken.held
    with pytest.raises(InvalidInput) as below:
        supplied.put_supply("k2", [SupplyLot("PO-1", "A", "S1", 6, JAN5)])
    assert below.value.problems[0].field == "lots[0].units"
    assert "PO-1" in below.value.problems[0].problem
    with pytest.raises(InvalidInput) as other:
        supplied.put_supply("k3", [SupplyLot("PO-1", "B", "S1", 6, JAN5)])
    assert other.value.problems[0].field == "lots[0].id"
    assert lot(supplied, "PO-1") == SupplyLot("PO-1", "A", "S1", 10, JAN5, held=7)
    supplied.put_supply("k4", [SupplyLot("PO-1", "A", "S1", 7, JAN5)])
    assert lot(supplied, "PO-1") == SupplyLot("PO-1", "A", "S1", 7, JAN5, held=7)


def test_a_hold_takes_shelf_and_lot_units_at_once_or_nothing(supplied: InventoryStore) -> None:
    """A hold never takes more of a lot than it has free; refused, it changes nothing."""
    [first] = supplied.hold([hold("r1", {"S1": 3}, {"PO-1": 8})], NOW)
    assert first.held
    assert first.lots_free == {"PO-1": 2}
    [second] = supplied.hold([hold("r2", {}, {"PO-1": 3})], NOW)
    assert not second.held
    assert second.lots_free == {"PO-1": 2}
    [third] = supplied.hold([hold("r3", {}, {"PO-1": 2, "TR-1": 4})], NOW)
    assert third.held
    assert lot(supplied, "PO-1") == SupplyLot("PO-1", "A", "S1", 10, JAN5, held=10)
    [unknown] = supplied.hold([hold("r4", {}, {"NOPE": 1})], NOW)
    assert (unknown.held, unknown.lots_free) == (False, {"NOPE": 0})
    assert supplied.node_stock("A") == (Level("A", "S1", 3, 3, 0),)
    holds = {h.reservation_id: h for h in supplied.node_holds("A")}
    assert holds["r1"].lots == {"PO-1": 8}
    assert holds["r3"].lots == {"PO-1": 2, "TR-1": 4}


def test_release_expiry_and_fulfil_give_lot_units_back(supplied: InventoryStore) -> None:
    """Released or expired, a hold's lot units are free again; fulfilled, they leave the lot."""
    supplied.hold(
        [
            hold("r1", {}, {"PO-1": 4}),
            Hold("A", "r2", {}, NOW + 10, lots={"PO-1": 3}),
            hold("r3", {"S1": 1}, {"PO-1": 2}),
        ],
        NOW,
    )
    supplied.release(["A"], "r1")
    assert lot(supplied, "PO-1") == SupplyLot("PO-1", "A", "S1", 10, JAN5, held=5)
    [later] = supplied.hold([hold("r4", {}, {"PO-1": 1})], NOW + 11)  # r2 expired first
    assert later.held
    assert lot(supplied, "PO-1") == SupplyLot("PO-1", "A", "S1", 10, JAN5, held=3)
    supplied.fulfil(["A"], "r3")
    assert lot(supplied, "PO-1") == SupplyLot("PO-1", "A", "S1", 8, JAN5, held=1)
    assert supplied.node_stock("A") == (Level("A", "S1", 2, 0, 0),)


def test_receiving_puts_units_on_the_shelf_and_lot_holds_become_shelf_holds(
    supplied: InventoryStore,
) -> None:
    """Received units go on_hand; holds against the lot move to the shelf earliest first, and
    the answer says who held the lot and who is now all on the shelf."""
    supplied.hold([hold("r-early", {}, {"PO-1": 4})], NOW)
    supplied.hold([hold("r-late", {"S1": 1}, {"PO-1": 5})], NOW + 1)
    out = supplied.receive_supply("rcv1", "PO-1", 6, NOW + 2)
    assert out.reservations == ("r-early", "r-late")
    assert out.on_shelf == ("r-early",)
    assert out.level == Level("A", "S1", 9, 1 + 4 + 2, 0)
    assert out.lot == SupplyLot("PO-1", "A", "S1", 4, JAN5, held=3)
    holds = {h.reservation_id: h for h in supplied.node_holds("A")}
    assert (holds["r-early"].lines, holds["r-early"].lots) == ({"S1": 4}, {})
    assert (holds["r-late"].lines, holds["r-late"].lots) == ({"S1": 3}, {"PO-1": 3})
    assert supplied.stock(["S1"], NOW + 2).levels["S1"][0] == out.level  # the planning view too
    # a repeat of the key answers the same and changes nothing
    assert supplied.receive_supply("rcv1", "PO-1", 6, NOW + 3) == out
    assert supplied.node_stock("A") == (out.level,)
    # the rest arrives: the lot is gone, r-late is all on the shelf; releasing gives shelf back
    rest = supplied.receive_supply("rcv2", "PO-1", 4, NOW + 3)
    assert (rest.reservations, rest.on_shelf, rest.lot) == (("r-late",), ("r-late",), None)
    assert lot(supplied, "PO-1") is None
    supplied.release(["A"], "r-late")
    supplied.release(["A"], "r-early")
    assert supplied.node_stock("A") == (Level("A", "S1", 13, 0, 0),)
    with pytest.raises(NotFound):
        supplied.receive_supply("rcv3", "PO-1", 1, NOW + 3)
    assert supplied.receive_supply("rcv2", "PO-1", 4, NOW + 4) == rest  # a repeat, still
    # the same id put again is a new lot of the same node and sku, listed again
    supplied.put_supply("k9", [SupplyLot("PO-1", "A", "S1", 2, JAN20)])
    assert [x.id for x in supplied.list_supply(["S1"])] == ["PO-1", "PO-2"]
    with pytest.raises(NotFound):
        supplied.receive_supply("rcv4", "NOPE", 1, NOW + 3)


def test_receiving_at_a_node_without_the_sku_creates_the_position(
    supplied: InventoryStore,
) -> None:
    """A transfer of a sku the node never had makes its position, held units included."""
    supplied.hold([hold("r1", {}, {"TR-1": 3})], NOW)
    out = supplied.receive_supply("rcv", "TR-1", 4, NOW)
    assert out.level == Level("A", "S2", 4, 3, 0)
    assert out.on_shelf == ("r1",)
    assert supplied.stock(["S2"], NOW).levels["S2"] == [Level("A", "S2", 4, 3, 0)]


def test_a_hold_waiting_for_two_lots_is_on_the_shelf_once_both_arrived(
    supplied: InventoryStore,
) -> None:
    supplied.hold([hold("r1", {}, {"PO-1": 2, "TR-1": 1})], NOW)
    first = supplied.receive_supply("rcv1", "PO-1", 10, NOW)
    assert (first.reservations, first.on_shelf) == (("r1",), ())
    second = supplied.receive_supply("rcv2", "TR-1", 1, NOW)
    assert (second.reservations, second.on_shelf) == (("r1",), ("r1",))
    [held] = supplied.node_holds("A")
    assert (held.lines, held.lots) == ({"S1": 2, "S2": 1}, {})


def test_revising_reports_the_promises_that_no_longer_hold(supplied: InventoryStore) -> None:
    """Cut below its holds, the latest holds beyond the new units break; late, every hold
    promised before the new date breaks."""
    supplied.hold([hold("r1", {}, {"PO-1": 4})], NOW)
    supplied.hold([hold("r2", {}, {"PO-1": 3})], NOW + 1)
    supplied.hold([hold("r3", {}, {"PO-1": 2})], NOW + 2)
    cut = supplied.revise_supply("rev1", "PO-1", units=6)
    assert cut.broken == ("r2", "r3")
    assert cut.lot == SupplyLot("PO-1", "A", "S1", 6, JAN5, held=9)
    assert supplied.revise_supply("rev1", "PO-1", units=1) == cut  # a repeat answers the same
    earlier = supplied.revise_supply("rev2", "PO-1", units=9, expected=date(2027, 1, 2))
    assert earlier.broken == ()
    late = supplied.revise_supply("rev3", "PO-1", expected=JAN9)
    assert late.broken == ("r1", "r2", "r3")
    assert late.lot == SupplyLot("PO-1", "A", "S1", 9, JAN9, held=9)
    [fresh] = supplied.hold([hold("r4", {}, {"PO-1": 1})], NOW)
    assert not fresh.held  # nothing left free
    with pytest.raises(NotFound):
        supplied.revise_supply("rev4", "NOPE", units=1)


def test_concurrent_holds_never_take_more_of_a_lot_than_it_has(
    supplied: InventoryStore,
) -> None:
    """Threads racing for one lot (with shelf units beside it) hold exactly what exists, and
    releasing everything leaves the lot and the shelf whole."""
    taken: list[Hold] = []
    lock = threading.Lock()

    def racer(number: int) -> None:
        for attempt in range(12):
            h = hold(f"r{number}-{attempt}", {"S1": 1} if attempt % 4 == 0 else {}, {"PO-1": 1})
            [outcome] = supplied.hold([h], NOW)
            if outcome.held:
                with lock:
                    taken.append(h)

    threads = [threading.Thread(target=racer, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sum(h.lots["PO-1"] for h in taken) == 10
    assert sum(h.lines.get("S1", 0) for h in taken) <= 3
    assert lot(supplied, "PO-1") == SupplyLot("PO-1", "A", "S1", 10, JAN5, held=10)
    for h in taken:
        supplied.release(["A"], h.reservation_id)
    assert lot(supplied, "PO-1") == SupplyLot("PO-1", "A", "S1", 10, JAN5, held=0)
    assert supplied.node_stock("A") == (Level("A", "S1", 3, 0, 0),)
