"""Which sets of candidates can ship the whole order: for the fewest-splits peer and for a
lower bound on the shipments any complete plan needs (a cut that tightens the solver's LP)."""

from __future__ import annotations

from math import comb

import numpy as np
import numpy.typing as npt

from allocation_engine.engine.budget import Budget
from allocation_engine.engine.problem import SourcingProblem

IndexSets = npt.NDArray[np.intp]

MAX_SETS = 20_000  # node sets checked per size when bounding the fewest shipments
MAX_WORDS = 2_000_000  # 64-bit words one block of the triple test may hold (16 MB)
MAX_TRIPLE_WORK = 100_000_000  # words the whole triple test may touch before it gives up


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


def complete_sets(
    problem: SourcingProblem, size: int, budget: Budget | None = None
) -> IndexSets | None:
    """Every set of `size` candidates that holds the whole order (rows in lexicographic order),
    or None when there are too many sets to try (or the budget ran out while trying)."""
    n = len(problem.nodes)
    if comb(n, size) <= MAX_SETS:
        sets = index_sets(n, size)
        return sets[ships_all(problem, sets)]
    if size == 3 and comb(n, 2) <= MAX_SETS:
        return _complete_triples(problem, budget)
    return None


def _complete_triples(problem: SourcingProblem, budget: Budget | None = None) -> IndexSets | None:
    """Complete 3-sets without trying them all: each pair is extended by the nodes that hold
    what the pair lacks, a subset test on bit sets.

    Per line l, let H be the distinct positive stock levels of the candidates. A node holds at
    least the x units a pair lacks iff it holds at least the smallest level of H that is >= x,
    so the test needs one bit per level, not one per unit: "holds >= h" for h in H against
    "lacks more than the level below h" (plus one bit, never held, for lacking more than any
    node holds). Exact, and the bit sets stay small however large the quantities. Pairs are
    tested in blocks (memory bounded by MAX_WORDS), the budget is asked between blocks; None
    when it runs out or the whole test would touch more than MAX_TRIPLE_WORK words.

    Pairs that lack more of some line, or more units in all, than any node holds are dropped
    first. When the order has
    fewer lines than the bit sets have words (bulk lines held at many levels), the units are
    compared directly instead: one word per line; when it asks for few units in all, one bit per
    unit replaces the levels (see `_unit_bits`)."""
    usable = problem.usable
    n = len(problem.nodes)
    pairs = index_sets(n, 2)
    lack = np.maximum(problem.quantity - usable[pairs].sum(axis=1), 0)
    coverable = (lack <= usable.max(axis=0)).all(axis=1)
    coverable &= lack.sum(axis=1) <= usable.sum(axis=1).max()
    pairs, lack = pairs[coverable], lack[coverable]
    levels_held = sum(len(np.unique(usable[:, line])) for line in range(usable.shape[1]))
    need: npt.NDArray[np.int64] | npt.NDArray[np.uint64]
    have: npt.NDArray[np.int64] | npt.NDArray[np.uint64]
    if usable.shape[1] <= -(-levels_held // 64):
        need, have = lack, usable
    elif problem.units <= 2 * levels_held:
        need, have = _unit_bits(problem.quantity, usable, lack)
    else:
        need, have = _level_bits(usable, lack)
    words = have.shape[1]
    if len(pairs) * n * words > MAX_TRIPLE_WORK:
        return None
    block = max(1, MAX_WORDS // max(1, n * words))
    later = np.arange(n)[None, :]
    found: list[IndexSets] = []
    for start in range(0, len(pairs), block):
        if budget is not None and budget.expired():
            return None
        part, wanted = pairs[start : start + block], need[start : start + block]
        fits = later > part[:, 1:2]  # each set once: i < j < t
        for word in range(words):  # word by word: numpy is slow over a short last axis
            held, lacked = have[None, :, word], wanted[:, word, None]
            fits &= (held & lacked) == lacked if have.dtype == np.uint64 else held >= lacked
        pair, third = np.nonzero(fits)  # row-major: triples come out in lexicographic order
        found.append(np.column_stack([part[pair], third]).astype(np.intp))
    return np.concatenate(found) if found else np.empty((0, 3), dtype=np.intp)


def _unit_bits(
    quantity: npt.NDArray[np.int64], usable: npt.NDArray[np.int64], lack: npt.NDArray[np.int64]
) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.uint64]]:
    """The bit sets with one bit per unit ordered ("holds / lacks at least h" for h = 1 to q_l):
    no fewer bits than the levels when lines ask for a unit or two, and built in one step.
    Lacking more than any node holds needs no bit of its own here: nobody holds that bit."""
    line = np.repeat(np.arange(len(quantity)), quantity)
    level = np.arange(len(line)) - np.repeat(np.cumsum(quantity) - quantity, quantity) + 1
    return _words(lack[:, line] >= level), _words(usable[:, line] >= level)


