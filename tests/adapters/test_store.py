"""The one `InventoryStore` test suite: every test runs against the memory store and against the
Redis store on a real redis-server (the `store` fixture of tests/conftest.py), so both keep the
same promises."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest
import redis

from allocation_engine.adapters.redis import inventory, keys
from allocation_engine.adapters.redis.inventory import KEEP_SECONDS, RedisStore
from allocation_engine.engine import Node, NodeType
from allocation_engine.engine.limits import MAX_UNITS
from allocation_engine.errors import IdempotencyConflict, VersionConflict
from allocation_engine.ports.inventory import (
    Adjustment,
    Hold,
    InventoryStore,
    Level,
    ReservationRecord,
    ReservationState,
    SnapshotLine,
)

NOW = 1_800_000_000.0


@pytest.fixture
def stocked(store: InventoryStore) -> InventoryStore:
    """Two nodes; A holds 10 of S1 (2 safety) and 5 of S2, B holds 4 of S1."""
    store.upsert_nodes(
        [Node("A", NodeType.WAREHOUSE, 50.0, 8.0, "DE"), Node("B", NodeType.STORE, 52, 13, "DE")]
    )
    store.apply_snapshot(
        1,
        [SnapshotLine("A", "S1", 10, 2), SnapshotLine("A", "S2", 5, 0), SnapshotLine("B", "S1", 4)],
    )
    return store


def levels(store: InventoryStore, sku: str) -> dict[str, Level]:
    return {lv.node_id: lv for lv in store.stock([sku], NOW).levels[sku]}


def test_nodes_are_upserted_by_id_and_bump_the_version(store: InventoryStore) -> None:
    """Upserting replaces a node of the same id and bumps the network version each time."""
    v1 = store.upsert_nodes([Node("A", NodeType.WAREHOUSE, 50, 8, "DE")])
    v2 = store.upsert_nodes([Node("A", NodeType.STORE, 51, 9, "DE", capacity=3)])
    record = store.load_nodes()
    assert v2 > v1
    assert record.version == v2
    assert record.nodes == (Node("A", NodeType.STORE, 51, 9, "DE", capacity=3),)


def test_rules_are_versioned_and_a_stale_revision_changes_nothing(store: InventoryStore) -> None:
    """Each publish gets the next revision; one based on a stale revision is refused."""
    assert store.get_rules() is None
    first = store.put_rules('name = "a"')
    second = store.put_rules('name = "b"', expected_revision=first)
    with pytest.raises(VersionConflict):
        store.put_rules('name = "c"', expected_revision=first)
    stored = store.get_rules()
    assert stored is not None
    assert (stored.revision, stored.text) == (second, 'name = "b"')
    assert store.stock(["S"], NOW).rules_revision == second


def test_stock_reads_every_position_of_the_skus(stocked: InventoryStore) -> None:
    """A planning read returns each sku's positions by node, and leaves out nodes without it."""
    read = stocked.stock(["S1", "S2", "NONE"], NOW)
    assert read.levels["S1"] == [Level("A", "S1", 10, 0, 2), Level("B", "S1", 4, 0, 0)]
    assert read.levels["S2"] == [Level("A", "S2", 5, 0, 0)]
    assert read.levels["NONE"] == []
    assert read.nodes_version == stocked.load_nodes().version
    assert not read.expiry_due


def test_an_older_snapshot_is_refused_and_changes_nothing(stocked: InventoryStore) -> None:
    """Snapshot version 3 sets on_hand; version 2 afterwards is a VersionConflict."""
    stocked.apply_snapshot(3, [SnapshotLine("A", "S1", 7)])
    with pytest.raises(VersionConflict):
        stocked.apply_snapshot(2, [SnapshotLine("A", "S1", 99), SnapshotLine("B", "S1", 99)])
    assert levels(stocked, "S1")["A"].on_hand == 7
    assert levels(stocked, "S1")["B"].on_hand == 4


