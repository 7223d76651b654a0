"""Ending reservations survives a crash between its steps; repair finds what is left; capacity
is spent by live reservations; a retry finds a live first call and answers at once. Both stores."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace

import pytest

from allocation_engine.adapters.clock import FakeClock
from allocation_engine.engine import Order, OrderLine, ShipTo, default_rules
from allocation_engine.engine.network import Node, NodeType
from allocation_engine.engine.rules import default_rules_text
from allocation_engine.errors import DeadlineExceeded, InsufficientStock, ReservationInProgress
from allocation_engine.ports.inventory import (
    Hold,
    HoldOutcome,
    InventoryStore,
    ReservationState,
    SnapshotLine,
)
from allocation_engine.service import Services
from allocation_engine.service.deadline import Deadline
from allocation_engine.service.repair import repair
from allocation_engine.service.reservations import reservation_id
from tests.support.grpc_inventory import seed_tiny

ORDER = Order("o-1", (OrderLine("A", 3), OrderLine("B", 1)), ShipTo(50.94, 6.96, "DE"))


class Killed(BaseException):
    """Stands for SIGKILL: the process stops here, nothing after runs."""


@pytest.fixture
def services(store: InventoryStore, clock: FakeClock) -> Services:
    seed_tiny(store)
    return Services.build(store, clock, default_rules(), default_rules_text())


def total_reserved(store: InventoryStore) -> int:
    return sum(lv.reserved for n in ("WH-FRA", "WH-BER", "ST-MUC") for lv in store.node_stock(n))


def consistent(store: InventoryStore, now: float) -> None:
    """Every hold belongs to an open reservation; the view equals the authority."""
    for node in ("WH-FRA", "WH-BER", "ST-MUC"):
        for hold in store.node_holds(node):
            record = store.get_reservation(hold.reservation_id)
            assert record is not None and record.state.value in {"HELD", "COMMITTED"}
        authority = store.node_stock(node)
        for level in authority:
            assert level.on_hand >= level.reserved
            view = [lv for lv in store.stock([level.sku], now).levels[level.sku]]
            assert level in view


@pytest.mark.parametrize("committed", [False, True])
def test_a_release_killed_before_it_gave_the_holds_back_is_finished_by_a_retry(
    services: Services, clock: FakeClock, monkeypatch: pytest.MonkeyPatch, committed: bool
) -> None:
    """Given a (committed) reservation whose release died after the record said so but before
    any hold was given back, when the release is retried (with another key, as from another
    server), then it finishes: RELEASED, nothing held, view and authority agree."""
    store = services.store
    record = services.reservations.reserve("k1", "fp", ORDER)
    if committed:
        services.reservations.commit(record.id, "c1", "fp")
    assert total_reserved(store) == 4
    real = store.release

    def die(*args: object, **kwargs: object) -> None:
        raise Killed

    monkeypatch.setattr(store, "release", die)
    with pytest.raises(Killed):
        services.reservations.release(record.id, "r1", "fp")
    monkeypatch.setattr(store, "release", real)
    assert total_reserved(store) == 4  # the crash left the holds
    again = services.reservations.release(record.id, "r2", "fp")
    assert again.state is ReservationState.RELEASED
    assert total_reserved(store) == 0
    consistent(store, clock.now())


def test_a_cut_short_release_is_finished_by_the_next_planning_read(
    services: Services, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nobody retries: the next read anywhere sees something due and finishes it."""
    store = services.store
    record = services.reservations.reserve("k1", "fp", ORDER)
    real = store.release
    monkeypatch.setattr(store, "release", lambda *a, **k: (_ for _ in ()).throw(Killed))
    with pytest.raises(Killed):
        services.reservations.release(record.id, "r1", "fp")
    monkeypatch.setattr(store, "release", real)
    services.planner.read(["A"])
    assert store.get_reservation(record.id).state is ReservationState.RELEASED  # type: ignore[union-attr]
    assert total_reserved(store) == 0


