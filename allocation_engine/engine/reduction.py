"""Candidate reduction: drop nodes that no optimal plan needs, before the solver sees them.

Four exact rules. Each keeps at least one optimal plan, so the optimum over the reduced
candidates equals the optimum over all candidates (tested against the full model and against
exhaustive enumeration in tests/engine).

0. Prices (see prices.py). A Lagrangian bound with a price per line gives, per node, a lower
   bound on every plan that uses it; a node whose bound exceeds the cost of a plan already known
   (the greedy or the price-guided plan) is in no optimal plan. Where rule 1 counts units at
   their floor, this one weighs what a node can carry against its package: the rule for bulk
   lines, where a 900-unit line makes rule 2's dominator count unreachable.

1. Cost bound. Let floor_l be the least a unit of line l can cost (the cheapest candidate holding
   it; with partial fulfilment, the penalty if that is lower), f_min the lowest shipment cost and
   k_max the most order items (ship-together bundles or single lines) any candidate can ship.
   Every plan pays at least sum_l q_l * floor_l for its units. A plan that uses node n also pays
   f_n, pays c_n instead of a floor for the unit n ships, and, if n cannot ship R(n) items in
   full, needs at least ceil(R/k_max) more shipments at f_min or more each (not so with partial
   fulfilment: those items may stay unfilled). When this lower bound exceeds the cost of a valid
   plan already known (the greedy cover), no optimal plan uses n. When the extra shipments alone
   break the shipment limit, no valid plan uses n. The same reasoning caps the shipments of any
   optimal plan: S = (upper bound - sum_l q_l * floor_l) / f_min, rounded down.

2. Dominance. Node m dominates n when m can ship every item n can, at least as many units of each
   (whole bundles included), at no higher cost for any load n could carry:
   f_m + c_m*k <= f_n + c_n*k for k = 1 and k = U_n (n's most units; costs are linear in k, so
   the two ends suffice), with ties broken by (f + c, node id) so that dominance is a strict
   order; it is transitive because U_m >= U_n.
   Let K(n) = 1 + min(S - 1, limit - 1, sum over splittable lines l that n stocks of (q_l - 1)).
   Claim: n is redundant if it has at least K(n) dominators, or one "full" dominator that holds
   the whole quantity of every splittable line n stocks.
   Proof: take an optimal plan that ships k units from n. A dominator m "blocks" only if it also
   ships a line l that n ships and has too little of l left to take n's share as well; a full
   dominator never blocks (both shares together are at most q_l). Each blocker ships at least one
   unit of such a line besides n's, so there are at most sum(q_l - 1) of them, and at most S - 1
   and limit - 1 other shipments in all: fewer than K(n). So some dominator m does not block. If
   m is unused, move n's shipment to m: cost f_m + c_m*k <= f_n + c_n*k and the shipment count is
   unchanged. If m is used, merge n's units into m's shipment: the plan saves f_n + c_n*k and pays
   c_m*k <= f_m + c_m*k <= f_n + c_n*k, one shipment fewer. Fences hold (m passed them), whole
   bundles stay whole (n shipped them whole and m holds them).
   Why counting dominators that are themselves dropped is safe: by induction along the order, a
   dropped dominator m of n has, among the kept nodes, a full dominator (full for n too, as m
   stocks what n stocks) or K(m) >= K(n) dominators (K grows with what a node stocks), and they
   all dominate n. So n keeps what its removal needs among the nodes that stay. Repeating the
   move removes every dropped node from the plan without raising its cost.

3. Fewest shipments (complete plans only). Let k be the size of the smallest set of remaining
   candidates that holds the whole order (sets of 1 to 3 nodes are tried while they stay few; see
   covering.complete_sets). Every complete plan has at least k shipments. For a fixed node set the
   cheapest plan is exact and quick (each line from the set's cheapest holders first), so the
   cheapest plan on k nodes, best_k, is found by trying every k-set. Any plan with k + 1 or more
   shipments costs at least (k + 1) * f_min + sum_l q_l * floor_l. When that is no less than
   best_k, best_k is optimal and only its nodes are kept; the solver then proves it on a model of
   k nodes. (The solver also gets "at least k shipments" as a cut, which tightens its LP.)

Every rule only ever drops nodes no optimal plan needs, so stopping between any two steps keeps
an exact (if larger) problem: `reduce` asks its budget between rounds and blocks and, once it is
spent, hands on what it has.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from allocation_engine.engine.assignment import Units, total_cost
from allocation_engine.engine.budget import Budget
from allocation_engine.engine.covering import cheapest_plans, fewest_shipments, shipments_needed
from allocation_engine.engine.enumeration import few_enough
from allocation_engine.engine.greedy import cheapest_cover, priced_cover
from allocation_engine.engine.prices import PriceBound, price_bound
from allocation_engine.engine.problem import Reason, SourcingProblem

FloatArray = npt.NDArray[np.float64]

CHUNK = 256  # nodes per block of the pairwise dominance test: bounds memory at chunk^2 x lines


@dataclass(frozen=True)
class Reduction:
    """The reduced problem plus, per network node, the numbers that explain each removal."""

    problem: SourcingProblem
    bound: FloatArray  # lower bound on any plan using the node (NaN where not computed)
    dominator: npt.NDArray[np.int64]  # network index of a dominating node, or -1
    at_least: int = 1  # shipments any complete plan on the kept nodes needs at least
    prices: PriceBound | None = None  # rule 0's prices, on the kept nodes
    plan: Units | None = None  # the best plan known on the kept nodes, if one is


def items(problem: SourcingProblem) -> list[list[int]]:
    """The order's items: each ship-together bundle and each splittable line."""
    return [list(b) for b in problem.bundles] + [[j] for j in problem.split_lines]


