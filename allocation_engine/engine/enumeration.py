"""Enumeration of node sets: an exact search for the problems the reduction leaves small, and for
the bulk orders whose prices leave few sets worth trying.

With the set U of nodes that may ship fixed, the cheapest plan is known in closed form: each line
(each ship-together bundle whole) is filled from U's nodes in order of unit cost, cheapest first,
and a node left with nothing to ship pays nothing (`covering.cheapest_plans` uses the same fact).
For every plan P the set U of nodes it uses gives a plan at most as dear (P's units are one way
to fill the lines from U, the cheapest-first fill is the cheapest way, and it can only leave
nodes of U unused), and every set's plan is a plan. So the least over a family of sets that
contains the set of some optimal plan is the optimum.

Two such families:
- every set of up to `shipment_limit` candidates, when there are few (`few_enough`);
- the sets within the price gap. With prices lambda (see prices.py), every plan that uses
  exactly the set U costs at least  L0 + sum over n in U xor D of |h_n|,  where L0 is the
  Lagrangian bound with the choice of nodes free, h_n each node's margin and D the nodes of
  positive margin: cost >= sum_l lambda_l q_l - sum_{n in U} h_n, and L0 = sum_l lambda_l q_l -
  sum_{n in D} h_n. An optimal plan costs at most any known plan's cost B, so its set U has
  sum_{U xor D} |h_n| <= B - L0: trying every set whose toggles from D fit in that gap is exact.
  On bulk orders the gap is about one package and few nodes have margins that small, so the
  sets to try are a few hundred where the candidates are a hundred or more. When they would be
  more than MAX_SETS, the search declines and the solver takes the problem.

Costs are compared as the solver compares them (integers at objective.MICRO resolution, ties
towards the plan whose used rows have the smallest sum of row + 1, as the solver's tie tier), so
this search and CP-SAT return plans of the same cost and the same rank; where several plans
share both (equal unit costs), this one fills the lower row first and CP-SAT may split
otherwise. It declines when partial fulfilment is allowed or the integer costs could overflow.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from allocation_engine.engine.assignment import Units, total_cost
from allocation_engine.engine.budget import Budget
from allocation_engine.engine.greedy import cheapest_cover, cheapest_on, priced_cover
from allocation_engine.engine.objective import MICRO
from allocation_engine.engine.prices import PriceBound, lp_price_bound, price_bound
from allocation_engine.engine.problem import Reason, SourcingProblem

MAX_WORK = 300_000  # all sets x candidates x lines: well under a millisecond of array work
MAX_SETS = 20_000  # sets within the price gap worth trying before the solver is faster
MAX_CELLS = 4_000_000  # sets x candidates held at once (4 MB of flags)
SAFE = 2**62  # integer costs stay below this (int64 with a factor 2 to spare)
# Candidates up to which the LP's prices are worth their cost (a few ms at a hundred; tens of
# ms at several hundred, where the ascent's prices and the solver do better)
LP_NODES = 150
TINY = 6  # candidates up to which every set (at most 63) is tried before any bound
QUICK_SETS = 2_000  # sets the ascent's prices may try when the LP's could follow

Members = npt.NDArray[np.bool_]  # sets x candidates: which candidates each set holds
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Search:
    """What the search before the solver found: the candidates left (the prices may fix some),
    the best plan on them, whether it is proven optimal, and the tightest prices (for the
    solver's cut). `bound` holds, per candidate given, the bound that fixed it (NaN if kept)."""

    problem: SourcingProblem
    plan: Units | None
    proven: bool
    prices: PriceBound | None
    bound: npt.NDArray[np.float64]


def search(
    problem: SourcingProblem,
    at_least: int,
    budget: Budget,
    prices: PriceBound | None = None,
    plan: Units | None = None,
) -> Search:
    """Plans without the solver where it can prove the optimum: every node set when there are
    few candidates; else the greedy and the price-guided plans, the nodes the prices fix left
    out, and the sets within the price gap: at the ascent's prices (`prices`, when the
    reduction found them already) on few sets when the LP may follow, then at the LP's (a
    tighter bound, fewer sets), or at the ascent's on all the sets allowed when it may not.
    `plan` is the best plan known on these candidates, if any. Each step asks the budget first."""
    state = _State(problem, plan, np.full(len(problem.nodes), np.nan))
    guide = prices is None or plan is None  # else the reduction's prices guided its plan already
    if not problem.partial and len(problem.nodes) == 1:
        alone = cheapest_on(problem, [0])  # one node left: the plan, if it holds the order
        if (alone.sum(axis=0) == problem.quantity).all():
            return Search(problem, alone, True, None, state.bound)
    if not problem.partial and len(problem.nodes) <= TINY and not budget.expired():
        best, proven = cheapest_set(problem)
        if proven:
            return Search(problem, best, True, None, state.bound)
    if state.plan is None:
        state.plan = cheapest_cover(problem)
    if problem.partial or budget.expired():
        return state.result(False)
    ascent = prices if prices is not None else price_bound(problem, at_least)
    if ascent is None or state.plan is None:
        return state.fallback(budget)
    lp_next = len(problem.nodes) <= LP_NODES
    if state.attempt(ascent, QUICK_SETS if lp_next else MAX_SETS, budget, guide):
        return state.result(True)
    if budget.expired():
        return state.result(False)
    small = len(state.problem.nodes) <= LP_NODES
    lp = lp_price_bound(state.problem, at_least, budget.remaining()) if small else None
    if lp is not None:
        if state.attempt(lp, MAX_SETS, budget):
            return state.result(True)
    elif lp_next and state.attempt(state.ascent(ascent), MAX_SETS, budget):
        return state.result(True)
    return state.fallback(budget)


class _State:
    """The search's candidates, best plan and bounds as the prices fix nodes."""

    def __init__(self, problem: SourcingProblem, plan: Units | None, bound: FloatArray) -> None:
        self.problem, self.plan, self.bound = problem, plan, bound
        self.rows = np.arange(len(problem.nodes))  # the input's row of each candidate left
        self.prices: PriceBound | None = None
        self._kept = np.ones(len(problem.nodes), dtype=bool)  # on the input's rows

    def ascent(self, ascent: PriceBound) -> PriceBound:
        """The ascent's prices (found on the input's candidates) on the candidates left."""
        return ascent.subset(self._kept)

    def attempt(
        self, prices: PriceBound, max_sets: int, budget: Budget, guide: bool = True
    ) -> bool:
        """Fixes what `prices` fix (the candidates may have shrunk since they were found: they
        are restricted first), then tries the sets within their gap; whether proven. `guide`:
        try the plan these prices guide to first."""
        if len(prices.margin) != len(self.rows):
            prices = prices.subset(self._kept)
        assert self.plan is not None
        guided = priced_cover(self.problem, prices.using) if guide else None
        if guided is not None and total_cost(self.problem, guided) < total_cost(
            self.problem, self.plan
        ):
            self.plan = guided
        cost = total_cost(self.problem, self.plan)
        keep = prices.without_dearer(cost)
        self.bound[self.rows[~keep]] = prices.using[~keep]
        self._kept[self.rows[~keep]] = False
        self.problem = self.problem.subset(keep, Reason.COST_BOUND)
        self.prices, self.plan, self.rows = prices.subset(keep), self.plan[keep], self.rows[keep]
        if budget.expired():
            return False
        best, proven = cheapest_set(self.problem, self.prices, cost, max_sets)
        if best is not None and total_cost(self.problem, best) <= cost:
            self.plan = best
        return proven

    def fallback(self, budget: Budget) -> Search:
        """Every set when no prices settled it and there are few enough candidates."""
        if few_enough(self.problem) and not budget.expired():
            best, proven = cheapest_set(self.problem)
            if proven:
                self.plan = best
                return self.result(True)
        return self.result(False)

    def result(self, proven: bool) -> Search:
        return Search(self.problem, self.plan, proven, self.prices, self.bound)


def few_enough(problem: SourcingProblem) -> bool:
    """Whether `cheapest_set` tries every node set of this problem."""
    n, lines = len(problem.nodes), len(problem.quantity)
    return not problem.partial and n > 0 and (2**n) * n * max(lines, 1) <= MAX_WORK


def cheapest_set(
    problem: SourcingProblem,
    prices: PriceBound | None = None,
    upper_bound: float = math.inf,
    max_sets: int = 0,
) -> tuple[Units | None, bool]:
    """The best plan over the sets within the price gap (given `prices` and the cost of a known
    plan, `upper_bound`), else over every node set when there are few enough, and whether it is
    proven optimal: the gap search may stop short (too many sets) with the best plan of a
    narrower gap; `max_sets` (0: MAX_SETS) caps the sets it tries. (None, False) when it
    declines."""
    n = len(problem.nodes)
    if problem.partial or n == 0:
        return None, False
    fixed = np.rint(problem.shipment_fixed * MICRO).astype(np.int64)
    unit = np.rint(problem.unit_cost * MICRO).astype(np.int64)
    if float(fixed.sum()) + float(unit.max()) * problem.units >= SAFE:
        return None, False
    best = None
    if prices is not None and math.isfinite(upper_bound):
        cap = max_sets or MAX_SETS
        best, proven = _within_price_gap(problem, prices, upper_bound, fixed, unit, cap)
        if proven:
            return best, True
    if few_enough(problem):
        member = (np.arange(1, 2**n)[:, None] >> np.arange(n)[None, :]) & 1 == 1
        every = _best(problem, _within_limit(problem, member), fixed, unit)
        return every, every is not None
    return best, False


def _within_price_gap(
    problem: SourcingProblem,
    prices: PriceBound,
    upper_bound: float,
    fixed: npt.NDArray[np.int64],
    unit: npt.NDArray[np.int64],
    max_sets: int,
) -> tuple[Units | None, bool]:
    """The best plan over the sets within the price gap, and whether that gap was covered.

    The gap widens from a quarter of the known plan's: the sets within a gap g settle the
    optimum once the best of them costs at most L0 + g (every set left out costs more)."""
    gap = upper_bound - prices.free_bound
    width = gap / 4
    best = None
    while True:
        within = _within_gap(prices, prices.free_bound + width, max_sets)
        if within is None:
            return best, False
        found = _best(problem, _within_limit(problem, within), fixed, unit)
        if found is not None:
            best = found
            cost = total_cost(problem, found)
            if cost <= prices.free_bound + width or width >= gap:
                return best, True
            width = min(gap, max(2 * width, cost - prices.free_bound))
        elif width >= gap:  # the known plan's own set is within: only float error gets here
            return None, False
        else:
            width = min(gap, 2 * width)


def _within_limit(problem: SourcingProblem, member: Members) -> Members:
    """The sets of at least one and at most `shipment_limit` nodes."""
    limit = problem.shipment_limit
    sizes = member.sum(axis=1)
    kept: Members = member[
        (sizes > 0) & (sizes <= (len(problem.nodes) if limit is None else limit))
    ]
    return kept


def _within_gap(prices: PriceBound, upper_bound: float, max_sets: int) -> Members | None:
    """Every set whose toggles from the nodes of positive margin fit in the price gap (see the
    module docstring), or None when they are more than `max_sets`."""
    margin = prices.margin
    gap = upper_bound - prices.free_bound
    gap += 1e-9 * max(1.0, abs(upper_bound))  # float slack: never lose a set at the edge
    if gap < 0:
        return None  # the known plan is below the bound: only float error can say so
    toggle = np.abs(margin)
    order = np.argsort(toggle, kind="stable")
    cost = toggle[order]
    # toggle sets by size: rows of positions into `order`, increasing, with their summed cost
    level = np.empty((1, 0), dtype=np.intp)
    spent = np.zeros(1)
    found = [np.zeros((1, len(margin)), dtype=bool)]
    total = 1
    while len(level):
        last = level[:, -1] if level.shape[1] else np.full(len(level), -1)
        reach = np.searchsorted(cost, gap - spent, side="right")  # first position past the gap
        count = np.maximum(reach - (last + 1), 0)
        total += int(count.sum())
        if total > max_sets or total * len(margin) > MAX_CELLS:
            return None
        parent = np.repeat(np.arange(len(level)), count)
        step = np.arange(len(parent)) - np.repeat(np.cumsum(count) - count, count)
        chosen = last[parent] + 1 + step
        level = np.column_stack([level[parent], chosen])
        spent = spent[parent] + cost[chosen]
        flips = np.zeros((len(level), len(margin)), dtype=bool)
        flips[np.repeat(np.arange(len(level)), level.shape[1]), order[level.ravel()]] = True
        found.append(flips)
    return np.vstack(found) ^ (margin > 0)[None, :]


def _best(
    problem: SourcingProblem,
    member: Members,
    fixed: npt.NDArray[np.int64],
    unit: npt.NDArray[np.int64],
) -> Units | None:
    """The cheapest of the sets' plans (then the smallest sum of row + 1 over the rows used);
    None when no set holds the whole order."""
    n, lines = len(problem.nodes), len(problem.quantity)
    if len(member) == 0:
        return None
    by_cost = np.lexsort((np.arange(n), problem.unit_cost))
    # each set's members in cost order, padded with a row n that holds and costs nothing
    ranked = member[:, by_cost]
    sizes = ranked.sum(axis=1)
    rows, cols = np.nonzero(ranked)  # row by row, each row's members in cost order
    slot = np.arange(len(rows)) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    members = np.full((len(member), int(sizes.max())), n, dtype=np.intp)
    members[rows, slot] = by_cost[cols]
    usable = np.vstack([problem.usable, np.zeros((1, lines), dtype=np.int64)])
    fixed, unit = np.append(fixed, 0), np.append(unit, 0)
    left = np.broadcast_to(problem.quantity, (len(member), lines)).copy()
    cost = np.zeros(len(member), dtype=np.int64)
    tie = np.zeros(len(member), dtype=np.int64)
    for column in members.T:
        take = np.minimum(usable[column], left)
        units = take.sum(axis=1)
        ships = units > 0
        cost += ships * fixed[column] + units * unit[column]
        tie += ships * (column + 1)
        left -= take
    complete = np.flatnonzero(~left.any(axis=1))
    if len(complete) == 0:
        return None
    best = complete[np.lexsort((tie[complete], cost[complete]))[0]]
    return cheapest_on(problem, [int(r) for r in members[best] if r < n])
