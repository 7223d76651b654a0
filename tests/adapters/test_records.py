"""Reservation records as the Redis store keeps them: a record round-trips (a plan waiting for
incoming supply too), and one written before the plan's rules became two fields
(`"rules": "name@version"`) still loads."""

from __future__ import annotations

import json
from dataclasses import replace

from allocation_engine.adapters.redis.records import reservation_from_json, reservation_to_json
from allocation_engine.engine import Plan, Shipment, ShipmentLine, Status
from allocation_engine.engine.supply import LotTake
from allocation_engine.ports.inventory import ReservationRecord, ReservationState

PLAN = Plan(
    order_id="o-1",
    method="engine",
    status=Status.OPTIMAL,
    shipments=(
        Shipment("WH-FRA", (ShipmentLine("A", 2),), 150.5, 9.8),
        Shipment("WH-BER", (ShipmentLine("B", 1),), 420.25, 9.1, transfer_to="ST-MUC"),
    ),
    total_cost=9.8,
    optimality_gap=0.0,
    rules_name="warehouses",
    rules_version="3",
    candidates=3,
    solver_candidates=1,
)

RECORD = ReservationRecord(
    id="res-1",
    idempotency_key="k",
    fingerprint="f",
    order_id="o-1",
    state=ReservationState.HELD,
    created_at=1.0,
    expires_at=61.0,
    attempt=1,
    plan=PLAN,
)


def test_a_record_round_trips_with_the_rules_name_and_version() -> None:
    """A stored plan reads back equal, transfers to a pickup store and the rules fields kept."""
    stored = json.loads(reservation_to_json(RECORD))
    assert (stored["plan"]["rules_name"], stored["plan"]["rules_version"]) == ("warehouses", "3")
    assert "rules" not in stored["plan"]
    assert reservation_from_json(reservation_to_json(RECORD)) == RECORD


def test_a_record_stored_before_the_split_still_loads() -> None:
    """Given a plan stored as "rules": "warehouses@3", when read, then name and version split."""
    stored = json.loads(reservation_to_json(RECORD))
    plan = stored["plan"]
    plan["rules"] = f"{plan.pop('rules_name')}@{plan.pop('rules_version')}"
    loaded = reservation_from_json(json.dumps(stored))
    assert loaded == RECORD
    assert loaded.plan is not None and loaded.plan.rules_version == "3"


def test_a_plan_waiting_for_supply_keeps_its_ship_day_and_lot_takes() -> None:
    """A shipment that waits for incoming lots reads back with its day and what it takes of
    which lot, so the holds against the lots can be given back from the record."""
    waiting = Shipment(
        "WH-FRA",
        (ShipmentLine("A", 5),),
        150.5,
        12.0,
        ship_day=3,
        lots=(LotTake("PO-1", "A", 3),),
    )
    record = replace(RECORD, plan=replace(PLAN, shipments=(waiting,)))
    loaded = reservation_from_json(reservation_to_json(record))
    assert loaded == record
    assert loaded.holds == {"WH-FRA": {"A": 2}}
    assert loaded.lot_holds == {"WH-FRA": {"PO-1": 3}}