def test_a_snapshot_keeps_open_holds(stocked: InventoryStore) -> None:
    """Holds survive a snapshot: it sets physical stock only."""
    assert stocked.hold([Hold("A", "r1", {"S1": 3}, NOW + 60)], NOW)[0].held
    stocked.apply_snapshot(2, [SnapshotLine("A", "S1", 20)])
    assert levels(stocked, "S1")["A"] == Level("A", "S1", 20, 3, 2)


def test_a_hold_takes_every_line_or_nothing(stocked: InventoryStore) -> None:
    """A hold short on one line is refused whole, and reports the node's real stock."""
    refused = stocked.hold([Hold("A", "r1", {"S1": 2, "S2": 6}, NOW + 60)], NOW)[0]
    assert not refused.held
    assert {lv.sku: lv.available for lv in refused.levels} == {"S1": 8, "S2": 5}
    assert levels(stocked, "S2")["A"].reserved == 0

    taken = stocked.hold([Hold("A", "r1", {"S1": 8, "S2": 5}, NOW + 60)], NOW)[0]
    assert taken.held
    a = levels(stocked, "S1")["A"]
    assert (a.reserved, a.available) == (8, 0)
    assert a.on_hand == a.available + a.reserved + a.safety_stock


def test_holding_twice_under_one_reservation_holds_once(stocked: InventoryStore) -> None:
    """The saga may repeat a hold after a crash; the second one changes nothing."""
    hold = Hold("B", "r1", {"S1": 3}, NOW + 60)
    assert stocked.hold([hold], NOW)[0].held
    assert stocked.hold([hold], NOW)[0].held
    assert levels(stocked, "S1")["B"].reserved == 3


def test_an_expired_hold_stops_counting_at_once(stocked: InventoryStore) -> None:
    """Past its expiry a hold no longer blocks stock, before any sweeper runs."""
    assert stocked.hold([Hold("B", "old", {"S1": 4}, NOW + 10)], NOW)[0].held
    assert not stocked.hold([Hold("B", "new", {"S1": 4}, NOW + 60)], NOW + 9)[0].held
    assert stocked.hold([Hold("B", "new", {"S1": 4}, NOW + 60)], NOW + 10)[0].held
    assert levels(stocked, "S1")["B"].reserved == 4


def test_release_gives_stock_back_once(stocked: InventoryStore) -> None:
    stocked.hold([Hold("B", "r1", {"S1": 3}, NOW + 60)], NOW)
    stocked.release(["B"], "r1")
    stocked.release(["B"], "r1")
    assert levels(stocked, "S1")["B"] == Level("B", "S1", 4, 0, 0)


def test_a_pinned_hold_never_expires_and_an_expired_one_cannot_be_pinned(
    stocked: InventoryStore,
) -> None:
    """Commit pins holds: they outlive their expiry. A hold already expired cannot be pinned."""
    stocked.hold([Hold("A", "r1", {"S2": 5}, NOW + 10)], NOW)
    stocked.hold([Hold("B", "r2", {"S1": 1}, NOW + 10)], NOW)
    assert stocked.pin(["A"], "r1", NOW + 5) == [True]
    assert stocked.pin(["B"], "r2", NOW + 11) == [False]
    assert not stocked.hold([Hold("A", "r3", {"S2": 1}, NOW + 60)], NOW + 100)[0].held
    assert levels(stocked, "S2")["A"].reserved == 5


def test_a_hold_again_counts_only_with_the_same_lines(stocked: InventoryStore) -> None:
    """A hold repeated with the same lines is held once (a retry); one with other lines for
    the same reservation is refused and changes nothing, so a stale hold left by an overtaken
    call is never taken for the plan's (which would leave reserved short of it)."""
    assert stocked.hold([Hold("A", "r1", {"S1": 3}, None)], NOW)[0].held
    assert stocked.hold([Hold("A", "r1", {"S1": 3}, None)], NOW)[0].held
    assert not stocked.hold([Hold("A", "r1", {"S1": 5}, None)], NOW)[0].held
    assert levels(stocked, "S1")["A"].reserved == 3
    stocked.release(["A"], "r1")
    assert stocked.hold([Hold("A", "r1", {"S1": 5}, None)], NOW)[0].held
    assert levels(stocked, "S1")["A"].reserved == 5


