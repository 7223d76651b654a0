"""The exact sourcing model, solved with OR-Tools CP-SAT.

Variables, per candidate node n (rows of the problem) and order item:
  use[n]        1 if n sends a shipment
  ship[n,l]     units of splittable line l sent from n          (0..min(available, quantity))
  take[n,b]     1 if n sends ship-together bundle b in full      (only where n holds all of b)
  unfilled[l], skip[b]   units / bundles left unfilled           (only with partial fulfilment)
Objective: the default formula in integers (micro-units of currency), with a tie-break towards
lower node ids below one micro-unit, and (for the fullest-plan search) unfilled units above any
cost; `objective.choose` picks the weights so the model stays inside int64 (proof there).

CP-SAT runs on one worker with a fixed seed: the same input gives the same plan. It gets what is
left of the request's budget as its time limit, and is not started when nothing is left.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from ortools.sat.python import cp_model

from allocation_engine.engine.assignment import Units, empty, plan_cost, total_cost
from allocation_engine.engine.budget import Budget
from allocation_engine.engine.covering import fewest_shipments
from allocation_engine.engine.objective import MICRO, choose
from allocation_engine.engine.prices import PriceBound
from allocation_engine.engine.problem import SourcingProblem
from allocation_engine.engine.reduction import most_shipments

SMALL_MODEL = 64  # candidates up to which presolve costs more than it saves (measured: ~1.5 ms)


@dataclass(frozen=True)
class Solution:
    """What the solver found: units per candidate and line, and what it proved."""

    units: Units | None  # None when no solution was found (or the budget was spent)
    optimal: bool
    infeasible: bool
    gap: float  # relative distance between the plan's cost and the solver's lower bound


class _Model(cp_model.CpModel):
    """A CpModel without the camelCase method aliases ortools adds to every instance (~0.5 ms)."""

    def _add_pre_pep8_methods(self) -> None:
        pass


def _price_gap_cut(
    model: cp_model.CpModel, use: list[cp_model.IntVar], prices: PriceBound, upper_bound: float
) -> None:
    """No plan dearer than `upper_bound` (a known plan's cost) is needed, and every plan costs at
    least L0 + the margins of the nodes it uses against the prices' choice (enumeration.py): so
    the margins of those toggles add up to at most upper_bound - L0. Redundant for the integer
    model; a knapsack CP-SAT propagates at once, where its own LP finds it late or not at all.
    In integers of 1/MICRO: margins rounded down, the gap up, so no plan is cut off."""
    gap = upper_bound - prices.free_bound
    if not np.isfinite(gap) or gap < 0:
        return
    toggle = np.floor(np.abs(prices.margin) * MICRO).astype(np.int64)
    rhs = int(np.ceil(gap * MICRO * (1 + 1e-9))) + 1
    if float(toggle.sum()) >= 2**62 or rhs >= 2**62:
        return
    opened = prices.margin > 0
    terms = []
    constant = 0
    for row, var in enumerate(use):
        if toggle[row] == 0:
            continue
        if opened[row]:  # toggled when left out: t (1 - use)
            constant += int(toggle[row])
            terms.append((var, -int(toggle[row])))
        else:
            terms.append((var, int(toggle[row])))
    if terms:
        expr = cp_model.LinearExpr.weighted_sum([v for v, _ in terms], [w for _, w in terms])
        model.add(expr <= rhs - constant)


NOT_SOLVED = Solution(None, optimal=False, infeasible=False, gap=float("nan"))


def solve(
    problem: SourcingProblem,
    hint: Units | None,
    *,
    budget: Budget,
    seed: int = 0,
    at_least: int | None = None,
    prices: PriceBound | None = None,
    presolve: bool | None = None,
    one_of: Sequence[Sequence[int]] = (),
) -> Solution:
    """Solves the problem exactly (or until `budget` runs out), warm-started from `hint`.
    `at_least` is a known floor on the shipments of a complete plan (found here when None);
    `prices` on these candidates add the price-gap cut (see `_price_gap_cut`). `presolve`
    None: CP-SAT's presolve on models past SMALL_MODEL candidates; a reduced problem has had
    what presolve would find taken out already (measured on the F4 and F2 orders that still
    reach the solver: off is up to twice as fast there). Of the rows in each group of `one_of`,
    at most one ships (the days of one node in a dated problem, see dated.py)."""
    if budget.expired():
        return NOT_SOLVED
    model = _Model()
    usable = problem.usable
    covers = problem.covers
    rows = range(len(problem.nodes))
    q = problem.quantity

    # The most shipments an optimal plan can have given the hint's cost (see
    # reduction.most_shipments), which also bounds the tie-break's weight.
    limit = most_shipments(problem, math.inf if hint is None else total_cost(problem, hint))
    scale = choose(problem, len(rows) if limit is None else limit)
    fixed = (scale.costs(problem.shipment_fixed) + scale.tie(len(rows))).tolist()
    unit_cost = scale.costs(problem.unit_cost).tolist()
    if problem.fill_first:
        penalty = scale.fill_weight
    else:
        penalty = int(scale.costs(np.array([problem.penalty]))[0])

    use = [model.new_bool_var(f"use[{problem.network.nodes[problem.nodes[n]].id}]") for n in rows]
    terms: list[tuple[cp_model.IntVar, int]] = [(use[n], fixed[n]) for n in rows]
    ship: dict[tuple[int, int], cp_model.IntVar] = {}
    take: dict[tuple[int, int], cp_model.IntVar] = {}

    # Splittable lines: units from all nodes (plus unfilled units) add up to the quantity;
    # a node ships only within its stock and only if it is used.
    for line in problem.split_lines:
        senders = np.flatnonzero(usable[:, line]).tolist()
        for n in senders:
            cap = int(usable[n, line])
            var = model.new_int_var(0, cap, f"ship[{n},{line}]")
            model.add(var <= cap * use[n])
            ship[n, line] = var
            terms.append((var, unit_cost[n]))
        total = cp_model.LinearExpr.sum([ship[n, line] for n in senders])
        if problem.partial:
            unfilled = model.new_int_var(0, int(q[line]), f"unfilled[{line}]")
            terms.append((unfilled, penalty))
            model.add(total + unfilled == int(q[line]))
        else:
            model.add(total == int(q[line]))

    # Ship-together bundles: exactly one node that holds all of it sends it (or it is skipped).
    for b, lines in enumerate(problem.bundles):
        size = int(q[list(lines)].sum())
        senders = np.flatnonzero(covers[:, b]).tolist()
        for n in senders:
            var = model.new_bool_var(f"take[{n},{b}]")
            model.add_implication(var, use[n])
            take[n, b] = var
            terms.append((var, unit_cost[n] * size))
        chosen = [take[n, b] for n in senders]
        if problem.partial:
            skip = model.new_bool_var(f"skip[{b}]")
            terms.append((skip, penalty * size))
            chosen.append(skip)
        model.add_exactly_one(chosen)

    for group in one_of:
        model.add_at_most_one(use[n] for n in group)
    # Shipment limit (1 under ship-complete), lowered as computed above.
    if limit is not None and limit < len(use):
        model.add(sum(use) <= limit)
    # A complete plan needs at least as many shipments as the smallest node set holding the
    # whole order: redundant for the integer model, but it closes most of the LP's gap.
    if not problem.partial:
        floor = fewest_shipments(problem, budget=budget)[0] if at_least is None else at_least
        model.add(sum(use) >= floor)
    if prices is not None and hint is not None:
        _price_gap_cut(model, use, prices, total_cost(problem, hint))

    model.minimize(cp_model.LinearExpr.weighted_sum([v for v, _ in terms], [w for _, w in terms]))

    if hint is not None:
        used = hint.sum(axis=1) > 0
        for n in rows:
            model.add_hint(use[n], bool(used[n]))
        for (row, line), var in ship.items():
            model.add_hint(var, int(hint[row, line]))
        for (row, b), var in take.items():
            model.add_hint(var, bool(hint[row, problem.bundles[b][0]] > 0))

    left = budget.remaining()
    if left <= 0:
        return NOT_SOLVED
    solver = cp_model.CpSolver()
    solver.parameters.num_workers = 1
    solver.parameters.random_seed = seed
    solver.parameters.max_time_in_seconds = left
    solver.parameters.cp_model_presolve = (
        len(problem.nodes) > SMALL_MODEL if presolve is None else presolve
    )
    # the LP relaxation proves multi-shipment optima far sooner (measured: 6.5 s -> 0.09 s)
    solver.parameters.linearization_level = 2
    status = solver.solve(model)

    if status == cp_model.INFEASIBLE:
        return Solution(None, optimal=True, infeasible=True, gap=0.0)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        if status == cp_model.MODEL_INVALID:
            raise RuntimeError(f"invalid sourcing model: {model.validate()}")
        return Solution(None, optimal=False, infeasible=False, gap=float("nan"))

    units = empty(problem)
    for (row, line), var in ship.items():
        units[row, line] = solver.value(var)
    for (row, b), var in take.items():
        if solver.value(var):
            cols = list(problem.bundles[b])
            units[row, cols] = q[cols]
    # The gap: how much cheaper (in currency) a plan could be than this one, over what this one
    # really costs (the click & collect bias is not a cost), at most 1.
    optimal = status == cp_model.OPTIMAL
    cost = plan_cost(problem, units)
    below = 0.0
    if not optimal:
        per_currency = scale.resolution * scale.cost_weight
        value, bound = solver.objective_value, solver.best_objective_bound
        below = math.inf if per_currency == 0 else max(0.0, value - bound) / per_currency
    if not scale.exact and not problem.fill_first:
        # optimal for the rounded costs only: the true optimum may be this much cheaper
        shipments = len(rows) if limit is None else limit
        below += scale.rounding(shipments, problem.units)
        optimal = False
    gap = 0.0 if below == 0 else (1.0 if cost <= 0 else min(1.0, below / cost))
    return Solution(units, optimal=optimal, infeasible=False, gap=gap)
