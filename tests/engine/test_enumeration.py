"""The node-set search (enumeration.py) finds the optimum, and on every set the plan the
reference model (CP-SAT on every candidate, no reduction) returns.

- Every set (`few_enough` problems): `cheapest_set(problem)` is proven, costs what brute force
  and the reference cost (rel 1e-9), and has the least rank in the solver's integer objective
  (cost at objective.MICRO resolution, then the sum of row + 1 over the rows used), the rank
  the reference's plan has too. Where several plans share that rank (two nodes of one integer
  unit cost sharing a line, or two node sets of the same row sum) the objective does not say
  which one CP-SAT returns, so the shipments themselves are compared where the rank has a
  single plan.
- The sets within the price gap (`cheapest_set(problem, prices, upper_bound)`, forced on small
  problems by lowering MAX_WORK): a plan it calls proven is optimal and of the least solver
  rank, as the reference's; any plan it returns is valid.
- `search`: a proven plan is optimal, the candidates it keeps still hold an optimal plan, and
  the bound it reports for each candidate it drops is a valid bound on plans using it.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

from allocation_engine.engine import Budget, Status, allocate, enumeration
from allocation_engine.engine.assignment import total_cost, units_of
from allocation_engine.engine.covering import shipments_needed
from allocation_engine.engine.enumeration import cheapest_set, few_enough, search
from allocation_engine.engine.greedy import cheapest_cover, priced_cover
from allocation_engine.engine.prices import lp_price_bound, price_bound
from tests.engine.bulk import (
    Brute,
    bulk_instances,
    identical_nodes,
    problem_of,
    random_bulk,
    solver_key,
)
from tests.engine.oracle import violations
from tests.engine.strategies import Instance, instances
from tests.engine.test_prices import assert_valid_complete, slack

CASES = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def compare(case: Instance) -> tuple[bool, bool] | None:
    """Checks cheapest_set against the reference and brute force; None when it declined, else
    (whether the shipments are the reference's, whether brute force has one plan of that rank)."""
    problem = problem_of(case)
    units, proven = cheapest_set(problem)
    if problem.partial or not few_enough(problem):
        assert units is None and not proven
        return None
    brute = Brute(problem)
    reference = allocate(case.order, case.network, case.inventory, case.rules, method="reference")
    if units is None:  # no complete plan (the overflow guard cannot trip on these costs)
        assert not proven
        assert brute.best_key is None
        assert reference.status is Status.INFEASIBLE
        return None
    assert proven
    assert_valid_complete(problem, units)
    assert reference.status is Status.OPTIMAL
    assert violations(reference, case.order, case.network, case.available, case.rules) == []
    theirs = units_of(problem, reference)
    cost = total_cost(problem, units)
    assert math.isclose(cost, total_cost(problem, theirs), rel_tol=1e-9, abs_tol=1e-9)
    assert math.isclose(cost, brute.optimum, rel_tol=1e-9, abs_tol=1e-9)
    assert solver_key(problem, units) == brute.best_key
    assert solver_key(problem, theirs) == brute.best_key
    return bool(np.array_equal(units, theirs)), brute.ranked_once


@CASES
@given(instances(max_nodes=6, max_lines=3))
def test_every_set_gives_the_reference_plan_on_small_instances(case: Instance) -> None:
    compare(case)


@CASES
@given(bulk_instances(max_nodes=7, max_lines=3))
def test_every_set_gives_the_reference_plan_on_bulk_instances(case: Instance) -> None:
    compare(case)


def test_shipments_are_the_references_where_the_rank_is_unique() -> None:
    """On seeded bulk orders: where a single plan has the least solver rank, cheapest_set and the
    reference return that plan, unit for unit."""
    accepted = unique = 0
    for seed in range(120):
        outcome = compare(random_bulk(seed))
        if outcome is None:
            continue
        accepted += 1
        same, once = outcome
        if once:
            unique += 1
            assert same, seed
    assert accepted >= 50 and unique >= 25  # not vacuous


def test_partial_fulfilment_and_overflowing_costs_are_declined() -> None:
    """No search on partial plans (nothing says which units to leave), nor where the integer
    costs could pass 2^62: both answer (None, False)."""
    from dataclasses import replace

    problem = next(p for p in map(problem_of, map(random_bulk, range(20))) if cheapest_set(p)[1])
    assert cheapest_set(problem.fullest()) == (None, False)
    huge = replace(problem, shipment_fixed=np.full(len(problem.nodes), 2.0**62 / 1e6))
    assert cheapest_set(huge) == (None, False)


def check_gap_search(case: Instance) -> bool:
    """With every-set enumeration switched off, the search within the price gap; whether it
    proved anything."""
    problem = problem_of(case)
    if problem.partial or not len(problem.nodes):
        return False
    brute = Brute(problem)
    known = [cheapest_cover(problem)]
    proved = False
    for bounding in (price_bound, lp_price_bound):
        prices = bounding(problem, shipments_needed(problem))
        if prices is None:
            assert math.isinf(brute.optimum)
            continue
        known.append(priced_cover(problem, prices.using))
        plans = [u for u in known if u is not None]
        upper = min((total_cost(problem, u) for u in plans), default=math.inf)
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(enumeration, "MAX_WORK", 0)
            assert not few_enough(problem)
            units, proven = cheapest_set(problem, prices, upper)
        if not plans:  # no plan known: no gap to search
            assert units is None and not proven
        if units is not None:
            assert_valid_complete(problem, units)
            assert total_cost(problem, units) >= brute.optimum - slack(brute.optimum)
        if proven:
            assert units is not None
            cost = total_cost(problem, units)
            assert math.isclose(cost, brute.optimum, rel_tol=1e-9, abs_tol=1e-9)
            # every set of the least cost lies within the gap, so the solver's rank is the least
            assert solver_key(problem, units) == brute.best_key
            proved = True
    return proved


@CASES
@given(bulk_instances(max_nodes=7, max_lines=3, fenced=False))
def test_the_sets_within_the_price_gap_hold_the_optimum(case: Instance) -> None:
    check_gap_search(case)


def test_the_price_gap_search_proves_seeded_bulk_orders() -> None:
    """On seeded bulk orders the gap search proves most of the fillable ones, never wrongly."""
    proved = sum(check_gap_search(random_bulk(seed, max_nodes=10)) for seed in range(300))
    assert proved >= 100


def check_search(case: Instance, shrink: bool) -> None:
    problem = problem_of(case)
    brute = Brute(problem)
    with pytest.MonkeyPatch.context() as patch:
        if shrink:  # every-set enumeration off: the prices and the price gap do the work
            patch.setattr(enumeration, "MAX_WORK", 0)
        found = search(problem, shipments_needed(problem), Budget.unlimited())
    kept = Brute(found.problem)
    assert set(found.problem.nodes.tolist()) <= set(problem.nodes.tolist())
    if math.isfinite(brute.optimum):
        assert math.isclose(kept.optimum, brute.optimum, rel_tol=1e-9, abs_tol=1e-9)
    if found.plan is not None:
        assert total_cost(found.problem, found.plan) >= brute.optimum - slack(brute.optimum)
        if not problem.partial:
            assert_valid_complete(found.problem, found.plan)
    if found.proven:
        assert found.plan is not None
        cost = total_cost(found.problem, found.plan)
        assert math.isclose(cost, brute.optimum, rel_tol=1e-9, abs_tol=1e-9)
    # `bound`, per input candidate: NaN where kept, else a bound on plans using it (in the
    # problem the step that dropped it saw: at least every plan of the input that uses it)
    assert found.bound.shape == (len(problem.nodes),)
    dropped = ~np.isin(problem.nodes, found.problem.nodes)
    assert np.isnan(found.bound[~dropped]).all()
    for row in np.flatnonzero(dropped):
        assert found.bound[row] > brute.optimum - slack(brute.optimum)
        if math.isfinite(brute.using[row]):
            assert found.bound[row] <= brute.using[row] + slack(brute.using[row])


@CASES
@given(bulk_instances(max_nodes=7, max_lines=3))
def test_search_keeps_an_optimal_plan(case: Instance) -> None:
    check_search(case, shrink=True)
    check_search(case, shrink=False)


def test_search_keeps_an_optimal_plan_on_seeded_bulk_orders() -> None:
    for seed in range(300):
        check_search(random_bulk(seed, max_nodes=10), shrink=True)


def test_equal_cost_plans_rank_alike_but_may_differ() -> None:
    """Identical nodes: many plans share the least cost, and the row-sum tie tier still leaves
    ties (rows {1, 2} against {0, 3}; which of two equal nodes ships a unit). cheapest_set and
    the reference always agree on the rank, and on the plan whenever it is the only one of that
    rank; between plans of one rank they may differ (they do on some of these seeds: equal rank
    is all the solver's objective fixes)."""
    tied = 0
    for seed in range(150):
        outcome = compare(identical_nodes(seed))
        if outcome is not None:
            same, once = outcome
            assert same or not once, seed
            tied += not once
    assert tied >= 20  # not vacuous: many of these orders have several plans of the least rank
