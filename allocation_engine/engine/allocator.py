"""`allocate`: the one entry point that turns an order into a sourcing plan.

Methods, all on the same fenced candidates and the same cost formula:
  "engine"     exact: candidate reduction (see reduction.py), then the CP-SAT model
  "reference"  exact: the same model on every candidate, no reduction (the yardstick)
  "shopify"    greedy peer: fewest locations, then closest
  "salesforce" greedy peer: single, pair, triple by average distance

One `Budget` bounds the whole request: the candidate reduction, the solver and the shortfall
re-solve all draw on it, and when it runs out the answer is the best plan at hand (FEASIBLE with
its gap: the solver's, or the greedy plan's against a lower bound).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import numpy as np

from allocation_engine.engine.assignment import (
    Units,
    build_plan,
    empty,
    infeasible_plan,
    plan_cost,
    short_alone,
    total_cost,
    units_of,
)
from allocation_engine.engine.budget import Budget, OutOfTime
from allocation_engine.engine.covering import fewest_shipments
from allocation_engine.engine.enumeration import search
from allocation_engine.engine.greedy import (
    cheapest_cover,
    fewest_splits_by_average_distance,
    fewest_splits_closest,
)
from allocation_engine.engine.inventory import Inventory
from allocation_engine.engine.network import Network
from allocation_engine.engine.order import Order
from allocation_engine.engine.plan import Plan, Status
from allocation_engine.engine.problem import SourcingProblem
from allocation_engine.engine.reduction import lower_bounds, reduce, unit_floors
from allocation_engine.engine.rules import RuleSet
from allocation_engine.engine.solver import solve
from allocation_engine.errors import InvalidInput

PEERS: dict[str, Callable[[SourcingProblem], Units | None]] = {
    "shopify": fewest_splits_closest,
    "salesforce": fewest_splits_by_average_distance,
}
EXACT = ("engine", "reference")
METHODS = (*EXACT, *PEERS)


def allocate(
    order: Order,
    network: Network,
    inventory: Inventory,
    rules: RuleSet | None = None,
    *,
    method: str = "engine",
    time_limit: float | None = None,
    seed: int = 0,
    budget: Budget | None = None,
) -> Plan:
    """Sources `order` from `network` given `inventory`, under `rules` (the defaults if None).

    Returns an OPTIMAL plan when one exists and the solver proves it within the time limit,
    FEASIBLE (with the gap) when the limit stops the proof, or INFEASIBLE with a shortfall per
    short sku (see `assignment.infeasible_plan`). A greedy peer that finds no plan answers
    INFEASIBLE too; its shortfalls (what the fences allow, found exactly) may then be empty: the
    peer failed, not the stock.

    The whole call takes at most `budget` (a fresh one of `time_limit` seconds, or of the rule
    set's `time_limit_seconds`, when not given), give or take one step: the solver is handed
    what is left. When it runs out before any plan is known (no greedy plan exists under a
    shipment limit, and the solver found none yet), raises `budget.OutOfTime` (a
    DeadlineExceeded, and a TimeoutError).
    Raises InvalidInput for an unknown sku or pickup store (named under `order.`, as
    `order.lines[1].sku`), a method or a time limit that is not a number > 0.
    """
    if method not in METHODS:
        raise InvalidInput.one("method", method, f"must be one of {list(METHODS)}")
    if inventory.network is not network:
        raise InvalidInput.one("inventory", "network", "inventory belongs to another network")
    rules = rules or RuleSet()
    if order.max_shipments is not None and (
        rules.max_shipments is None or order.max_shipments < rules.max_shipments
    ):
        rules = dataclasses.replace(rules, max_shipments=order.max_shipments)
    if budget is None:
        limit = rules.time_limit_seconds if time_limit is None else time_limit
        if not (isinstance(limit, int | float) and math.isfinite(limit) and limit > 0):
            raise InvalidInput.one("time_limit", limit, "must be a finite number of seconds > 0")
        budget = Budget(limit)
    try:
        problem = SourcingProblem.build(order, network, inventory, rules)
    except InvalidInput as bad:  # the fences name the order's own fields
        raise bad.under("order.") from None
    if method in PEERS:
        units = PEERS[method](problem)
        if units is None:
            return _shortfall(problem, method, budget, seed)
        return build_plan(
            problem,
            units,
            method=method,
            status=Status.FEASIBLE,
            gap=math.nan,
            candidates=len(problem.nodes),
        )
    return _optimise(problem, method, budget, seed)


def _optimise(problem: SourcingProblem, method: str, budget: Budget, seed: int) -> Plan:
    candidates = len(problem.nodes)
    if not _may_fill(problem):
        return _shortfall(problem, method, budget, seed)
    if method == "engine":
        with budget.phase("reduction"):
            reduction = reduce(problem, budget)
        solved, bound, dominator = reduction.problem, reduction.bound, reduction.dominator
        at_least: int | None = reduction.at_least
        with budget.phase("search"):
            found = search(solved, reduction.at_least, budget, reduction.prices, reduction.plan)
        bound[solved.nodes] = np.fmax(bound[solved.nodes], found.bound)
        solved, hint, priced = found.problem, found.plan, found.prices
        if hint is not None and found.proven:
            # Every node set that could hold an optimal plan was tried: no solver needed.
            return build_plan(
                solved,
                hint,
                method=method,
                status=Status.OPTIMAL,
                gap=0.0,
                bound=bound,
                dominator=dominator,
                candidates=candidates,
                solver_candidates=len(solved.nodes),
            )
    else:
        solved, hint, dominator, at_least = problem, cheapest_cover(problem), None, None
        priced = None
        bound = np.full(len(problem.network), np.nan)
        bound[problem.nodes] = lower_bounds(problem)[0]
    # No greedy plan under a shipment limit: when no `limit` nodes together hold the order,
    # none is possible (exact, and quick for the small limits where this happens); nor when
    # the reduction found that no candidate can be part of a complete plan
    limit = solved.shipment_limit
    if not solved.partial and len(solved.nodes) == 0:
        return _shortfall(problem, method, budget, seed)
    if (
        hint is None
        and limit is not None
        and not solved.partial
        and fewest_shipments(solved, up_to=min(3, limit), budget=budget)[0] > limit
    ):
        return _shortfall(problem, method, budget, seed)
    with budget.phase("solve"):
        solution = solve(
            solved,
            hint,
            budget=budget,
            seed=seed,
            at_least=at_least,
            prices=priced,
            presolve=False if method == "engine" else None,
        )
    if solution.infeasible:
        return _shortfall(problem, method, budget, seed)
    units, status, gap = (
        solution.units,
        Status.OPTIMAL if solution.optimal else Status.FEASIBLE,
        solution.gap,
    )
    if units is None:  # the budget ran out before the solver found a plan of its own
        if hint is None:
            raise OutOfTime(f"no plan for order {problem.order.id!r} within {budget.seconds:g} s")
        units, status, gap = hint, Status.FEASIBLE, _gap_of(solved, hint)
    return build_plan(
        solved,
        units,
        method=method,
        status=status,
        gap=gap,
        bound=bound,
        dominator=dominator,
        candidates=candidates,
        solver_candidates=len(solved.nodes),
    )


def _may_fill(problem: SourcingProblem) -> bool:
    """A quick necessary test: enough usable stock for every line (partial plans always exist)."""
    return problem.partial or bool((problem.usable.sum(axis=0) >= problem.quantity).all())


def _gap_of(problem: SourcingProblem, units: Units) -> float:
    """A greedy plan's distance to a lower bound on every plan (each unit at its line's floor,
    see reduction.unit_floors, plus one shipment at the cheapest when all must ship), relative
    to what the plan really costs, at most 1."""
    floor = float((problem.quantity * unit_floors(problem)).sum())
    if not problem.partial and len(problem.nodes):
        floor += float(problem.shipment_fixed.min())
    below = max(0.0, total_cost(problem, units) - floor)
    cost = plan_cost(problem, units)
    return 0.0 if below == 0 else (1.0 if cost <= 0 else min(1.0, below / cost))


def _shortfall(problem: SourcingProblem, method: str, budget: Budget, seed: int) -> Plan:
    """The order cannot be filled: report, per short sku, the most the fences allow for it alone.

    When some sku is short even alone, that is the answer (found in closed form). When none is,
    the order fails only as a whole, and one fullest plan says which skus to name: it re-solves
    exactly (whatever the method, since what the fences allow is a fact about the order), on
    the same budget, ranking units filled above any cost. A partial-fulfilment rule set never
    gets here.
    """
    if short_alone(problem):
        return infeasible_plan(problem, None, method=method)
    if len(problem.nodes) == 0:  # e.g. every node holds only part of a ship-together group
        return infeasible_plan(problem, empty(problem), method=method)
    fullest_plan = _optimise(problem.fullest(), "engine", budget, seed)
    return infeasible_plan(problem, units_of(problem, fullest_plan), method=method)
