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


def priced_cover(problem: SourcingProblem, rank: npt.NDArray[np.float64]) -> Units | None:
    """A complete plan on the nodes `rank` puts first (the price bound's per-node bound on
    plans using it, see prices.py): the shortest prefix of them that holds the whole order,
    each line filled from the cheapest of them first; then each node, worst ranked first, is
    left out when the others ship the order for less without it. None when no prefix within
    the shipment limit holds the order, or when partial plans are allowed (cheapest_cover
    weighs those)."""
    if problem.partial or len(problem.nodes) == 0:
        return None
    usable = problem.usable
    order = np.lexsort((np.arange(len(rank)), rank))
    held = np.cumsum(usable[order], axis=0) >= problem.quantity
    complete = held.all(axis=1)
    if not complete.any():
        return None
    size = int(complete.argmax()) + 1
    if problem.shipment_limit is not None and size > problem.shipment_limit:
        return None
    rows = list(order[:size])
    best = cheapest_on(problem, rows)
    cost = total_cost(problem, best)
    for row in reversed(order[:size]):
        if len(rows) == 1:
            break
        fewer = [r for r in rows if r != row]
        units = cheapest_on(problem, fewer)
        if (units.sum(axis=0) == problem.quantity).all():
            fewer_cost = total_cost(problem, units)
            if fewer_cost < cost:
                rows, best, cost = fewer, units, fewer_cost
    return best


def cheapest_on(problem: SourcingProblem, rows: list[int]) -> Units:
    """Each line from `rows` only, cheapest unit cost first (then lowest id)."""
    chosen = np.array(rows, dtype=np.intp)
    by_cost = chosen[np.lexsort((chosen, problem.unit_cost[chosen]))]
    return _take(problem, problem.usable, by_cost)


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
