"""Bulk orders and long baskets: the engine (reduction, prices, set search, then CP-SAT) returns
the reference model's status and cost.

- F4 (bulk B2B orders, 2 to 8 lines of 40 to 1,000 units) and F5 (20 to 60 lines) on the
  1,000-node F2 network, under the default rules and with shipment limits, partial fulfilment
  and no line split;
- the reported case: 919 + 1 + 1 units on the 1,000-node F2 network, proven OPTIMAL at the
  reference's cost;
- the small bulk family (bulk.py) with every fence, against the raw-input oracle as well, once
  as shipped and once with every-set enumeration switched off (MAX_WORK = 0), so that the small
  problems go through the price-gap search and the solver's price-gap cut like large ones.
"""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings

from allocation_engine.bench import f2, f4
from allocation_engine.bench.mip import allocate_mip
from allocation_engine.engine import OrderLine, Plan, RuleSet, Status, allocate, enumeration
from tests.engine.bulk import available_of, bulk_instances
from tests.engine.oracle import optimum_key, plan_key, violations
from tests.engine.strategies import Instance


def assert_same_answer(engine: Plan, reference: Plan) -> None:
    assert engine.status is reference.status, (engine.status, reference.status)
    if engine.status is Status.INFEASIBLE:
        assert engine.shortfalls == reference.shortfalls
        return
    assert engine.status is Status.OPTIMAL
    assert math.isclose(engine.total_cost, reference.total_cost, rel_tol=1e-9, abs_tol=1e-6)
    assert engine.units_shipped == reference.units_shipped


BULK_RULES = {
    "default": RuleSet(time_limit_seconds=60),
    "max-2-shipments": RuleSet(max_shipments=2, time_limit_seconds=60),
    "max-3-shipments": RuleSet(max_shipments=3, time_limit_seconds=60),
    "partial": RuleSet(allow_partial=True, unfilled_unit_penalty=3.0, time_limit_seconds=60),
    "no-line-split": RuleSet(allow_line_split=False, time_limit_seconds=60),
}


def assert_engine_matches_reference(instance: f2.Instance, rules: RuleSet) -> None:
    """The engine and the reference answer alike, and the engine's plan keeps every fence."""
    engine = allocate(instance.order, instance.network, instance.inventory, rules)
    reference = allocate(
        instance.order, instance.network, instance.inventory, rules, method="reference"
    )
    assert_same_answer(engine, reference)
    assert violations(engine, instance.order, instance.network, available_of(instance), rules) == []


@pytest.mark.parametrize("rules", BULK_RULES.values(), ids=BULK_RULES.keys())
def test_f4_bulk_orders_equal_the_reference(rules: RuleSet) -> None:
    """Eight F4 orders on 1,000 nodes (a fourth of them B2B, warehouses only): same status,
    same cost, the engine's plan within the fences."""
    for instance in f4.instances(f4.Family("bulk", 1_000), 8):
        assert_engine_matches_reference(instance, rules)


# (rules, F5 orders): those the reference proves in about a second; F5-003, -005, -006 and -007
# take it 7 to 27 s under the default rules (the engine proves them in under 0.1 s, at the cost
# SCIP, HiGHS and CBC prove), too slow for the suite. The distance-heavy weights leave the
# solver 150 to 220 candidates on -003 and -007.
LONG_CASES = {
    "default": (RuleSet(time_limit_seconds=60), (0, 1, 2, 4)),
    "max-2-shipments": (RuleSet(max_shipments=2, time_limit_seconds=60), (0, 1, 2, 4)),
    "distance-heavy": (
        RuleSet(unit_distance_cost=0.05, shipment_distance_cost=0.05, time_limit_seconds=60),
        (0, 3, 7),
    ),
}


@pytest.mark.parametrize("name", LONG_CASES)
def test_f5_long_baskets_equal_the_reference(name: str) -> None:
    """F5 baskets of 20 to 60 lines on 1,000 nodes: same status and cost."""
    rules, chosen = LONG_CASES[name]
    orders = list(f4.instances(f4.Family("long", 1_000), max(chosen) + 1))
    for instance in (orders[i] for i in chosen):
        assert_engine_matches_reference(instance, rules)


def test_the_reported_bulk_line_is_proven_optimal() -> None:
    """919 + 1 + 1 units over the 1,000-node F2 network (see test_budget.py): OPTIMAL within
    the default time limit, at the cost the reference proves given a minute (or, should it not
    prove it in time, at the cost SCIP proves)."""
    instance = next(f2.instances(f2.Cell(1_000, 3, 0.2), 1))
    lines = tuple(
        OrderLine(line.sku, q) for line, q in zip(instance.order.lines, (919, 1, 1), strict=True)
    )
    order = replace(instance.order, lines=lines)
    plan = allocate(order, instance.network, instance.inventory, RuleSet())
    assert plan.status is Status.OPTIMAL
    assert plan.units_shipped == 921
    assert violations(plan, order, instance.network, available_of(instance), RuleSet()) == []
    reference = allocate(
        order,
        instance.network,
        instance.inventory,
        RuleSet(time_limit_seconds=60.0),
        method="reference",
    )
    if reference.status is not Status.OPTIMAL:
        reference = allocate_mip(
            order, instance.network, instance.inventory, RuleSet(), backend="SCIP", time_limit=60
        )
    assert reference.status is Status.OPTIMAL
    assert math.isclose(plan.total_cost, reference.total_cost, rel_tol=1e-9)


SMALL = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def check_small(case: Instance, every_set: bool) -> None:
    with pytest.MonkeyPatch.context() as patch:
        if not every_set:
            patch.setattr(enumeration, "MAX_WORK", 0)
        engine = allocate(case.order, case.network, case.inventory, case.rules)
    reference = allocate(case.order, case.network, case.inventory, case.rules, method="reference")
    assert_same_answer(engine, reference)
    assert violations(engine, case.order, case.network, case.available, case.rules) == []
    best = optimum_key(case.order, case.network, case.available, case.rules)
    if best is None:
        assert engine.status is Status.INFEASIBLE
        return
    own, cost = plan_key(engine, case.order, case.rules)
    assert own == best[0]
    assert math.isclose(cost, best[1], rel_tol=1e-6, abs_tol=1e-5)


@SMALL
@given(bulk_instances(max_nodes=7, max_lines=3))
def test_small_bulk_orders_with_every_fence_equal_the_reference(case: Instance) -> None:
    check_small(case, every_set=True)


@SMALL
@given(bulk_instances(max_nodes=7, max_lines=3))
def test_small_bulk_orders_through_the_price_gap_equal_the_reference(case: Instance) -> None:
    check_small(case, every_set=False)


@SMALL
@given(bulk_instances(max_nodes=7, max_lines=3, fenced=False))
def test_unfenced_small_bulk_orders_through_the_price_gap_equal_the_reference(
    case: Instance,
) -> None:
    check_small(case, every_set=False)
