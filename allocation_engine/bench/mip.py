"""The sourcing model as a mixed-integer programme for OR-Tools' linear solver wrapper (pywraplp).

The benchmarks compare the engine with "the other OR-Tools backends": the same model the engine
hands CP-SAT (see `engine/solver.py`), without candidate reduction, solved by SCIP, CBC or HiGHS
through pywraplp. Same candidates (`SourcingProblem.build` applies the fences), same cost
formula, so a proven optimum here must equal CP-SAT's; tests/bench checks that it does.

Variables, per candidate node n and order item:
  use[n]        1 if n sends a shipment
  ship[n,l]     units of splittable line l sent from n          (0..usable units)
  take[n,b]     1 if n sends ship-together bundle b in full      (only where n holds all of b)
  unfilled[l], skip[b]   units / bundles left unfilled           (only with partial fulfilment)
The objective is the default formula in currency units; no tie-breaking term, so among equal-cost
plans the backend picks any.
"""

from __future__ import annotations

import math
import time

import numpy as np
from ortools.linear_solver import pywraplp

from allocation_engine.engine import Inventory, Network, Order, Plan, RuleSet, Status
from allocation_engine.engine.assignment import build_plan, empty, infeasible_plan
from allocation_engine.engine.problem import SourcingProblem

BACKENDS = ("SCIP", "CBC", "HIGHS")


def available_backends() -> tuple[str, ...]:
    """The backends the installed ortools wheel was built with."""
    return tuple(b for b in BACKENDS if pywraplp.Solver.CreateSolver(b) is not None)


def allocate_mip(
    order: Order,
    network: Network,
    inventory: Inventory,
    rules: RuleSet,
    *,
    backend: str,
    time_limit: float,
) -> Plan:
    """Plans `order` with the MIP on every fenced candidate. A plan the backend could not prove
    optimal within `time_limit` seconds comes back FEASIBLE (or raises TimeoutError when the
    backend found no plan at all)."""
    problem = SourcingProblem.build(order, network, inventory, rules)
    method = f"mip-{backend.lower()}"
    deadline = time.perf_counter() + time_limit
    solver = pywraplp.Solver.CreateSolver(backend)
    if solver is None:
        raise ValueError(f"OR-Tools has no {backend} backend in this build")
    if backend == "HIGHS":
        # HiGHS prints its banner on every solve otherwise (through progress bars, into logs).
        solver.SetSolverSpecificParametersAsString("output_flag=false")
    usable, covers, q = problem.usable, problem.covers, problem.quantity
    rows = range(len(problem.nodes))
    objective = solver.Objective()

    use = [solver.BoolVar(f"use[{n}]") for n in rows]
    for n in rows:
        objective.SetCoefficient(use[n], float(problem.shipment_fixed[n]))
    ship: dict[tuple[int, int], pywraplp.Variable] = {}
    take: dict[tuple[int, int], pywraplp.Variable] = {}

    # Splittable lines: units from all nodes (plus unfilled units) add up to the quantity;
    # a node ships only within its stock and only if it is used.
    for line in problem.split_lines:
        fill = solver.Constraint(float(q[line]), float(q[line]))
        for n in np.flatnonzero(usable[:, line]).tolist():
            cap = float(usable[n, line])
            var = solver.IntVar(0.0, cap, f"ship[{n},{line}]")
            solver.Add(var <= cap * use[n])
            objective.SetCoefficient(var, float(problem.unit_cost[n]))
            fill.SetCoefficient(var, 1.0)
            ship[n, line] = var
        if problem.partial:
            unfilled = solver.IntVar(0.0, float(q[line]), f"unfilled[{line}]")
            objective.SetCoefficient(unfilled, problem.penalty)
            fill.SetCoefficient(unfilled, 1.0)

    # Ship-together bundles: exactly one node that holds all of it sends it (or it is skipped).
    for b, lines in enumerate(problem.bundles):
        size = float(q[list(lines)].sum())
        once = solver.Constraint(1.0, 1.0)
        for n in np.flatnonzero(covers[:, b]).tolist():
            var = solver.BoolVar(f"take[{n},{b}]")
            solver.Add(var <= use[n])
            objective.SetCoefficient(var, float(problem.unit_cost[n]) * size)
            once.SetCoefficient(var, 1.0)
            take[n, b] = var
        if problem.partial:
            skip = solver.BoolVar(f"skip[{b}]")
            objective.SetCoefficient(skip, problem.penalty * size)
            once.SetCoefficient(skip, 1.0)

    # Shipment limit (1 under ship-complete).
    limit = problem.shipment_limit
    if limit is not None and limit < len(use):
        solver.Add(solver.Sum(use) <= limit)

    objective.SetMinimization()
    solver.SetTimeLimit(max(1, int((deadline - time.perf_counter()) * 1000)))
    # OPTIMAL must mean optimal: the backends' default relative gap (SCIP's is 1e-4) would let a
    # plan 0.01 % above the optimum pass as proven (seen on F1 before this was set).
    exact = pywraplp.MPSolverParameters()
    exact.SetDoubleParam(pywraplp.MPSolverParameters.RELATIVE_MIP_GAP, 1e-9)
    status = solver.Solve(exact)

    if status == pywraplp.Solver.INFEASIBLE and time.perf_counter() < deadline:
        return infeasible_plan(problem, empty(problem), method=method)
    # CBC stopped by its time limit before any plan can say INFEASIBLE: that proves nothing.
    if status not in (pywraplp.Solver.OPTIMAL, pywraplp.Solver.FEASIBLE):
        raise TimeoutError(f"{backend} found no plan for order {order.id} within {time_limit} s")
    units = empty(problem)
    for (row, line), var in ship.items():
        units[row, line] = round(var.solution_value())
    for (row, b), var in take.items():
        if var.solution_value() > 0.5:
            cols = list(problem.bundles[b])
            units[row, cols] = q[cols]
    value, bound = objective.Value(), objective.BestBound()
    optimal = status == pywraplp.Solver.OPTIMAL
    gap = 0.0 if optimal or value <= 0 else max(0.0, (value - bound) / value)
    return build_plan(
        problem,
        units,
        method=method,
        status=Status.OPTIMAL if optimal else Status.FEASIBLE,
        gap=gap if math.isfinite(gap) else math.nan,
        candidates=len(problem.nodes),
        solver_candidates=len(problem.nodes),
    )
