"""Enumeration of node sets, for the problems candidate reduction leaves small.

With the set of nodes that may ship fixed, the cheapest plan is known in closed form: each line
(each ship-together bundle whole) is filled from the set's nodes in order of unit cost, cheapest
first, and a node left with nothing to ship pays nothing (`covering.cheapest_plans` uses the same
fact). For every plan P the set U of nodes it uses gives a plan at most as dear (P's units are
one way to fill the lines from U, the cheapest-first fill is the cheapest way, and it can only
leave nodes of U unused), and every set's plan is a plan. So the least over all sets is the
optimum: trying every set of up to `shipment_limit` of n candidates proves it, with no solver.

Costs are compared as the solver compares them (integers at objective.MICRO resolution, ties
towards the plan whose used rows have the smallest sum of row + 1, as the solver's tie tier), so
this search and CP-SAT return the same plan. It declines (None) when partial fulfilment is
allowed, when the sets are too many to try quickly, or when the integer costs could overflow.
"""

from __future__ import annotations

import numpy as np

from allocation_engine.engine.assignment import Units
from allocation_engine.engine.greedy import cheapest_on
from allocation_engine.engine.objective import MICRO
from allocation_engine.engine.problem import SourcingProblem

MAX_WORK = 300_000  # sets x candidates x lines: about a millisecond of array work
SAFE = 2**62  # integer costs stay below this (int64 with a factor 2 to spare)


def few_enough(problem: SourcingProblem) -> bool:
    """Whether `cheapest_set` tries this problem's sets (it may still decline on costs)."""
    n, lines = len(problem.nodes), len(problem.quantity)
    return not problem.partial and n > 0 and (2**n) * n * max(lines, 1) <= MAX_WORK


def cheapest_set(problem: SourcingProblem) -> Units | None:
    """The optimal plan found by trying every node set, or None when this search declines."""
    if not few_enough(problem):
        return None
    n, lines = len(problem.nodes), len(problem.quantity)
    fixed = np.rint(problem.shipment_fixed * MICRO).astype(np.int64)
    unit = np.rint(problem.unit_cost * MICRO).astype(np.int64)
    if float(fixed.sum()) + float(unit.max()) * problem.units >= SAFE:
        return None
    member = (np.arange(1, 2**n)[:, None] >> np.arange(n)[None, :]) & 1 == 1
    limit = problem.shipment_limit
    if limit is not None:
        member = member[member.sum(axis=1) <= limit]
    usable = problem.usable
    left = np.broadcast_to(problem.quantity, (len(member), lines)).copy()
    cost = np.zeros(len(member), dtype=np.int64)
    tie = np.zeros(len(member), dtype=np.int64)
    for row in np.lexsort((np.arange(n), problem.unit_cost)):
        take = np.where(member[:, row, None], np.minimum(usable[row], left), 0)
        units = take.sum(axis=1)
        ships = units > 0
        cost += ships * fixed[row] + units * unit[row]
        tie += ships * (row + 1)
        left -= take
    complete = np.flatnonzero(~left.any(axis=1))
    if len(complete) == 0:
        return None
    best = complete[np.lexsort((tie[complete], cost[complete]))[0]]
    return cheapest_on(problem, [int(r) for r in np.flatnonzero(member[best])])
