"""Greedy plans: the optimiser's first upper bound and hint, and the two industry peers.

- `cheapest_cover`: cost-aware set cover (best cost per unit covered, or one node for everything),
  used to prune candidates and to warm-start the solver (a greedy plan is both fallback and hint).
- `fewest_splits_closest`: Shopify's default routing: as few locations as possible, then closest.
- `fewest_splits_by_average_distance`: Salesforce Order Management's "fewest splits": single nodes,
  then pairs, then triples among the nearest stocked nodes, ranked by average distance.

All return an assignment (candidates x lines units) that respects every fence, or None.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from allocation_engine.engine.assignment import Units, empty, total_cost
from allocation_engine.engine.covering import index_sets, ships_all
from allocation_engine.engine.problem import SourcingProblem


def _take(problem: SourcingProblem, usable: Units, order: npt.NDArray[np.intp]) -> Units:
    """Fills each line from the nodes in `order`, first node first, bundles whole."""
    units = empty(problem)
    left = problem.quantity.copy()
    for row in order:
        got = np.minimum(usable[row], left)
        units[row] = got
        left -= got
    return units


def _finish(problem: SourcingProblem, units: Units) -> Units | None:
    """Accepts a full assignment; a partial one only when partial fulfilment is allowed."""
    if problem.partial or (units.sum(axis=0) == problem.quantity).all():
        return units
    return None


def _single_node(
    problem: SourcingProblem, usable: Units, key: npt.NDArray[np.float64]
) -> int | None:
    """The candidate with the lowest `key` (then lowest id) that holds the whole order."""
    whole = np.flatnonzero((usable >= problem.quantity).all(axis=1))
    if len(whole) == 0:
        return None
    return int(whole[np.argmin(key[whole])])  # argmin keeps the first (lowest id) on ties


def cheapest_cover(problem: SourcingProblem) -> Units | None:
    """The cheaper of: the best single node, and greedy cover by cost per unit newly covered
    (up to the shipment limit, or as many nodes as it takes: a line of 919 units may need dozens
    of stores)."""
    usable = problem.usable
    limit = problem.shipment_limit or len(problem.nodes)
    plans: list[Units] = []
    if problem.partial:
        plans.append(empty(problem))  # ship nothing: every unit pays the penalty
    single = _single_node(
        problem, usable, problem.shipment_fixed + problem.unit_cost * problem.units
    )
    if single is not None:
        plans.append(_take(problem, usable, np.array([single])))
    units = empty(problem)
    left = problem.quantity.copy()
    free = np.ones(len(problem.nodes), dtype=bool)
    for _ in range(limit):
        gain = np.minimum(usable, left).sum(axis=1) * free
        if not gain.any():
            break
        ratio = np.where(
            gain > 0,
            (problem.shipment_fixed + problem.unit_cost * gain) / np.maximum(gain, 1),
            np.inf,
        )
        if problem.partial and ratio.min() >= problem.penalty:
            break
        row = int(np.argmin(ratio))
        units[row] = np.minimum(usable[row], left)
        left -= units[row]
        free[row] = False
    finished = _finish(problem, units)
    if finished is not None:
        plans.append(finished)
    if not plans:
        return None
    return min(plans, key=lambda u: total_cost(problem, u))


def fewest_splits_closest(problem: SourcingProblem) -> Units | None:
    """Shopify-style: one node if any can ship it all (the closest); else the node covering most
    of what is left (closest on ties), repeated up to the shipment limit (or until covered)."""
    usable = problem.usable
    single = _single_node(problem, usable, problem.distance_km)
    if single is not None:
        return _take(problem, usable, np.array([single]))
    limit = problem.shipment_limit or len(problem.nodes)
    chosen: list[int] = []
    left = problem.quantity.copy()
    by_distance = np.lexsort((np.arange(len(problem.nodes)), problem.distance_km))
    for _ in range(limit):
        gain = np.minimum(usable[by_distance], left).sum(axis=1)
        gain[np.isin(by_distance, chosen)] = 0
        if not gain.any():
            break
        row = int(by_distance[np.argmax(gain)])  # first maximum = closest
        chosen.append(row)
        left -= np.minimum(usable[row], left)
    return _finish(problem, _take(problem, usable, np.array(chosen, dtype=np.intp)))


NEAREST_NODES = 50


def fewest_splits_by_average_distance(problem: SourcingProblem) -> Units | None:
    """Salesforce-style: among the 50 nearest candidates, the single node, else the pair, else the
    triple that can ship everything with the lowest average distance; closest-first fallback."""
    usable = problem.usable
    limit = problem.shipment_limit or 3
    nearest = np.lexsort((np.arange(len(problem.nodes)), problem.distance_km))[:NEAREST_NODES]
    for size in range(1, min(3, limit, len(nearest)) + 1):
        combos = nearest[index_sets(len(nearest), size)]
        complete = ships_all(problem, combos)
        if complete.any():
            average = problem.distance_km[combos].mean(axis=1)
            feasible = np.flatnonzero(complete)
            rows = combos[feasible[np.argmin(average[feasible])]]
            by_distance = rows[np.lexsort((rows, problem.distance_km[rows]))]
            return _take(problem, usable, by_distance)
    return fewest_splits_closest(problem)
