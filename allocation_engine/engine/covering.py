"""Which sets of candidates can ship the whole order: for the fewest-splits peer and for a
lower bound on the shipments any complete plan needs (a cut that tightens the solver's LP)."""

from __future__ import annotations

from math import comb

import numpy as np
import numpy.typing as npt

from allocation_engine.engine.problem import SourcingProblem

IndexSets = npt.NDArray[np.intp]

MAX_SETS = 20_000  # node sets checked per size when bounding the fewest shipments


def index_sets(n: int, size: int) -> IndexSets:
    """All `size`-subsets of range(n) (size 1 to 3), one per row, in lexicographic order."""
    if size == 1:
        return np.arange(n, dtype=np.intp).reshape(-1, 1)
    first, second = np.triu_indices(n, 1)
    pairs = np.column_stack([first, second]).astype(np.intp)
    if size == 2:
        return pairs
    # extend each pair (i, j) by every k > j
    extend = n - 1 - pairs[:, 1]
    row = np.repeat(np.arange(len(pairs)), extend)
    step = np.arange(len(row)) - np.repeat(np.cumsum(extend) - extend, extend)
    return np.column_stack([pairs[row], pairs[row, 1] + 1 + step]).astype(np.intp)


def ships_all(problem: SourcingProblem, sets: IndexSets) -> npt.NDArray[np.bool_]:
    """Per row of candidate indices: whether those nodes together hold the whole order.

    Bundle columns of `usable` hold 0 or the full quantity, so a column sum that reaches the
    quantity means one node of the set holds the bundle whole.
    """
    held = problem.usable[sets].sum(axis=1)
    return np.asarray((held >= problem.quantity).all(axis=1))


def complete_sets(problem: SourcingProblem, size: int) -> IndexSets | None:
    """Every set of `size` candidates that holds the whole order (rows in lexicographic order),
    or None when there are too many sets to try."""
    n = len(problem.nodes)
    if comb(n, size) <= MAX_SETS:
        sets = index_sets(n, size)
        return sets[ships_all(problem, sets)]
    if size == 3 and comb(n, 2) <= MAX_SETS:
        return _complete_triples(problem)
    return None


def _complete_triples(problem: SourcingProblem) -> IndexSets:
    """Complete 3-sets without trying them all: each pair is extended by the nodes that hold
    what the pair lacks, a subset test on bit sets ("lacks at least u units of line l" against
    "holds at least u units of line l", for every u up to the largest quantity)."""
    usable = problem.usable
    pairs = index_sets(len(problem.nodes), 2)
    lack = np.maximum(problem.quantity - usable[pairs].sum(axis=1), 0)
    levels = range(1, int(problem.quantity.max()) + 1)
    need = _words(np.hstack([lack >= u for u in levels]))
    have = _words(np.hstack([usable >= u for u in levels]))
    fits = ((have[None, :, :] & need[:, None, :]) == need[:, None, :]).all(axis=2)
    fits &= np.arange(len(problem.nodes))[None, :] > pairs[:, 1:2]  # each set once: i < j < t
    pair, third = np.nonzero(fits)  # row-major: the triples come out in lexicographic order
    return np.column_stack([pairs[pair], third]).astype(np.intp)


def _words(bits: npt.NDArray[np.bool_]) -> npt.NDArray[np.uint64]:
    """Rows of bits packed into 64-bit words, so a subset test is one AND per word."""
    packed = np.packbits(bits, axis=1)
    padded = np.zeros((len(bits), -(-packed.shape[1] // 8) * 8), dtype=np.uint8)
    padded[:, : packed.shape[1]] = packed
    return padded.view(np.uint64)


def fewest_shipments(problem: SourcingProblem, up_to: int = 3) -> tuple[int, IndexSets | None]:
    """The size k of the smallest node set that holds everything (a lower bound on the shipments
    of any complete plan), with all complete k-sets; the sets are None when k is only a bound
    because larger sizes were too many to try (or k > up_to)."""
    n = len(problem.nodes)
    for size in range(1, min(up_to, n) + 1):
        sets = complete_sets(problem, size)
        if sets is None:
            return size, None
        if len(sets):
            return size, sets
    return min(up_to, n) + 1, None


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
