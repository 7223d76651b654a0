"""The engine's optimum equals brute-force enumeration on small instances, with every fence."""

from __future__ import annotations

import math

from hypothesis import HealthCheck, given, settings

from allocation_engine.engine import Status, allocate
from tests.engine.oracle import optimum_key, plan_key, violations
from tests.engine.strategies import Instance, instances

EXACT = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@EXACT
@given(instances(max_nodes=6, max_lines=3))
def test_engine_cost_equals_exhaustive_enumeration(case: Instance) -> None:
    """Given up to 6 nodes and 3 lines under random fences and weights, when the engine plans,
    then it is OPTIMAL at the enumerated least cost (click & collect: after the most units from
    the pickup store's own stock, when the rules put it first), or INFEASIBLE exactly when
    nothing is."""
    plan = allocate(case.order, case.network, case.inventory, case.rules)
    best = optimum_key(case.order, case.network, case.available, case.rules)
    if best is None:
        assert plan.status is Status.INFEASIBLE
        assert plan.shortfalls
    else:
        assert plan.status is Status.OPTIMAL
        own, cost = plan_key(plan, case.order, case.rules)
        assert own == best[0]  # as many units from the pickup store as any plan (if first)
        assert math.isclose(cost, best[1], rel_tol=1e-6, abs_tol=1e-5)
    assert violations(plan, case.order, case.network, case.available, case.rules) == []


@EXACT
@given(instances(max_nodes=6, max_lines=3))
def test_every_method_respects_every_fence(case: Instance) -> None:
    """Given any small instance, every method (exact or greedy) returns a plan within the fences
    that is never better than the proven optimum: never more units from a click & collect
    store's own stock when the rules put it first, never cheaper at as many."""
    best = optimum_key(case.order, case.network, case.available, case.rules)
    for method in ("reference", "shopify", "salesforce"):
        plan = allocate(case.order, case.network, case.inventory, case.rules, method=method)
        assert violations(plan, case.order, case.network, case.available, case.rules) == [], method
        if plan.status is not Status.INFEASIBLE:
            assert best is not None
            own, cost = plan_key(plan, case.order, case.rules)
            assert own >= best[0], method
            if own == best[0]:
                assert cost >= best[1] - 1e-6, method
