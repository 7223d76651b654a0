"""An assignment of units to candidates, its cost under the default formula, and the plan it makes.

Every method (optimiser, reference model, greedy peers) produces an assignment: a (candidates x
lines) matrix of units. Costing and plan building live here once, so all methods are scored alike.
`total_cost` is what the methods minimise (with the click & collect bias, see problem.py); plans
report `plan_cost`, the default formula's true cost.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np
import numpy.typing as npt

from allocation_engine.engine.plan import Explanations, Plan, Shipment, ShipmentLine, Status
from allocation_engine.engine.problem import Reason, SourcingProblem
from allocation_engine.errors import Shortfall

Units = npt.NDArray[np.int64]


def empty(problem: SourcingProblem) -> Units:
    return np.zeros((len(problem.nodes), len(problem.quantity)), dtype=np.int64)


def shipment_costs(
    problem: SourcingProblem, units: Units, *, real: bool = False
) -> npt.NDArray[np.float64]:
    """Cost of each candidate's shipment (0 where it ships nothing); `real`: without the bias."""
    shipped = units.sum(axis=1)
    unit = problem.real_unit_cost if real else problem.unit_cost
    costs: npt.NDArray[np.float64] = np.where(
        shipped > 0, problem.shipment_fixed + unit * shipped, 0.0
    )
    return costs


def unfilled_units(problem: SourcingProblem, units: Units) -> Units:
    left: Units = problem.quantity - units.sum(axis=0)
    return left


def total_cost(problem: SourcingProblem, units: Units) -> float:
    """The objective the methods minimise: shipments, units, distance, the penalty on unfilled
    units, and the click & collect bias on every unit not taken from the pickup store."""
    unfilled = int(unfilled_units(problem, units).sum())
    return float(shipment_costs(problem, units).sum()) + problem.penalty * unfilled


def plan_cost(problem: SourcingProblem, units: Units) -> float:
    """The default formula's cost of an assignment, as a plan reports it (no bias)."""
    unfilled = int(unfilled_units(problem, units).sum())
    shipped = float(shipment_costs(problem, units, real=True).sum())
    return shipped + problem.rules.unfilled_unit_penalty * unfilled


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
    dating: Callable[[int, Shipment], Shipment] | None = None,
) -> Plan:
    """Turns an assignment into a plan with shipments in node-id order and lazy explanations.
    `dating` gives a row's shipment its day and lots (a dated problem's rows, see dated.py)."""
    costs = shipment_costs(problem, units, real=True)
    skus = problem.order.skus
    store = problem.network.nodes[problem.pickup].id if problem.pickup >= 0 else ""
    shipments: dict[int, Shipment] = {}
    for row in np.flatnonzero(units.sum(axis=1) > 0):
        node = int(problem.nodes[row])
        shipment = Shipment(
            node_id=problem.network.nodes[node].id,
            lines=tuple(
                ShipmentLine(skus[j], int(units[row, j])) for j in np.flatnonzero(units[row])
            ),
            distance_km=float(problem.distance_km[row]),
            cost=float(costs[row]),
            transfer_to=store if node != problem.pickup else "",
        )
        shipments[node] = shipment if dating is None else dating(int(row), shipment)
    left = unfilled_units(problem, units)
    reason = problem.reason.copy()
    reason[problem.nodes] = Reason.NOT_CHOSEN
    reason[list(shipments)] = Reason.CHOSEN
    n = len(problem.network)
    total = plan_cost(problem, units)
    if problem.transfer_bias:  # the bounds are in biased units: they would not read as costs
        bound = None
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


def short_alone(problem: SourcingProblem) -> list[int]:
    """The lines whose sku alone the fences cannot fill (see `SourcingProblem.alone`)."""
    return [int(j) for j in np.flatnonzero(problem.alone < problem.quantity)]


def infeasible_plan(problem: SourcingProblem, fullest: Units | None, *, method: str) -> Plan:
    """No plan fills the order: one shortfall per short sku, each with the most units the
    fences allow for that sku alone (`SourcingProblem.alone`).

    The short skus are those the fences cannot fill even alone; when there is none (the order
    fails only as a whole: a shipment limit, a ship-together group), those that `fullest`, one
    fullest plan of the whole order, leaves short; their `available` is then their quantity.
    """
    short = short_alone(problem)
    if not short and fullest is not None:
        short = [int(j) for j in np.flatnonzero(fullest.sum(axis=0) < problem.quantity)]
    skus, alone = problem.order.skus, problem.alone
    shortfalls = tuple(Shortfall(skus[j], int(problem.quantity[j]), int(alone[j])) for j in short)
    plan = build_plan(
        problem,
        empty(problem),
        method=method,
        status=Status.INFEASIBLE,
        gap=0.0,
        candidates=len(problem.nodes),
    )
    return replace(plan, total_cost=0.0, unfilled=(), shortfalls=shortfalls)


def units_of(problem: SourcingProblem, plan: Plan) -> Units:
    """A plan's shipments as an assignment over the problem's candidates (rows), e.g. to
    re-read the fullest plan a shortfall search returns."""
    units = empty(problem)
    row_of = {int(node): row for row, node in enumerate(problem.nodes)}
    column_of = {sku: j for j, sku in enumerate(problem.order.skus)}
    for shipment in plan.shipments:
        row = row_of[problem.network.index[shipment.node_id]]
        for line in shipment.lines:
            units[row, column_of[line.sku]] = line.quantity
    return units
