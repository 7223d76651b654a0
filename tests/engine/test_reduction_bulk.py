"""Candidate reduction keeps an optimal plan on bulk orders, its price rule (rule 0) included.

On small bulk problems brute force (bulk.Brute) finds the optimum over the kept candidates and
over all of them: the two must agree, and the shipment floor the reduction hands the solver
(`Reduction.at_least`) must not exceed the fewest kept nodes that hold the order; the prices it
hands on (`Reduction.prices`) must be valid bounds on the kept candidates, and the search that
starts from them (as the engine runs it) must keep an optimal plan. Each case runs
as shipped (the reduction stops once the every-set search can take over) and with that search
switched off (MAX_WORK = 0), so that every rule runs on these small problems as on large ones.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

from allocation_engine.engine import Budget, Reason, enumeration
from allocation_engine.engine.assignment import total_cost
from allocation_engine.engine.enumeration import search
from allocation_engine.engine.reduction import reduce
from tests.engine.bulk import Brute, bulk_instances, problem_of, random_bulk
from tests.engine.strategies import Instance
from tests.engine.test_prices import check_prices

CASES = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def check_reduction(case: Instance) -> int:
    """Checks both ways of running the reduction; returns how many candidates it dropped."""
    problem = problem_of(case)
    full = Brute(problem)
    dropped = 0
    for every_set in (True, False):
        with pytest.MonkeyPatch.context() as patch:
            if not every_set:
                patch.setattr(enumeration, "MAX_WORK", 0)
            reduction = reduce(problem)
        kept = reduction.problem
        assert set(kept.nodes.tolist()) <= set(problem.nodes.tolist())
        assert np.isin(kept.reason[kept.nodes], Reason.CANDIDATE).all()
        gone = problem.nodes[~np.isin(problem.nodes, kept.nodes)]
        assert np.isin(
            kept.reason[gone], [Reason.COST_BOUND, Reason.DOMINATED, Reason.NO_FEASIBLE_USE]
        ).all()
        dropped = max(dropped, len(gone))
        small = Brute(kept)
        if math.isinf(full.optimum):
            assert math.isinf(small.optimum)
            continue
        assert math.isclose(small.optimum, full.optimum, rel_tol=1e-9, abs_tol=1e-9), every_set
        if not problem.partial:
            assert small.fewest is not None
            assert 1 <= reduction.at_least <= small.fewest
        # rule 0's prices, handed on to the search: valid on the kept candidates, and the
        # search from them (the engine's path) keeps an optimal plan and proves only optima
        if reduction.prices is not None:
            check_prices(kept, small, reduction.prices, ("reduction", reduction.at_least), False)
        with pytest.MonkeyPatch.context() as patch:
            if not every_set:
                patch.setattr(enumeration, "MAX_WORK", 0)
            found = search(kept, reduction.at_least, Budget.unlimited(), reduction.prices)
        assert math.isclose(Brute(found.problem).optimum, full.optimum, rel_tol=1e-9, abs_tol=1e-9)
        if found.proven:
            assert found.plan is not None
            cost = total_cost(found.problem, found.plan)
            assert math.isclose(cost, full.optimum, rel_tol=1e-9, abs_tol=1e-9)
    return dropped


@CASES
@given(bulk_instances(max_nodes=7, max_lines=3))
def test_reduction_keeps_the_optimum_of_bulk_orders_with_every_fence(case: Instance) -> None:
    check_reduction(case)


@CASES
@given(bulk_instances(max_nodes=7, max_lines=3, fenced=False))
def test_reduction_keeps_the_optimum_of_unfenced_bulk_orders(case: Instance) -> None:
    check_reduction(case)


def test_reduction_keeps_the_optimum_of_seeded_bulk_orders() -> None:
    """Seeded bulk orders on up to 8 nodes, fenced and not; the reduction drops candidates in
    most of them, so the check is not vacuous."""
    dropped = 0
    for seed in range(200):
        for fenced in (False, True):
            dropped += check_reduction(random_bulk(seed, fenced=fenced)) > 0
    assert dropped >= 150