def unit_floors(problem: SourcingProblem) -> FloatArray:
    """Per line: the least any unit of it can cost (cheapest holder, or the penalty if lower)."""
    held = np.where(problem.usable > 0, problem.unit_cost[:, None], np.inf)
    floor: FloatArray = (
        held.min(axis=0) if len(problem.nodes) else np.full(len(problem.quantity), np.inf)
    )
    return np.minimum(floor, problem.penalty) if problem.partial else floor


def lower_bounds(
    problem: SourcingProblem, at_least: int = 1
) -> tuple[FloatArray, npt.NDArray[np.bool_]]:
    """Per candidate: a lower bound on the cost of any optimal plan that uses it, given that such
    a plan has `at_least` shipments, and whether any valid plan can use it at all (rule 1)."""
    usable = problem.usable
    f, c = problem.shipment_fixed, problem.unit_cost
    n = len(problem.nodes)
    if n == 0:
        return np.empty(0), np.empty(0, dtype=bool)
    floor = unit_floors(problem)
    # the unit n must ship itself costs c_n instead of its line's floor
    own_unit = np.where(usable > 0, c[:, None] - floor[None, :], np.inf).min(axis=1)
    bound = f + own_unit + float((problem.quantity * floor).sum())
    if problem.partial:  # what n cannot ship may stay unfilled: no extra shipment is implied
        return bound, np.ones(n, dtype=bool)
    groups = items(problem)
    touches = np.column_stack([usable[:, g].any(axis=1) for g in groups])
    full = np.column_stack([(usable[:, g] >= problem.quantity[g]).all(axis=1) for g in groups])
    k_max = max(int(touches.sum(axis=1).max()), 1)
    extra = -(-(~full).sum(axis=1) // k_max)  # ceil(R / k_max)
    limit = problem.shipment_limit
    possible = np.ones(n, dtype=bool) if limit is None else 1 + extra <= limit
    return bound + np.maximum(extra, at_least - 1) * float(f.min()), possible


def most_shipments(problem: SourcingProblem, upper_bound: float) -> int | None:
    """The most shipments an optimal plan can have: each costs at least f_min, on top of what
    the units cost at least, and the whole plan at most `upper_bound` (None: no such cap)."""
    f_min = float(problem.shipment_fixed.min()) if len(problem.nodes) else 0.0
    if f_min <= 0 or not np.isfinite(upper_bound):
        return problem.shipment_limit
    units = float((problem.quantity * unit_floors(problem)).sum())
    cap = max(1, int((upper_bound - units) / f_min + 1e-9))
    limit = problem.shipment_limit
    return cap if limit is None else min(cap, limit)


def dominated(
    problem: SourcingProblem, shipments: int | None, budget: Budget | None = None
) -> npt.NDArray[np.int64]:
    """Per candidate: the row of a dominator that makes it redundant, else -1 (rule 2).

    `shipments` caps the shipments of an optimal plan, hence the number of possible blockers.
    A dominator holding the full quantity of every splittable line n stocks can never block.
    Blocks not reached when the budget runs out stay undominated (kept: always safe).
    """
    usable = problem.usable
    f, c = problem.shipment_fixed, problem.unit_cost
    n = len(problem.nodes)
    one = f + c
    order = np.lexsort((np.arange(n), one))  # the strict order: (f + c, node id)
    profile, f, c, one = usable[order], f[order], c[order], one[order]
    most = profile.sum(axis=1)
    at_most = f + c * most
    split = list(problem.split_lines)
    stocks = profile[:, split] > 0
    slack = (stocks * (problem.quantity[split] - 1)).sum(axis=1)
    # line sets as packed bits: "m holds at least what n holds" is a subset test on the lines
    # stocked, plus a unit comparison on the few lines ordered more than once
    support = np.packbits(profile > 0, axis=1)
    several = np.flatnonzero(problem.quantity > 1)
    full = np.packbits(profile[:, split] >= problem.quantity[split], axis=1)
    stocked = np.packbits(stocks, axis=1)
    needed = 1 + (slack if shipments is None else np.minimum(shipments - 1, slack))
    result = np.full(n, -1, dtype=np.int64)
    # Nodes with the same stock profile and shipment cost form a chain in (f + c, id) order:
    # each is dominated by all before it, so a rank past `needed` (or past 0 when the first
    # holds every stocked line in full) settles it without the pairwise test.
    twins = np.unique(np.column_stack([profile, f]), axis=0, return_inverse=True)[1].ravel()
    chain = np.lexsort((np.arange(n), twins))
    first = np.r_[True, twins[chain][1:] != twins[chain][:-1]]
    group_start = np.maximum.accumulate(np.where(first, np.arange(n), 0))
    head, rank = np.empty(n, dtype=np.intp), np.empty(n, dtype=np.int64)
    head[chain], rank[chain] = chain[group_start], np.arange(n) - group_start
    holds_what_it_stocks = ((full & stocked) == stocked).all(axis=1)
    settled = rank >= np.where(holds_what_it_stocks, 1, needed)
    result[order[settled]] = order[head[settled]]
    kept = np.empty(0, dtype=np.intp)
    remaining = np.flatnonzero(~settled)
    for start in range(0, len(remaining), CHUNK):
        if start and budget is not None and budget.expired():
            break
        block = remaining[start : start + CHUNK]
        rivals = np.concatenate([kept, block])
        covers = _superset(support[rivals], support[block])
        if len(several):
            units = profile[:, several]
            for line in range(units.shape[1]):
                covers &= units[rivals, line][:, None] >= units[block, line][None, :]
        cheaper = (one[rivals][:, None] <= one[block][None, :]) & (
            f[rivals][:, None] + c[rivals][:, None] * most[block][None, :]
            <= at_most[block][None, :]
        )
        earlier = rivals[:, None] < block[None, :]
        dominates = covers & cheaper & earlier
        never_blocks = _superset(full[rivals], stocked[block])
        out = ((dominates & never_blocks).any(axis=0)) | (dominates.sum(axis=0) >= needed[block])
        result[order[block[out]]] = order[rivals[dominates[:, out].argmax(axis=0)]]
        kept = np.concatenate([kept, block[~out]])
    return result


def _superset(a: npt.NDArray[np.uint8], b: npt.NDArray[np.uint8]) -> npt.NDArray[np.bool_]:
    """[i, j]: bit set a[i] contains bit set b[j] (byte by byte: numpy is slow over a short
    last axis)."""
    out = np.ones((len(a), len(b)), dtype=bool)
    for byte in range(a.shape[1]):
        wanted = b[None, :, byte]
        out &= (a[:, byte, None] & wanted) == wanted
    return out


def fewest_shipments_rule(
    problem: SourcingProblem, bound: FloatArray, budget: Budget | None = None
) -> npt.NDArray[np.bool_] | None:
    """Rule 3: which candidates to keep when the cheapest plan on the fewest nodes is provably
    optimal (None when it cannot be shown). Raises `bound` (per candidate) where it learns more."""
    if problem.partial or len(problem.nodes) == 0:
        return None
    fewest, sets = fewest_shipments(problem, budget=budget)
    if sets is None:
        return None
    n = len(problem.nodes)
    costs = cheapest_plans(problem, sets)
    best = int(np.argmin(costs))  # the first of equal costs: lowest node ids
    more = (fewest + 1) * float(problem.shipment_fixed.min()) + float(
        (problem.quantity * unit_floors(problem)).sum()
    )
    if more < costs[best]:
        return None
    through = np.full(n, more)  # per node, the cheapest plan that uses it
    for column in sets.T:
        np.minimum.at(through, column, costs)
    np.maximum(bound, through, out=bound)
    keep = np.zeros(n, dtype=bool)
    keep[sets[best]] = True
    return keep


ROUNDS = 3  # bound and dominance rounds: each can raise the shipment floor for the next


class _Kept:
    """The candidates kept so far and the best plan known on them (dropped once a removal takes
    one of its nodes: its cost stays the upper bound, which any plan found may only lower)."""

    def __init__(self, problem: SourcingProblem) -> None:
        self.problem = problem
        self.plan: Units | None = None
        self.upper_bound = math.inf

    def offer(self, units: Units | None) -> None:
        if units is not None and (cost := total_cost(self.problem, units)) < self.upper_bound:
            self.plan, self.upper_bound = units, cost

    def drop(self, keep: npt.NDArray[np.bool_], why: Reason) -> None:
        if self.plan is not None:
            self.plan = None if (self.plan[~keep] > 0).any() else self.plan[keep]
        self.problem = self.problem.subset(keep, why)


def reduce(problem: SourcingProblem, budget: Budget | None = None) -> Reduction:
    """Rule 3 first when it may settle the order cheaply (one node could ship it all), then the
    prices (rule 0), then rules 1 and 2 in rounds, each with a better plan and a higher floor on
    the shipments of an optimal plan among the nodes left, then rule 3. Hands on what is left as
    soon as the exhaustive search can take it (see enumeration.py), and stops early, exactly,
    when `budget` runs out."""
    budget = budget or Budget.unlimited()
    size = len(problem.network)
    bound_all = np.full(size, np.nan)
    dominator_all = np.full(size, -1, dtype=np.int64)
    kept = _Kept(problem)
    priced: tuple[SourcingProblem, PriceBound] | None = None  # rule 0's prices and problem

    def result(at_least: int) -> Reduction:
        prices = None
        if priced is not None:
            on, found = priced
            prices = found.subset(np.isin(on.nodes, kept.problem.nodes, assume_unique=True))
        return Reduction(kept.problem, bound_all, dominator_all, at_least, prices, kept.plan)

    at_least = 1 if problem.partial else shipments_needed(problem)
    if at_least == 1:
        bound = np.full(len(problem.nodes), -np.inf)
        keep = fewest_shipments_rule(problem, bound, budget)  # one node for all, provably best
        if keep is not None:
            bound_all[problem.nodes] = bound
            kept.drop(keep, Reason.COST_BOUND)
            return result(1)
    kept.offer(cheapest_cover(problem))
    if budget.expired():
        return result(at_least)
    prices = price_bound(problem, at_least)
    if prices is not None:  # rule 0: prices
        kept.offer(priced_cover(problem, prices.using))
        bound_all[problem.nodes] = prices.using
        priced = problem, prices
        kept.drop(prices.using <= _above(kept.upper_bound), Reason.COST_BOUND)
        if few_enough(kept.problem):
            return result(at_least)
    for _ in range(ROUNDS):
        if budget.expired():
            return result(at_least)
        count, floor = len(kept.problem.nodes), at_least
        bound, possible = lower_bounds(kept.problem, at_least)
        bound_all[kept.problem.nodes] = np.fmax(bound_all[kept.problem.nodes], bound)
        kept.drop(possible, Reason.NO_FEASIBLE_USE)
        kept.drop(bound[possible] <= _above(kept.upper_bound), Reason.COST_BOUND)
        dominator = dominated(kept.problem, most_shipments(kept.problem, kept.upper_bound), budget)
        gone = dominator >= 0
        dominator_all[kept.problem.nodes[gone]] = kept.problem.nodes[dominator[gone]]
        kept.drop(~gone, Reason.DOMINATED)
        if few_enough(kept.problem):
            return result(at_least)
        kept.offer(cheapest_cover(kept.problem))
        if not kept.problem.partial:
            # the optimal plan kept among these nodes needs at least this many shipments
            at_least = max(at_least, fewest_shipments(kept.problem, budget=budget)[0])
        if len(kept.problem.nodes) == count and at_least == floor:
            break
    if budget.expired():
        return result(at_least)
    bound = bound_all[kept.problem.nodes]
    keep = fewest_shipments_rule(kept.problem, bound, budget)
    if keep is None:
        return result(at_least)
    bound_all[kept.problem.nodes] = bound
    kept.drop(keep, Reason.COST_BOUND)
    return result(at_least)


def _above(upper_bound: float) -> float:
    """The cost past which a plan is certainly dearer than one of `upper_bound` (float slack)."""
    return upper_bound + 1e-9 * max(1.0, abs(upper_bound))