def test_fulfil_takes_the_units_off_on_hand_and_reserved(stocked: InventoryStore) -> None:
    stocked.hold([Hold("A", "r1", {"S1": 3}, None)], NOW)
    stocked.fulfil(["A"], "r1")
    stocked.fulfil(["A"], "r1")
    assert levels(stocked, "S1")["A"] == Level("A", "S1", 7, 0, 2)


def test_adjustments_apply_once_per_key_and_stop_at_zero(stocked: InventoryStore) -> None:
    """Deltas apply once per key; a delta below zero is cut at 0 and reported."""
    deltas = [Adjustment("A", "S1", 5), Adjustment("B", "S1", -9, safety_stock=1)]
    first = stocked.adjust("k1", deltas)
    again = stocked.adjust("k1", deltas)
    assert first.clamped == (Adjustment("B", "S1", -9, 1),)
    assert again.clamped == ()
    assert {(lv.node_id, lv.on_hand, lv.safety_stock) for lv in first.levels} == {
        ("A", 15, 2),
        ("B", 0, 1),
    }
    assert levels(stocked, "S1")["A"].on_hand == 15


def test_adjustments_stop_at_the_unit_limit_however_many_keys_add_up(
    stocked: InventoryStore,
) -> None:
    """Each delta is within the contract's range, but their sum is not: on_hand stops at
    MAX_UNITS (and says so), so repeated receipts can never push a count past what the rest
    of the system holds exactly."""
    big = Adjustment("A", "S1", MAX_UNITS)
    assert stocked.adjust("k1", [big]).clamped == (big,)
    assert stocked.adjust("k2", [big]).clamped == (big,)
    assert levels(stocked, "S1")["A"].on_hand == MAX_UNITS
    assert stocked.adjust("k3", [Adjustment("A", "S1", -1)]).clamped == ()
    assert levels(stocked, "S1")["A"].on_hand == MAX_UNITS - 1


def record(
    rid: str = "r1", state: ReservationState = ReservationState.PENDING
) -> ReservationRecord:
    return ReservationRecord(rid, "key", "fp", "o1", state, NOW, NOW + 60, owner="me")


def test_reservation_records_change_by_compare_and_set(store: InventoryStore) -> None:
    """A record is created once; a replace with a stale state or attempt is refused."""
    first = store.create_reservation(record())
    assert store.create_reservation(replace(record(), fingerprint="other")) == first
    held = replace(first, state=ReservationState.HELD, attempt=1)
    assert store.replace_reservation(held, ReservationState.PENDING, 0)
    assert not store.replace_reservation(held, ReservationState.PENDING, 0)
    assert store.get_reservation("r1") == held
    assert store.get_reservation("nope") is None


def test_due_reservations_are_the_open_ones_past_expiry(store: InventoryStore) -> None:
    store.create_reservation(record("r1"))
    committed = store.create_reservation(record("r2"))
    store.replace_reservation(
        replace(committed, state=ReservationState.COMMITTED), ReservationState.PENDING, 0
    )
    assert store.due_reservations(NOW + 59, 10) == []
    assert store.due_reservations(NOW + 60, 10) == ["r1"]
    assert store.stock(["S"], NOW + 60).expiry_due


def test_idempotency_keys_remember_the_request_and_its_result(store: InventoryStore) -> None:
    assert store.claim_key("k", "fp1").new
    assert not store.claim_key("k", "fp1").new
    with pytest.raises(IdempotencyConflict):
        store.claim_key("k", "fp2")
    store.complete_key("k", "42")
    assert store.claim_key("k", "fp1").result == "42"


