"""`allocate`: the one entry point that turns an order into a sourcing plan.

Methods, all on the same fenced candidates and the same cost formula:
  "engine"     exact: candidate reduction (see reduction.py), then the CP-SAT model
  "reference"  exact: the same model on every candidate, no reduction (the yardstick)
  "shopify"    greedy peer: fewest locations, then closest
  "salesforce" greedy peer: single, pair, triple by average distance
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace

import numpy as np

from allocation_engine.engine.assignment import Units, build_plan, empty, infeasible_plan
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
from allocation_engine.engine.reduction import lower_bounds, reduce
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
) -> Plan:
    """Sources `order` from `network` given `inventory`, under `rules` (the defaults if None).

    Returns an OPTIMAL plan when one exists and the solver proves it within the time limit,
    FEASIBLE (with the gap) when the limit stops the proof, or INFEASIBLE with a shortfall per sku.
    A greedy peer that finds no plan answers INFEASIBLE too; its shortfalls (what the fences
    allow, found exactly) may then be empty: the peer failed, not the stock.
    Raises InvalidInput for an unknown sku or pickup store (named under `order.`, as
    `order.lines[1].sku`) or method.
    """
    if method not in METHODS:
        raise InvalidInput.one("method", method, f"must be one of {list(METHODS)}")
    if inventory.network is not network:
        raise InvalidInput.one("inventory", "network", "inventory belongs to another network")
    rules = rules or RuleSet()
    limit = rules.time_limit_seconds if time_limit is None else time_limit
    try:
        problem = SourcingProblem.build(order, network, inventory, rules)
    except InvalidInput as bad:  # the fences name the order's own fields
        raise bad.under("order.") from None
    if method in PEERS:
        units = PEERS[method](problem)
        if units is None:
            return _shortfall(problem, method, limit, seed)
        return build_plan(
            problem,
            units,
            method=method,
            status=Status.FEASIBLE,
            gap=math.nan,
            candidates=len(problem.nodes),
        )
    return _optimise(problem, method, limit, seed)


def _optimise(problem: SourcingProblem, method: str, time_limit: float, seed: int) -> Plan:
    candidates = len(problem.nodes)
    if not _may_fill(problem):
        return _shortfall(problem, method, time_limit, seed)
    if method == "engine":
        reduction = reduce(problem)
        solved, bound, dominator = reduction.problem, reduction.bound, reduction.dominator
        hint = cheapest_cover(solved)
        if len(solved.nodes) == 1 and hint is not None and not solved.partial:
            # One node left and it holds everything: shipping it all from there is the only
            # complete plan the reduction kept, so it is optimal without asking the solver.
            return build_plan(
                solved,
                hint,
                method=method,
                status=Status.OPTIMAL,
                gap=0.0,
                bound=bound,
                dominator=dominator,
                candidates=candidates,
                solver_candidates=1,
            )
    else:
        solved, hint, dominator = problem, cheapest_cover(problem), None
        bound = np.full(len(problem.network), np.nan)
        bound[problem.nodes] = lower_bounds(problem)[0]
    solution = solve(solved, hint, time_limit=time_limit, seed=seed)
    if solution.infeasible:
        return _shortfall(problem, method, time_limit, seed)
    units, status, gap = (
        solution.units,
        Status.OPTIMAL if solution.optimal else Status.FEASIBLE,
        solution.gap,
    )
    if units is None:  # the time limit struck before the solver found a plan of its own
        if hint is None:
            raise TimeoutError(f"no plan for order {problem.order.id} within {time_limit} s")
        units, status = hint, Status.FEASIBLE
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


def _shortfall(problem: SourcingProblem, method: str, time_limit: float, seed: int) -> Plan:
    """The order cannot be filled: find the fullest plan the fences allow and report what is short.

    Re-solves exactly (whatever the method, since what the fences allow is a fact about the
    order) with partial fulfilment and a penalty above the cost of any complete plan, so the
    solver maximises the units filled first. A partial-fulfilment rule set never gets here.
    """
    if len(problem.nodes) == 0:
        return infeasible_plan(problem, empty(problem), method=method)
    above_any_plan = (
        len(problem.quantity) * float(problem.shipment_fixed.max())
        + problem.units * float(problem.unit_cost.max())
        + 1.0
    )
    fullest = replace(
        problem,
        rules=replace(problem.rules, allow_partial=True, unfilled_unit_penalty=above_any_plan),
    )
    fullest_plan = _optimise(fullest, "engine", time_limit, seed)
    return infeasible_plan(problem, _units_of(problem, fullest_plan), method=method)


def _units_of(problem: SourcingProblem, plan: Plan) -> Units:
    """The plan's shipments as an assignment over the problem's candidates."""
    units = empty(problem)
    row_of = {int(node): row for row, node in enumerate(problem.nodes)}
    column_of = {sku: j for j, sku in enumerate(problem.order.skus)}
    for shipment in plan.shipments:
        row = row_of[problem.network.index[shipment.node_id]]
        for line in shipment.lines:
            units[row, column_of[line.sku]] = line.quantity
    return units
