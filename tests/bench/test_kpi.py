"""Key figures computed by hand from a few outcomes."""

from __future__ import annotations

import math

import pytest

from allocation_engine.bench.harness import Outcome
from allocation_engine.bench.kpi import disagreements, kpis, optimum, repriced, speed_ratio
from allocation_engine.engine import Network, Node, NodeType, RuleSet


def outcome(order: str, method: str, cost: float, shipments: list, **kw: object) -> Outcome:  # type: ignore[type-arg]
    fields = {
        "seconds": 0.001,
        "status": "OPTIMAL",
        "gap": 0.0,
        "units_ordered": 4,
        "units_filled": sum(u for _, u, _ in shipments),
    } | kw
    return Outcome(order, method, cost=cost, shipments=tuple(shipments), **fields)  # type: ignore[arg-type]


ENGINE = [
    outcome("a", "engine", 10.0, [("WH", 4, 100.0)], seconds=0.002),
    outcome("b", "engine", 20.0, [("WH", 2, 50.0), ("ST", 2, 10.0)], seconds=0.004),
]
PEER = [
    outcome("a", "shopify", 11.0, [("ST", 4, 10.0)], status="FEASIBLE", seconds=0.001),
    outcome("b", "shopify", 20.0, [("WH", 3, 50.0)], status="FEASIBLE", seconds=0.001),
]


def test_gap_split_packages_km_and_fill() -> None:
    best = optimum({"engine": ENGINE, "shopify": PEER})
    assert best == {"a": 10.0, "b": 20.0}  # the peer's plans prove nothing
    k = kpis("shopify", PEER, best)
    assert (k.gap_mean, k.gap_max) == pytest.approx((0.05, 0.10))
    assert k.split_rate == 0.0
    assert k.packages_per_order == 1.0
    assert k.km_per_unit == pytest.approx((4 * 10 + 3 * 50) / 7)
    assert k.fill_rate == pytest.approx(7 / 8)
    assert k.proven_optimal == 0.0
    engine = kpis("engine", ENGINE, best)
    assert (engine.split_rate, engine.packages_per_order, engine.gap_max) == (0.5, 1.5, 0.0)
    assert engine.p50_ms == pytest.approx(3.0)


def test_speed_ratio_pairs_orders() -> None:
    """Median of peer/engine time over the same orders: 0.5 and 0.25."""
    assert speed_ratio(ENGINE, PEER) == pytest.approx(0.375)


def test_exact_methods_that_disagree_are_reported() -> None:
    wrong = [outcome("a", "reference", 9.5, [("WH", 4, 100.0)])]
    assert disagreements({"engine": ENGINE, "reference": wrong}) == [
        {"order_id": "a", "costs": {"engine": 10.0, "reference": 9.5}}
    ]
    assert disagreements({"engine": ENGINE, "reference": ENGINE[:1]}) == []


def test_orders_without_a_plan_ship_nothing_and_count_against_fill() -> None:
    failed = outcome("c", "engine", math.nan, [], status="INFEASIBLE")
    k = kpis("engine", [*ENGINE, failed], {})
    assert k.planned == pytest.approx(2 / 3)
    assert k.fill_rate == pytest.approx(8 / 12)
    assert math.isnan(k.gap_mean)


def test_repricing_applies_one_rule_set_to_every_plan() -> None:
    network = Network.of(
        [
            Node("WH", NodeType.WAREHOUSE, 50.0, 8.0, "DE"),
            Node("ST", NodeType.STORE, 50.0, 8.0, "DE", unit_handling_cost=0.5),
        ]
    )
    rules = RuleSet(shipment_cost=5.0, unit_cost=1.0, unit_distance_cost=0.01)
    expected = (5 + 4 * (1 + 1.0)) + (5 + 2 * (1 + 0.5)) + (5 + 2 * (1 + 0.5 + 0.1))
    assert repriced(ENGINE, network, rules) == pytest.approx(expected)
