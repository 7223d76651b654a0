"""An assignment of units to candidates, its cost under the default formula, and the plan it makes.

Every method (optimiser, reference model, greedy peers) produces an assignment: a (candidates x
lines) matrix of units. Costing and plan building live here once, so all methods are scored alike.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import numpy.typing as npt

from allocation_engine.engine.plan import Explanations, Plan, Shipment, ShipmentLine, Status
from allocation_engine.engine.problem import Reason, SourcingProblem
from allocation_engine.errors import Shortfall

Units = npt.NDArray[np.int64]


def empty(problem: SourcingProblem) -> Units:
    return np.zeros((len(problem.nodes), len(problem.quantity)), dtype=np.int64)


def shipment_costs(problem: SourcingProblem, units: Units) -> npt.NDArray[np.float64]:
    """Cost of each candidate's shipment (0 where it ships nothing)."""
    shipped = units.sum(axis=1)
    costs: npt.NDArray[np.float64] = np.where(
        shipped > 0, problem.shipment_fixed + problem.unit_cost * shipped, 0.0
    )
    return costs


def unfilled_units(problem: SourcingProblem, units: Units) -> Units:
    left: Units = problem.quantity - units.sum(axis=0)
    return left


def total_cost(problem: SourcingProblem, units: Units) -> float:
    """The default objective: shipments, units, distance, and the penalty on unfilled units."""
    unfilled = int(unfilled_units(problem, units).sum())
    return float(shipment_costs(problem, units).sum()) + problem.penalty * unfilled


def build_plan(
    problem: SourcingProblem,
    units: Units,
    *,
    method: str,
    status: Status,
    gap: float,
    bound: npt.NDArray[np.float64] | None = None,
    dominator: npt.NDArray[np.int64] | None = None,
    candidates: int = 0,
    solver_candidates: int = 0,
) -> Plan:
    """Turns an assignment into a plan with shipments in node-id order and lazy explanations."""
    costs = shipment_costs(problem, units)
    skus = problem.order.skus
    shipments: dict[int, Shipment] = {}
    for row in np.flatnonzero(units.sum(axis=1) > 0):
        shipments[int(problem.nodes[row])] = Shipment(
            node_id=problem.network.nodes[problem.nodes[row]].id,
            lines=tuple(
                ShipmentLine(skus[j], int(units[row, j])) for j in np.flatnonzero(units[row])
            ),
            distance_km=float(problem.distance_km[row]),
            cost=float(costs[row]),
        )
    left = unfilled_units(problem, units)
    reason = problem.reason.copy()
    reason[problem.nodes] = Reason.NOT_CHOSEN
    reason[list(shipments)] = Reason.CHOSEN
    n = len(problem.network)
    total = total_cost(problem, units)
    return Plan(
        order_id=problem.order.id,
        method=method,
        status=status,
        shipments=tuple(shipments.values()),
        total_cost=total,
        optimality_gap=gap,
        unfilled=tuple(ShipmentLine(skus[j], int(left[j])) for j in np.flatnonzero(left)),
        explanations=Explanations(
            problem=problem,
            reason=reason,
            bound=np.full(n, np.nan) if bound is None else bound,
            dominator=np.full(n, -1, dtype=np.int64) if dominator is None else dominator,
            plan_cost=total,
            shipped=shipments,
        ),
        rules_name=problem.rules.name,
        rules_version=problem.rules.version,
        candidates=candidates,
        solver_candidates=solver_candidates,
    )


def infeasible_plan(problem: SourcingProblem, best: Units, *, method: str) -> Plan:
    """No plan fills the order: report, per short sku, the most units the fences let us ship."""
    filled = best.sum(axis=0)
    shortfalls = tuple(
        Shortfall(sku, int(q), int(f))
        for sku, q, f in zip(problem.order.skus, problem.quantity, filled, strict=True)
        if f < q
    )
    plan = build_plan(
        problem,
        empty(problem),
        method=method,
        status=Status.INFEASIBLE,
        gap=0.0,
        candidates=len(problem.nodes),
    )
    return replace(plan, total_cost=0.0, unfilled=(), shortfalls=shortfalls)