def _level_bits(
    usable: npt.NDArray[np.int64], lack: npt.NDArray[np.int64]
) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.uint64]]:
    """What each pair lacks and what each node holds, as the bit sets described above."""
    n = len(usable)
    need_bits, have_bits = [], []
    for line in range(usable.shape[1]):
        levels = np.unique(usable[:, line][usable[:, line] > 0])
        below = np.concatenate([[0], levels])  # the level below each level (and below "more")
        need_bits.append(lack[:, line][:, None] > below[None, :])
        held = usable[:, line][:, None] >= levels[None, :]
        have_bits.append(np.hstack([held, np.zeros((n, 1), dtype=bool)]))
    return _words(np.hstack(need_bits)), _words(np.hstack(have_bits))


def _words(bits: npt.NDArray[np.bool_]) -> npt.NDArray[np.uint64]:
    """Rows of bits packed into 64-bit words, so a subset test is one AND per word."""
    packed = np.packbits(bits, axis=1)
    padded = np.zeros((len(bits), -(-packed.shape[1] // 8) * 8), dtype=np.uint8)
    padded[:, : packed.shape[1]] = packed
    return padded.view(np.uint64)


def fewest_shipments(
    problem: SourcingProblem, up_to: int = 3, budget: Budget | None = None
) -> tuple[int, IndexSets | None]:
    """The size k of the smallest node set that holds everything (a lower bound on the shipments
    of any complete plan), with all complete k-sets; the sets are None when k is only a bound
    because larger sizes were too many to try, the budget ran out, or k > up_to."""
    key = ("fewest_shipments", up_to)
    known = problem.memo.get(key)
    if known is not None:
        return known  # type: ignore[return-value]
    found = _fewest_shipments(problem, up_to, budget)
    if budget is None or not budget.expired():  # a result the budget cut short is not kept
        problem.memo[key] = found
    return found


def _fewest_shipments(
    problem: SourcingProblem, up_to: int, budget: Budget | None
) -> tuple[int, IndexSets | None]:
    n = len(problem.nodes)
    least = shipments_needed(problem)
    if least > min(up_to, n):
        return least, None
    for size in range(least, min(up_to, n) + 1):
        if size > least and budget is not None and budget.expired():
            return size, None
        sets = complete_sets(problem, size, budget)
        if sets is None:
            return size, None
        if len(sets):
            return size, sets
    return min(up_to, n) + 1, None


def shipments_needed(problem: SourcingProblem) -> int:
    """A lower bound on the shipments of any complete plan, from quantities alone: per line, the
    fewest candidates whose stock of it adds up to its quantity, and the fewest whose stock of
    the whole order adds up to its units (each taken from the largest holders down). Sets
    smaller than this cannot hold the order, so `fewest_shipments` need not try them; a bulk
    line larger than any two nodes hold skips the set enumeration altogether. Larger than the
    number of candidates when even all of them hold too little."""
    known = problem.memo.get("shipments_needed")
    if not isinstance(known, int):
        known = _shipments_needed(problem)
        problem.memo["shipments_needed"] = known
    return known


def _shipments_needed(problem: SourcingProblem) -> int:
    n = len(problem.nodes)
    if n == 0:
        return 1
    usable = problem.usable
    columns = np.column_stack([usable, usable.sum(axis=1)])
    wanted = np.append(problem.quantity, problem.units)
    if (columns.max(axis=0) >= wanted).all():
        return 1
    held = np.cumsum(-np.sort(-columns, axis=0), axis=0)  # most units t nodes hold, t = 1..n
    reached = held >= wanted
    if not reached[-1].all():
        return n + 1
    return max(1, int(reached.argmax(axis=0).max()) + 1)


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
