"""Which sets of candidates can ship the whole order: for the fewest-splits peer and for a
lower bound on the shipments any complete plan needs (a cut that tightens the solver's LP)."""

from __future__ import annotations

from functools import lru_cache
from itertools import combinations
from math import comb

import numpy as np
import numpy.typing as npt

from .problem import SourcingProblem

IndexSets = npt.NDArray[np.intp]

MAX_SETS = 20_000  # node sets checked per size when bounding the fewest shipments


@lru_cache(maxsize=32)
def index_sets(n: int, size: int) -> IndexSets:
    """All `size`-subsets of range(n), one per row, in lexicographic order."""
    return np.array(list(combinations(range(n), size)), dtype=np.intp).reshape(-1, size)


def ships_all(problem: SourcingProblem, sets: IndexSets) -> npt.NDArray[np.bool_]:
    """Per row of candidate indices: whether those nodes together hold the whole order.

    Bundle columns of `usable` hold 0 or the full quantity, so a column sum that reaches the
    quantity means one node of the set holds the bundle whole.
    """
    held = problem.usable[sets].sum(axis=1)
    return np.asarray((held >= problem.quantity).all(axis=1))


def fewest_shipments(problem: SourcingProblem, up_to: int = 3) -> int:
    """A lower bound on the shipments of any complete plan: the size of the smallest node set
    that holds everything, found by trying sizes 1..up_to while the sets stay few."""
    n = len(problem.nodes)
    for size in range(1, min(up_to, n) + 1):
        if comb(n, size) > MAX_SETS:
            return size
        if ships_all(problem, index_sets(n, size)).any():
            return size
    return min(up_to, n) + 1


def cheapest_plans(problem: SourcingProblem, sets: IndexSets) -> npt.NDArray[np.float64]:
    """Per row of candidate indices: the cost of the cheapest complete plan shipping from those
    nodes only (inf where they cannot ship everything).

    With the node set fixed the cost separates by line, and filling each line from the set's
    cheapest node first is optimal; nodes left with nothing to ship pay nothing.
    """
    by_cost = np.take_along_axis(sets, np.argsort(problem.unit_cost[sets], axis=1), axis=1)
    left = np.broadcast_to(problem.quantity, (len(sets), len(problem.quantity))).copy()
    cost = np.zeros(len(sets))
    for column in by_cost.T:
        take = np.minimum(problem.usable[column], left)
        units = take.sum(axis=1)
        cost += np.where(units > 0, problem.shipment_fixed[column], 0.0)
        cost += units * problem.unit_cost[column]
        left -= take
    return np.where(left.any(axis=1), np.inf, cost)