def test_the_planning_view_agrees_with_the_per_node_authority(stocked: InventoryStore) -> None:
    """After holds, releases, pins, snapshots and adjustments, the per-sku read equals the
    per-node positions."""
    stocked.hold([Hold("A", "r1", {"S1": 3, "S2": 1}, NOW + 5)], NOW)
    stocked.hold([Hold("B", "r2", {"S1": 2}, NOW + 60)], NOW)
    stocked.pin(["B"], "r2", NOW)
    stocked.apply_snapshot(2, [SnapshotLine("A", "S2", 9)])
    stocked.adjust("k", [Adjustment("B", "S1", 3)])
    stocked.hold([Hold("A", "r3", {"S1": 1}, NOW + 60)], NOW + 6)  # sweeps r1 at A
    for sku in ("S1", "S2"):
        view = stocked.stock([sku], NOW + 6).levels[sku]
        authority = [lv for node in ("A", "B") for lv in stocked.node_stock(node) if lv.sku == sku]
        assert list(view) == authority


def test_the_redis_store_reloads_its_functions_after_a_redis_restart(redis_url: str) -> None:
    """A Redis without persistence forgets the function library when it restarts; the store
    loads it again instead of failing, for single calls, batches and calls behind commands."""
    store = RedisStore.from_url(redis_url)
    flush = redis.Redis.from_url(redis_url).function_flush
    store.upsert_nodes([Node("A", NodeType.WAREHOUSE, 50.0, 8.0, "DE")])
    flush()
    assert store.upsert_nodes([Node("B", NodeType.WAREHOUSE, 51.0, 8.0, "DE")]) == 2
    flush()
    store.apply_snapshot(1, [SnapshotLine("A", "S1", 5), SnapshotLine("B", "S1", 5)])
    flush()
    assert [o.held for o in store.hold([Hold("A", "r1", {"S1": 2}, NOW + 60)], NOW)] == [True]
    first = store.create_reservation(record())
    flush()
    assert store.replace_reservation(replace(first, state=ReservationState.HELD), first.state, 0)
    flush()
    assert store.claim_key("k", "fp").new
    assert levels(store, "S1")["A"] == Level("A", "S1", 5, 2, 0)


def test_a_script_error_in_the_redis_store_is_raised_and_writes_nothing(redis_url: str) -> None:
    """Given a node whose holds key was overwritten with a string, when a hold is taken there,
    then the FUNCTION's error reaches the caller (it is not taken for a lost library, nor
    retried) and the node's stock is unchanged."""
    store = RedisStore.from_url(redis_url)
    store.apply_snapshot(1, [SnapshotLine("A", "S1", 5)])
    client = redis.Redis.from_url(redis_url)
    client.set(keys.node_keys("A").holds, "not a hash")
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        store.hold([Hold("A", "r1", {"S1": 2}, NOW + 60)], NOW)
    assert store.node_stock("A") == (Level("A", "S1", 5, 0, 0),)


def test_redis_keeps_finished_reservations_and_keys_for_the_retention(redis_url: str) -> None:
    """Open reservations (PENDING, HELD, COMMITTED) are kept as long as they hold stock; a
    finished one, and every idempotency key, expire after KEEP_SECONDS, the one constant."""
    store = RedisStore.from_url(redis_url)
    client = redis.Redis.from_url(redis_url)
    held = replace(store.create_reservation(record()), state=ReservationState.HELD)
    assert store.replace_reservation(held, ReservationState.PENDING, 0)
    committed = replace(held, state=ReservationState.COMMITTED)
    assert store.replace_reservation(committed, ReservationState.HELD, 0)
    assert client.ttl(keys.reservation("r1")) == -1
    released = replace(committed, state=ReservationState.RELEASED)
    assert store.replace_reservation(released, ReservationState.COMMITTED, 0)
    assert 0 < client.ttl(keys.reservation("r1")) <= KEEP_SECONDS
    store.claim_key("k", "fp")
    assert KEEP_SECONDS - 5 < client.ttl(keys.idempotency("k")) <= KEEP_SECONDS