def test_repair_frees_holds_of_settled_and_missing_reservations_once(
    services: Services, clock: FakeClock
) -> None:
    """Leaked holds (a released reservation's, one whose record is gone, a HELD reservation's
    at a node outside its plan) are given back; the live reservation's stay; a second run
    fixes nothing."""
    store = services.store
    live = services.reservations.reserve("live", "fp", ORDER)
    gone = services.reservations.reserve("gone", "fp", replace(ORDER, id="o-2"))
    released = replace(gone, state=ReservationState.RELEASED)
    assert store.replace_reservation(released, gone.state, gone.attempt)
    now = clock.now()
    assert store.hold([Hold("WH-BER", "no-such-reservation", {"A": 2}, None)], now)[0].held
    stray = "ST-MUC" if "ST-MUC" not in live.holds else "WH-BER"
    assert store.hold([Hold(stray, live.id, {"B" if stray == "ST-MUC" else "A": 1}, None)], now)[
        0
    ].held
    report = repair(store, now)
    assert {(h.reservation_id, h.why) for h in report.holds_freed} == {
        (gone.id, "RELEASED"),
        ("no-such-reservation", "missing"),
        (live.id, "not in plan"),
    }
    assert total_reserved(store) == 4  # the live reservation's holds
    consistent(store, now)
    assert repair(store, now).fixed == 0


def test_two_reserves_cannot_both_ship_from_a_node_with_capacity_one(
    store: InventoryStore, clock: FakeClock
) -> None:
    """A store with capacity 1 ships one reservation; the second goes elsewhere (or fails);
    releasing the first gives the shipment back."""
    store.upsert_nodes(
        [
            Node("ST-CGN", NodeType.STORE, 50.94, 6.96, "DE", capacity=1),
            Node("WH-BER", NodeType.WAREHOUSE, 52.52, 13.40, "DE"),
        ]
    )
    store.apply_snapshot(1, [SnapshotLine("ST-CGN", "A", 10), SnapshotLine("WH-BER", "A", 10)])
    services = Services.build(store, clock, default_rules(), default_rules_text())
    one = Order("o-1", (OrderLine("A", 1),), ShipTo(50.94, 6.96, "DE"))
    first = services.reservations.reserve("k1", "fp", one)
    second = services.reservations.reserve("k2", "fp", replace(one, id="o-2"))
    assert list(first.holds) == ["ST-CGN"]
    assert list(second.holds) == ["WH-BER"]
    assert store.stock(["A"], clock.now()).shipments == {"ST-CGN": 1, "WH-BER": 1}
    services.reservations.release(first.id, "r1", "fp")
    third = services.reservations.reserve("k3", "fp", replace(one, id="o-3"))
    assert list(third.holds) == ["ST-CGN"]


def test_a_retry_of_a_live_first_call_answers_in_progress_within_its_deadline(
    services: Services, clock: FakeClock
) -> None:
    """A first call still holding under its lease: a retry with a 0.3 s deadline gets
    ReservationInProgress (ABORTED) with a retry delay before its deadline, not a timeout."""
    store = services.store
    services.reservations.reserve("k0", "fp", ORDER)  # warm the planner
    original = store.hold
    store.hold = lambda *a, **k: (_ for _ in ()).throw(Killed)  # type: ignore[method-assign]
    with pytest.raises(Killed):
        services.reservations.reserve("k1", "fp", ORDER)
    store.hold = original  # type: ignore[method-assign]
    # Killed is not an Exception: the dead call did not drop its lease
    pending = store.get_reservation(reservation_id("k1"))
    assert pending is not None and pending.state is ReservationState.PENDING
    started = time.monotonic()
    with pytest.raises(ReservationInProgress) as caught:
        services.reservations.reserve("k1", "fp", ORDER, deadline=Deadline(0.3))
    assert time.monotonic() - started < 0.3
    assert 0 < caught.value.retry_after <= 10


def test_a_first_call_that_runs_out_of_time_lets_a_retry_take_over_at_once(
    services: Services, clock: FakeClock
) -> None:
    """A first call that gives up (its deadline passed mid-way) drops its lease: the retry
    takes over at once instead of waiting 10 s, and holds once."""
    store = services.store
    original = store.hold

    def slow_and_refused(holds: Sequence[Hold], now: float) -> list[HoldOutcome]:
        time.sleep(0.15)  # the stock moved meanwhile: the call must plan again, but time is up
        return [HoldOutcome(False, ()) for _ in holds]

    store.hold = slow_and_refused  # type: ignore[method-assign]
    with pytest.raises(DeadlineExceeded):
        services.reservations.reserve("k1", "fp", ORDER, deadline=Deadline(0.1))
    store.hold = original  # type: ignore[method-assign]
    record = services.reservations.reserve("k1", "fp", ORDER, deadline=Deadline(2.0))
    assert record.state is ReservationState.HELD
    assert total_reserved(store) == 4
    with pytest.raises(InsufficientStock):
        services.reservations.reserve(
            "k2", "fp", replace(ORDER, id="x", lines=(OrderLine("A", 15),))
        )
