"""The yardsticks of the F1 family: the deterministic item-facility LP over expected demand, and
the same LP over one sequence's realised demand (the offline bound for that sequence).

Jasin & Sinha's LP, as the later papers solve it: T periods of expected arrivals, each order type q
from city j arriving T x lambda[q, j] times; fractions u[q, k, i, j] of item i sent from centre k
(or the dummy, unconstrained), y[q, k, j] >= u[q, k, i, j] the fraction of packages centre k sends,
each centre's use of an item within its starting stock. No sequence can do better in expectation,
so total cost / LP is the policy's ratio to a lower bound. Over a sequence's realised counts
instead of T x lambda, the LP relaxes the hindsight problem of that very sequence: no policy,
not even one that knew every order in advance, pays less on it.

Costs come from the same network nodes and rule set the engine plans with (the dummy row is each
city's UNFILLED node), so the bound and the sequences are priced alike.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from ortools.linear_solver import pywraplp

from allocation_engine.bench.f1 import Instance
from allocation_engine.engine import RuleSet
from allocation_engine.engine.geo import haversine_km

LP_BACKEND = "GLOP"


def cost_matrices(
    instance: Instance, rules: RuleSet
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """(fixed, unit) cost per package and per unit, rows = centres then the dummy, cols = cities:
    the engine's formula applied to the instance's nodes."""
    network = instance.network
    cities = instance.cities
    lat = np.array([c.latitude for c in cities])
    lon = np.array([c.longitude for c in cities])
    rows = [*instance.centre_index().tolist(), -1]
    fixed = np.zeros((len(rows), len(cities)))
    unit = np.zeros((len(rows), len(cities)))
    dummies = instance.dummy_index()
    for r, index in enumerate(rows):
        for j in range(len(cities)):
            node = network.nodes[index if index >= 0 else int(dummies[j])]
            d = float(
                haversine_km(
                    np.array([node.latitude]),
                    np.array([node.longitude]),
                    float(lat[j]),
                    float(lon[j]),
                )[0]
            )
            fixed[r, j] = rules.shipment_cost + node.shipment_surcharge
            fixed[r, j] += rules.shipment_distance_cost * d
            unit[r, j] = rules.unit_cost + node.unit_handling_cost + rules.unit_distance_cost * d
    return fixed, unit


def lp_bound(
    instance: Instance,
    demand: npt.NDArray[np.float64] | None = None,
    rules: RuleSet | None = None,
    *,
    backend: str = LP_BACKEND,
    time_limit: float | None = None,
) -> float:
    """The optimum of the LP for `instance` over `demand` (types x cities, arrivals of each
    order type from each city): the expected demand T x lambda by default (the papers'
    yardstick), or a sequence's realised demand for the offline bound of that sequence."""
    rules = rules or instance.rules()
    demand = instance.expected_demand() if demand is None else demand
    fixed, unit = cost_matrices(instance, rules)
    stock = instance.stock
    n_centres = len(instance.centres)
    dummy = n_centres
    solver = pywraplp.Solver.CreateSolver(backend)
    if solver is None:
        raise ValueError(f"OR-Tools has no {backend} backend in this build")
    solver.SuppressOutput()
    if backend == "GLOP":
        # Measured on large-0.25 (280k columns): 64 s with the dual simplex, 154 s with the primal.
        solver.SetSolverSpecificParametersAsString("use_dual_simplex: true")
    objective = solver.Objective()
    inf = solver.infinity()
    # Each centre's use of each item stays within its starting stock.
    within_stock = {
        (k, i): solver.Constraint(-inf, float(stock[k, i]), f"stock[{k},{i}]")
        for k, i in zip(*np.nonzero(stock > 0), strict=True)
    }
    holders = [[*np.flatnonzero(stock[:, i] > 0).tolist(), dummy] for i in range(stock.shape[1])]

    for q, items in enumerate(instance.types):
        if not items:
            continue
        for j in np.flatnonzero(demand[q] > 0).tolist():
            times = float(demand[q, j])
            senders = sorted({k for i in items for k in holders[i]})
            package = {k: solver.NumVar(0.0, 1.0, f"y[{q},{k},{j}]") for k in senders}
            for k, y in package.items():
                objective.SetCoefficient(y, times * float(fixed[k, j]))
            for i in items:
                # Every item of the order is sent from somewhere (possibly the dummy) ...
                whole = solver.Constraint(1.0, 1.0)
                for k in holders[i]:
                    u = solver.NumVar(0.0, 1.0, f"u[{q},{k},{i},{j}]")
                    whole.SetCoefficient(u, 1.0)
                    objective.SetCoefficient(u, times * float(unit[k, j]))
                    # ... and a centre sending any of it sends a package.
                    opens = solver.Constraint(0.0, inf)
                    opens.SetCoefficient(package[k], 1.0)
                    opens.SetCoefficient(u, -1.0)
                    if k != dummy:
                        within_stock[k, i].SetCoefficient(u, times)
    objective.SetMinimization()
    if time_limit is not None:
        solver.SetTimeLimit(int(time_limit * 1000))
    status = solver.Solve()
    if status == pywraplp.Solver.NOT_SOLVED or (
        time_limit is not None and status != pywraplp.Solver.OPTIMAL
    ):
        raise TimeoutError(f"the F1 LP for {instance.setting.name} was not solved in time")
    if status != pywraplp.Solver.OPTIMAL:
        raise RuntimeError(f"the F1 LP for {instance.setting.name} ended with status {status}")
    return float(objective.Value())
