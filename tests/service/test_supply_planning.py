"""Planning against incoming supply at the service layer, over the memory store and Redis: the
lots the planner hands the engine (free units only, dates as days from today, overdue as today,
nothing past the engine's horizon, nothing at all with backorders off), and a reservation that
expires giving its lot units back."""

from __future__ import annotations

from datetime import date

import pytest

from allocation_engine.adapters.clock import FakeClock
from allocation_engine.adapters.memory.inventory import MemoryStore
from allocation_engine.adapters.redis.inventory import RedisStore
from allocation_engine.engine import (
    InsufficientStock,
    Order,
    OrderLine,
    ShipTo,
    Shortfall,
    default_rules,
    parse_rules,
)
from allocation_engine.engine.rules import default_rules_text
from allocation_engine.engine.supply import IncomingLot
from allocation_engine.ports.inventory import Hold, InventoryStore, SupplyLot
from allocation_engine.service import Services
from allocation_engine.service.expiry import expire_due
from tests.support.grpc_inventory import seed_tiny

TODAY = date(2027, 1, 15)  # the FakeClock's day (UTC)
BACKORDERS = default_rules_text().replace("\nenabled = false\n", "\nenabled = true\n", 1)


@pytest.fixture(params=["memory", "redis"])
def store(request: pytest.FixtureRequest) -> InventoryStore:
    if request.param == "memory":
        return MemoryStore()
    return RedisStore.from_url(request.getfixturevalue("redis_url"))


@pytest.fixture
def services(store: InventoryStore, clock: FakeClock) -> Services:
    seed_tiny(store)
    store.put_supply(
        "p",
        [
            SupplyLot("PO-LATE", "WH-FRA", "A", 4, date(2027, 1, 1)),
            SupplyLot("PO-SOON", "WH-BER", "A", 6, date(2027, 1, 18)),
            SupplyLot("PO-FAR", "WH-BER", "A", 6, date(2028, 6, 1)),
            SupplyLot("PO-B", "ST-MUC", "B", 2, date(2027, 1, 20)),
        ],
    )
    return Services.build(store, clock, default_rules(), default_rules_text())


def test_the_planner_hands_the_engine_free_units_by_day(services: Services) -> None:
    """Held units are left out, an overdue lot is due today, one past a year is not planned."""
    store = services.store
    [held] = store.hold([Hold("WH-BER", "r1", {}, None, lots={"PO-SOON": 2})], 1_800_000_000.0)
    assert held.held
    assert services.planner.today() == TODAY
    lots = services.planner.lots(["A"], services.planner.network())
    assert sorted(lots, key=lambda lot: lot.id) == [
        IncomingLot("PO-LATE", "WH-FRA", "A", 4, 0),
        IncomingLot("PO-SOON", "WH-BER", "A", 4, 3),
    ]


def test_a_plan_takes_lots_only_when_the_rules_enable_backorders(services: Services) -> None:
    """Off, an order beyond the shelf is short; on, it waits for the lots and is held."""
    order = Order("o-1", (OrderLine("A", 20),), ShipTo(50.94, 6.96, "DE"))  # shelf: 5 + 9
    assert services.planner.plan(order).shortfalls
    waiting = services.planner.plan(order, rules=parse_rules(BACKORDERS))
    assert not waiting.shortfalls
    assert sum(t.units for s in waiting.shipments for t in s.lots) == 6


def test_an_expired_reservation_gives_its_lot_units_back(
    services: Services, clock: FakeClock
) -> None:
    services.store.put_rules(BACKORDERS)
    order = Order("o-1", (OrderLine("A", 20),), ShipTo(50.94, 6.96, "DE"))
    record = services.reservations.reserve("k1", "f1", order, ttl_seconds=60)
    assert sum(sum(lots.values()) for lots in record.lot_holds.values()) == 6
    assert sum(lot.held for lot in services.store.list_supply(["A"])) == 6
    clock.advance(61)
    assert expire_due(services.store, clock.now()) == 1
    assert sum(lot.held for lot in services.store.list_supply(["A"])) == 0


def test_a_strict_plan_whose_lot_was_taken_meanwhile_names_the_lots_sku_short(
    services: Services,
) -> None:
    """A plan that waited for a lot, held strictly after another reservation took the lot, is
    refused with the shortfall of the lot's sku (units asked against units left)."""
    services.store.put_rules(BACKORDERS)
    order = Order("o-1", (OrderLine("A", 20),), ShipTo(50.94, 6.96, "DE"))
    plan = services.planner.plan(order)
    taken = {t.lot_id: t.units for s in plan.shipments for t in s.lots}
    nodes = {t.lot_id: s.node_id for s in plan.shipments for t in s.lots}
    lot_id = max(taken, key=lambda k: taken[k])
    services.store.hold([Hold(nodes[lot_id], "other", {}, None, lots={lot_id: 1})], 1.8e9)
    with pytest.raises(InsufficientStock) as caught:
        services.reservations.reserve("k1", "f1", order, plan=plan, strict_plan=True)
    assert Shortfall("A", taken[lot_id], taken[lot_id] - 1) in caught.value.shortfalls
