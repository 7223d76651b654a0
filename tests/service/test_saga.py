"""The reservation saga at the service layer: crash recovery and deadlines, on both stores."""

from __future__ import annotations

import pytest

from allocation_engine.adapters.clock import FakeClock
from allocation_engine.engine import Order, OrderLine, ShipTo, default_rules
from allocation_engine.engine.rules import default_rules_text
from allocation_engine.errors import DeadlineExceeded
from allocation_engine.ports.inventory import Hold, InventoryStore, ReservationState
from allocation_engine.service import Services
from allocation_engine.service.deadline import Deadline
from allocation_engine.service.reservations import LEASE_SECONDS, reservation_id
from tests.support.grpc_inventory import seed_tiny

ORDER = Order("o-1", (OrderLine("A", 3),), ShipTo(50.94, 6.96, "DE"))


@pytest.fixture
def services(store: InventoryStore, clock: FakeClock) -> Services:
    seed_tiny(store)
    return Services.build(store, clock, default_rules(), default_rules_text())


def reserved(store: InventoryStore, node_id: str, sku: str) -> int:
    return next(lv.reserved for lv in store.node_stock(node_id) if lv.sku == sku)


def test_a_retry_after_a_crash_mid_saga_takes_over_and_holds_once(
    services: Services, clock: FakeClock
) -> None:
    """Given a first call that stored its plan, held its stock and died before marking the
    reservation HELD, when the client retries after the lease ran out, then the retry gives the
    dead call's holds back, plans again and holds once."""
    store = services.store
    rid = reservation_id("k1")
    with pytest.raises(RuntimeError):
        original = store.create_reservation

        def crash_after_holding(record):  # type: ignore[no-untyped-def]
            original(record)
            holds = [Hold(n, rid, lines, record.expires_at) for n, lines in record.holds.items()]
            store.hold(holds, clock.now())
            raise RuntimeError("process died")

        store.create_reservation = crash_after_holding  # type: ignore[method-assign]
        services.reservations.reserve("k1", "fp", ORDER)
    del store.create_reservation  # type: ignore[attr-defined]  (back to the class method)
    assert reserved(store, "WH-FRA", "A") == 3
    record = store.get_reservation(rid)
    assert record is not None and record.state is ReservationState.PENDING

    clock.advance(LEASE_SECONDS + 1)
    again = services.reservations.reserve("k1", "fp", ORDER)
    assert again.state is ReservationState.HELD
    assert again.id == rid
    assert again.attempt == 3  # the dead call's plan, the take-over, the new plan
    assert again.holds == {"WH-FRA": {"A": 3}}
    assert sum(reserved(store, n, "A") for n in ("WH-FRA", "WH-BER")) == 3


def test_a_duplicate_while_the_first_call_is_alive_gets_its_answer(services: Services) -> None:
    """A retry that finds the record already HELD returns it without holding again."""
    first = services.reservations.reserve("k1", "fp", ORDER)
    second = services.reservations.reserve("k1", "fp", ORDER)
    assert (second.id, second.state, second.holds) == (first.id, first.state, first.holds)
    assert reserved(services.store, "WH-FRA", "A") == 3


def test_a_passed_deadline_stops_planning(services: Services) -> None:
    with pytest.raises(DeadlineExceeded):
        services.planner.plan(ORDER, deadline=Deadline(-1.0))