def test_redis_forgets_adjustment_keys_after_the_retention_it_is_given(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The node function trims applied adjustment keys by the retention the store passes it:
    with a retention of 0 a key is forgotten at once, so repeating it applies it again."""
    monkeypatch.setattr(inventory, "KEEP_SECONDS", 0)
    store = RedisStore.from_url(redis_url)
    store.adjust("k", [Adjustment("A", "S1", 2)])
    store.adjust("k", [Adjustment("A", "S1", 2)])
    assert store.node_stock("A") == (Level("A", "S1", 4, 0, 0),)


def views_agree(store: InventoryStore, nodes: tuple[str, ...], skus: tuple[str, ...]) -> None:
    for sku in skus:
        view = store.stock([sku], NOW).levels[sku]
        authority = [lv for node in nodes for lv in store.node_stock(node) if lv.sku == sku]
        assert list(view) == authority, sku


def test_a_single_redis_writes_views_in_the_same_step_as_every_hold_function(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a single Redis, hold, release, pin and fulfil (and the expired holds they sweep on
    the way, whose skus the caller did not name) change the per-sku views in their own atomic
    step: with the second step switched off, view and authority still agree after each."""
    store = RedisStore.from_url(redis_url)
    store.upsert_nodes([Node("A", NodeType.WAREHOUSE, 50.0, 8.0, "DE")])
    store.apply_snapshot(1, [SnapshotLine("A", s, 10) for s in ("S1", "S2", "S3")])
    written: list[object] = []
    monkeypatch.setattr(store, "_merge_views", lambda *a, **k: written.append(a))
    steps: list[Callable[[], object]] = [
        lambda: store.hold([Hold("A", "r1", {"S1": 2, "S2": 1}, NOW + 5)], NOW),
        lambda: store.hold([Hold("A", "r2", {"S3": 4}, NOW + 60)], NOW + 6),  # sweeps r1
        lambda: store.pin(["A"], "r2", NOW + 6),
        lambda: store.hold([Hold("A", "r3", {"S1": 1, "S3": 1}, NOW + 60)], NOW + 6),
        lambda: store.release(["A"], "r3"),  # the caller does not say which skus
        lambda: store.fulfil(["A"], "r2"),
    ]
    for step in steps:
        step()
        views_agree(store, ("A",), ("S1", "S2", "S3"))
    assert written == []


def test_reconcile_views_rewrites_what_a_lost_second_step_left_stale(redis_url: str) -> None:
    """Cluster layout writes views in a second step; when it is lost (the process died),
    reconcile_views puts the authority's numbers back, and a second run finds nothing."""
    store = RedisStore.from_url(redis_url, cluster_layout=True)
    store.upsert_nodes([Node("A", NodeType.WAREHOUSE, 50.0, 8.0, "DE")])
    store.apply_snapshot(1, [SnapshotLine("A", "S1", 10), SnapshotLine("A", "S2", 5)])
    merge = store._merge_views
    store._merge_views = lambda *a, **k: None  # type: ignore[method-assign]
    store.hold([Hold("A", "r1", {"S1": 3, "S2": 2}, NOW + 60)], NOW)
    assert levels(store, "S1")["A"].reserved == 0  # stale
    store._merge_views = merge  # type: ignore[method-assign]
    assert store.reconcile_views("A") == 2
    views_agree(store, ("A",), ("S1", "S2"))
    assert store.reconcile_views("A") == 0


def test_a_staged_snapshot_changes_nothing_until_commit_and_nothing_when_aborted(
    stocked: InventoryStore,
) -> None:
    """Lines staged for version 2 are invisible; abort leaves stock as it was; a commit after
    a newer snapshot was applied is refused whole."""
    before = {sku: levels(stocked, sku) for sku in ("S1", "S2")}
    staged = stocked.stage_snapshot(2)
    staged.add([SnapshotLine("A", "S1", 99)])
    staged.add([SnapshotLine("B", "S1", 98), SnapshotLine("A", "S2", 97, 1)])
    assert {sku: levels(stocked, sku) for sku in ("S1", "S2")} == before
    staged.abort()
    assert {sku: levels(stocked, sku) for sku in ("S1", "S2")} == before

    late = stocked.stage_snapshot(3)
    late.add([SnapshotLine("A", "S1", 50)])
    stocked.apply_snapshot(4, [SnapshotLine("B", "S1", 7)])
    with pytest.raises(VersionConflict):
        late.commit()
    assert levels(stocked, "S1")["A"].on_hand == 10
    with pytest.raises(VersionConflict):
        stocked.stage_snapshot(3)

    staged = stocked.stage_snapshot(5)
    staged.add([SnapshotLine("A", "S1", 20), SnapshotLine("A", "S2", 6, 1)])
    staged.add([SnapshotLine("B", "S1", 8)])
    outcome = staged.commit()
    assert (outcome.applied, outcome.skipped) == (3, 0)
    assert levels(stocked, "S1")["A"] == Level("A", "S1", 20, 0, 2)
    assert levels(stocked, "S1")["B"].on_hand == 8
    assert levels(stocked, "S2")["A"] == Level("A", "S2", 6, 0, 1)
    views_agree(stocked, ("A", "B"), ("S1", "S2"))


def test_a_hold_spends_a_shipment_of_the_day_and_a_release_gives_it_back(
    stocked: InventoryStore,
) -> None:
    """Node capacity counts shipments per UTC day: a hold at a node with capacity 1 spends it,
    a second hold there is refused for capacity, a release gives it back, a fulfilment keeps it
    spent, and the next UTC day starts again at 0. Planning reads report what was spent."""
    assert stocked.hold([Hold("B", "r1", {"S1": 1}, NOW + 60, capacity=1)], NOW)[0].held
    assert stocked.stock(["S1"], NOW).shipments == {"B": 1}
    refused = stocked.hold([Hold("B", "r2", {"S1": 1}, NOW + 60, capacity=1)], NOW)[0]
    assert not refused.held and refused.no_capacity
    assert levels(stocked, "S1")["B"].reserved == 1
    stocked.release(["B"], "r1")
    assert stocked.stock(["S1"], NOW).shipments == {}
    assert stocked.hold([Hold("B", "r2", {"S1": 1}, NOW + 60, capacity=1)], NOW)[0].held
    stocked.pin(["B"], "r2", NOW)
    stocked.fulfil(["B"], "r2")
    assert stocked.stock(["S1"], NOW).shipments == {"B": 1}
    assert not stocked.hold([Hold("B", "r3", {"S1": 1}, None, capacity=1)], NOW)[0].held
    tomorrow = NOW + 86400
    assert stocked.stock(["S1"], tomorrow).shipments == {}
    assert stocked.hold([Hold("B", "r3", {"S1": 1}, None, capacity=1)], tomorrow)[0].held


def test_node_holds_list_every_hold_at_a_node(stocked: InventoryStore) -> None:
    stocked.hold([Hold("A", "r1", {"S1": 2, "S2": 1}, NOW + 60)], NOW)
    stocked.hold([Hold("A", "r2", {"S1": 1}, NOW + 60)], NOW)
    stocked.pin(["A"], "r2", NOW)
    assert [(h.reservation_id, dict(h.lines), h.expires_at) for h in stocked.node_holds("A")] == [
        ("r1", {"S1": 2, "S2": 1}, NOW + 60),
        ("r2", {"S1": 1}, None),
    ]
    assert stocked.node_holds("B") == ()


def test_a_releasing_record_is_due_at_once(store: InventoryStore) -> None:
    """A release a crash cut short is found by the sweeper whatever its expires_at."""
    created = store.create_reservation(record("r1"))
    committed = replace(created, state=ReservationState.COMMITTED)
    assert store.replace_reservation(committed, ReservationState.PENDING, 0)
    releasing = replace(
        committed, state=ReservationState.RELEASING, release_as=ReservationState.RELEASED
    )
    assert store.replace_reservation(releasing, ReservationState.COMMITTED, 0)
    assert store.due_reservations(NOW - 3600, 10) == ["r1"]
    assert store.get_reservation("r1") == releasing
