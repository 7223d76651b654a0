"""`allocate`: the one entry point that turns an order into a sourcing plan.

Methods, all on the same fenced candidates and the same cost formula:
  "engine"     exact: candidate reduction (see reduction.py), then the CP-SAT model
  "reference"  exact: the same model on every candidate, no reduction (the yardstick)
  "shopify"    greedy peer: fewest locations, then closest
  "salesforce" greedy peer: single, pair, triple by average distance

With `rules.backorders.enabled` and incoming lots, the same methods plan against supply by
date (see dated.py): both exact methods solve the dated model, the peers plan as if every lot
were there and ship each node on the first day its share is.

One `Budget` bounds the whole request: the candidate reduction, the solver and the shortfall
re-solve all draw on it, and when it runs out the answer is the best plan at hand (FEASIBLE with
its gap: the solver's, or the greedy plan's against a lower bound).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence

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
from allocation_engine.engine.dated import DatedProblem, due_lots, with_lots
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
from allocation_engine.engine.solver import Solution, solve
from allocation_engine.engine.supply import IncomingLot
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
    lots: Sequence[IncomingLot] = (),
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

    `lots` is the supply on its way, read only under `rules.backorders.enabled` (an unknown
    node or a repeated lot id is then an InvalidInput naming `lots[i]`): a shipment may then
    wait for the lots of its node due within `max_wait_days`, leaving on its `ship_day`, and
    each unit it sends costs `delay_cost_per_unit_day` more per day it waits. A node ships an
    order once, when everything it sends is there (one package per node, as without supply).
    Every fence applies as usual; a sku only supply holds (a pre-order) ships when it arrives.
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
    due = due_lots(order, network, rules, lots) if rules.backorders.enabled else []
    stock = with_lots(inventory, due) if due else inventory
    try:
        problem = SourcingProblem.build(order, network, stock, rules)
    except InvalidInput as bad:  # the fences name the order's own fields
        raise bad.under("order.") from None
    if due:
        return _dated(DatedProblem.build(problem, stock, due), method, budget, seed)
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
    if _hopeless(solved, hint, budget):
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
    units, status, gap = _outcome(solved, solution, hint, budget)
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


def _dated(dated: DatedProblem, method: str, budget: Budget, seed: int) -> Plan:
    """Plans against supply by date (see dated.py): whether the order can be filled, and the
    shortfalls when not, are those of `base` (every lot counted as there)."""
    base = dated.base
    if method in PEERS:
        found = PEERS[method](base)
        if found is None:
            return _shortfall(base, method, budget, seed)
        return dated.plan(dated.date(found), method=method, status=Status.FEASIBLE, gap=math.nan)
    if not _may_fill(base):
        return _shortfall(base, method, budget, seed)
    greedy = dated.greedy()
    if _hopeless(base, greedy, budget):
        return _shortfall(base, method, budget, seed)
    at_least = None if base.partial else fewest_shipments(base, budget=budget)[0]
    hint, bound = None, None
    if greedy is not None:
        with budget.phase("reduction"):
            dated, hint, bound = dated.pruned(greedy, at_least or 1)
    with budget.phase("solve"):
        solution = solve(
            dated.rows, hint, budget=budget, seed=seed, at_least=at_least, one_of=dated.rows_of()
        )
    if solution.infeasible:
        return _shortfall(base, method, budget, seed)
    units, status, gap = _outcome(dated.rows, solution, hint, budget)
    return dated.plan(units, method=method, status=status, gap=gap, bound=bound)


def _hopeless(problem: SourcingProblem, hint: Units | None, budget: Budget) -> bool:
    """No complete plan, found quickly: no candidate can be part of one (the reduction or the
    fences left none), or no greedy plan exists under a shipment limit and no `limit` nodes
    together hold the order (exact, and quick for the small limits where this happens)."""
    if problem.partial:
        return False
    if len(problem.nodes) == 0:
        return True
    limit = problem.shipment_limit
    return (
        hint is None
        and limit is not None
        and fewest_shipments(problem, up_to=min(3, limit), budget=budget)[0] > limit
    )


def _outcome(
    problem: SourcingProblem, solution: Solution, hint: Units | None, budget: Budget
) -> tuple[Units, Status, float]:
    """The solver's plan, status and gap; the hint's (FEASIBLE) when the budget ran out before
    the solver found one, and OutOfTime when there is none either."""
    if solution.units is None:
        if hint is None:
            raise OutOfTime(f"no plan for order {problem.order.id!r} within {budget.seconds:g} s")
        return hint, Status.FEASIBLE, _gap_of(problem, hint)
    return solution.units, Status.OPTIMAL if solution.optimal else Status.FEASIBLE, solution.gap


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
