"""The exact sourcing model, solved with OR-Tools CP-SAT.

Variables, per candidate node n (rows of the problem) and order item:
  use[n]        1 if n sends a shipment
  ship[n,l]     units of splittable line l sent from n          (0..min(available, quantity))
  take[n,b]     1 if n sends ship-together bundle b in full      (only where n holds all of b)
  unfilled[l], skip[b]   units / bundles left unfilled           (only with partial fulfilment)
Objective: the default formula, scaled to integers (micro-units of currency), times TIE_SCALE
plus (network index + 1) per node used, so equal-cost plans are broken towards lower node ids.

CP-SAT runs on one worker with a fixed seed: the same input gives the same plan.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from ortools.sat.python import cp_model

from allocation_engine.engine.assignment import Units, empty, total_cost
from allocation_engine.engine.covering import fewest_shipments
from allocation_engine.engine.problem import SourcingProblem
from allocation_engine.engine.reduction import most_shipments

SMALL_MODEL = 64  # candidates up to which presolve costs more than it saves (measured: ~1.5 ms)
MICRO = 1_000_000  # costs are exact to a millionth of a currency unit per unit/shipment
TIE_SCALE = 1 << 20  # > the sum of (network index + 1) over a plan's nodes (50,000 nodes x 20)


@dataclass(frozen=True)
class Solution:
    """What the solver found: units per candidate and line, and what it proved."""

    units: Units | None  # None when no solution was found
    optimal: bool
    infeasible: bool
    gap: float  # relative distance between the plan's cost and the solver's lower bound


class _Model(cp_model.CpModel):
    """A CpModel without the camelCase method aliases ortools adds to every instance (~0.5 ms)."""

    def _add_pre_pep8_methods(self) -> None:
        pass


def _scaled(cost: float) -> int:
    return round(cost * MICRO) * TIE_SCALE


def solve(
    problem: SourcingProblem, hint: Units | None, *, time_limit: float, seed: int = 0
) -> Solution:
    """Solves the problem exactly (or until `time_limit` seconds), warm-started from `hint`."""
    model = _Model()
    usable = problem.usable
    covers = problem.covers
    rows = range(len(problem.nodes))
    q = problem.quantity

    use = [model.new_bool_var(f"use[{problem.network.nodes[problem.nodes[n]].id}]") for n in rows]
    objective = [
        (use[n], _scaled(float(problem.shipment_fixed[n])) + int(problem.nodes[n]) + 1)
        for n in rows
    ]
    unit_cost = [_scaled(float(c)) for c in problem.unit_cost]
    penalty = _scaled(problem.penalty)
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
            objective.append((var, unit_cost[n]))
        total = cp_model.LinearExpr.sum([ship[n, line] for n in senders])
        if problem.partial:
            unfilled = model.new_int_var(0, int(q[line]), f"unfilled[{line}]")
            objective.append((unfilled, penalty))
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
            objective.append((var, unit_cost[n] * size))
        chosen = [take[n, b] for n in senders]
        if problem.partial:
            skip = model.new_bool_var(f"skip[{b}]")
            objective.append((skip, penalty * size))
            chosen.append(skip)
        model.add_exactly_one(chosen)

    # Shipment limit (1 under ship-complete), lowered to the most shipments an optimal plan can
    # have given the hint's cost (see reduction.most_shipments).
    limit = most_shipments(problem, math.inf if hint is None else total_cost(problem, hint))
    if limit is not None and limit < len(use):
        model.add(sum(use) <= limit)
    # A complete plan needs at least as many shipments as the smallest node set holding the
    # whole order: redundant for the integer model, but it closes most of the LP's gap.
    if not problem.partial:
        model.add(sum(use) >= fewest_shipments(problem)[0])

    model.minimize(
        cp_model.LinearExpr.weighted_sum([v for v, _ in objective], [w for _, w in objective])
    )

    if hint is not None:
        used = hint.sum(axis=1) > 0
        for n in rows:
            model.add_hint(use[n], bool(used[n]))
        for (row, line), var in ship.items():
            model.add_hint(var, int(hint[row, line]))
        for (row, b), var in take.items():
            model.add_hint(var, bool(hint[row, problem.bundles[b][0]] > 0))

    solver = cp_model.CpSolver()
    solver.parameters.num_workers = 1
    solver.parameters.random_seed = seed
    solver.parameters.max_time_in_seconds = time_limit
    solver.parameters.cp_model_presolve = len(problem.nodes) > SMALL_MODEL
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
    value, bound = solver.objective_value, solver.best_objective_bound
    gap = 0.0 if status == cp_model.OPTIMAL or value <= 0 else max(0.0, (value - bound) / value)
    return Solution(units, optimal=status == cp_model.OPTIMAL, infeasible=False, gap=gap)
