"""Unit prices per line: a Lagrangian lower bound that reasons about quantities, and what it fixes.

Relax the demand constraints sum_n x[n,l] = q_l with a price lambda_l per line. For any prices,
every plan (x, y) costs

    sum_n f_n y_n + sum_{n,l} c_n x[n,l]
      = sum_l lambda_l q_l + sum_n ( f_n y_n + sum_l (c_n - lambda_l) x[n,l] )
     >= sum_l lambda_l q_l - sum_n y_n h_n,    h_n = sum_l a[n,l] (lambda_l - c_n)^+ - f_n,

since 0 <= x[n,l] <= a[n,l] y_n (a: what n may ship of l, bundles counted as splittable, which
only relaxes further; an unfilled unit, where allowed, is a node of price `penalty`). So with
L = sum_l lambda_l q_l - sum_n max(0, h_n), the Lagrangian bound, every plan costs at least

    L + max(0, -h_n)  if it uses n,        L + max(0, h_n)  if it does not.

When the first exceeds the cost of a plan already known, no optimal plan uses n: it can be
dropped, whatever the prices (exactness does not depend on how good they are, only the number of
nodes dropped does). This is reduced-cost fixing on the LP relaxation x <= a y, whose optimum
the best prices reach; it is strong exactly where unit-based rules are weak: bulk lines, where
the cost of each unit decides and a node is worth its shipment only for the share it can carry.

The prices come from coordinate ascent, exact along each line: with the other prices fixed, L as
a function of lambda_l is concave and piecewise linear, node n starting to supply its a[n,l]
units once lambda_l passes t_n = c_n + max(0, f_n - (what n earns on the other lines)) / a[n,l];
the maximum is the price at which the supply so ordered first reaches q_l. Every step raises L,
so stopping after any pass leaves a valid (if weaker) bound.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt
from ortools.linear_solver import pywraplp

from allocation_engine.engine.problem import SourcingProblem

FloatArray = npt.NDArray[np.float64]

PASSES = 4  # coordinate passes over the lines: measured on F4, the bound stops moving after 2 or 3


@dataclass(frozen=True)
class PriceBound:
    """Prices per line, the bound L they give, and per candidate a bound on plans using it."""

    prices: FloatArray
    bound: float  # L: no plan costs less
    using: FloatArray  # per candidate: no plan that uses it costs less
    margin: FloatArray  # h_n per candidate
    free_bound: float  # L with the choice of nodes free of the shipment counts

    def without_dearer(self, upper_bound: float) -> npt.NDArray[np.bool_]:
        """The candidates some plan of cost at most `upper_bound` may use (all others cost
        more, by `using`); never one of positive margin, so the bounds hold on the rest."""
        keep: npt.NDArray[np.bool_] = self.using <= upper_bound + 1e-9 * max(1.0, abs(upper_bound))
        return keep | (self.margin > 0)

    def subset(self, keep: npt.NDArray[np.bool_]) -> PriceBound:
        """The same prices and bounds on the candidates kept. Every bound stays valid (plans on
        fewer candidates are plans on all); a dropped node of positive margin is one no plan
        left can use, so its margin joins the free bound."""
        dropped = self.margin[~keep]
        gained = float(dropped[dropped > 0].sum())
        return replace(
            self,
            using=self.using[keep],
            margin=self.margin[keep],
            free_bound=self.free_bound + gained,
        )


def price_bound(
    problem: SourcingProblem, at_least: int = 1, passes: int = PASSES
) -> PriceBound | None:
    """The best prices coordinate ascent finds in `passes` passes, and the bounds they give when
    every complete plan has at least `at_least` shipments (and at most the shipment limit);
    None when some line cannot be filled even by every candidate together.

    The shipment counts tighten the relaxed choice of nodes: it opens the nodes of positive h_n,
    but at least `at_least` (the best of the rest added) and at most the limit (the best kept).
    Forcing n into that choice either adds it (cost -h_n) or swaps it for the worst node chosen
    (cost h_worst - h_n), whichever the counts allow.
    """
    a = problem.usable.astype(np.float64)
    q = problem.quantity.astype(np.float64)
    f, c = problem.shipment_fixed, problem.unit_cost
    n = len(f)
    cap = problem.penalty if problem.partial else np.inf
    if n == 0 or (not problem.partial and (a.sum(axis=0) < q).any()):
        return None
    # per line, its holders' rows, units, unit and shipment costs, and what each earns on it
    lines = []
    for line in range(len(q)):
        rows = np.flatnonzero(a[:, line])
        lines.append((rows, a[rows, line], c[rows], f[rows]))
    prices = np.zeros(len(q))
    earned = []
    total = np.zeros(n)  # what each node earns over all lines, kept up to date
    # start from each line alone: a node's whole shipment cost spread over its units of it
    for line, (rows, units, cost, fixed) in enumerate(lines):
        prices[line] = _line_price(units, cost + fixed / units, q[line], cap)
        earned.append(np.maximum(prices[line] - cost, 0.0) * units)
        total[rows] += earned[line]
    best = _bound(prices, q, total, f)
    for _ in range(passes):
        before = best
        for line, (rows, units, cost, fixed) in enumerate(lines):
            others = total[rows] - earned[line]
            threshold = cost + np.maximum(0.0, fixed - others) / units
            prices[line] = _line_price(units, threshold, q[line], cap)
            gained = np.maximum(prices[line] - cost, 0.0) * units
            total[rows] = others + gained
            earned[line] = gained
        best = _bound(prices, q, total, f)
        if best <= before + 1e-6 * max(1.0, abs(before)):
            break
    margin = total - f  # h_n
    low = 0 if problem.partial else min(max(1, at_least), n)
    limit = problem.shipment_limit
    high = n if limit is None else min(limit, n)
    ranked = np.argsort(-margin, kind="stable")
    chosen = min(max(int((margin > 0).sum()), low), high)
    value = float(margin[ranked[:chosen]].sum())
    bound = float(prices @ q) - value
    using = np.full(n, bound)
    rest = ranked[chosen:]
    if len(rest):
        swap = chosen > 0 and (chosen == high or chosen > int((margin > 0).sum()))
        worst = float(margin[ranked[chosen - 1]]) if swap else 0.0
        using[rest] = bound + worst - margin[rest]
    return PriceBound(prices, bound, using, margin, best)


def lp_price_bound(
    problem: SourcingProblem, at_least: int = 1, seconds: float | None = None
) -> PriceBound | None:
    """The prices of the LP relaxation's optimum (GLOP), the best the ascent could reach, with
    a price mu for "at least `at_least` shipments" besides: every node's margin gains mu and the
    bound mu x at_least, since a plan of |U| >= at_least shipments pays mu (|U| - at_least) >= 0
    more than it needs. For the small problems the reduction leaves, where a tighter bound
    means fewer node sets to try (enumeration.py); None where the LP cannot be solved (within
    `seconds`, when given: the caller's budget bounds it like every other step)."""
    a, q = problem.usable, problem.quantity
    f, c = problem.shipment_fixed, problem.unit_cost
    n = len(f)
    if n == 0 or (not problem.partial and (a.sum(axis=0) < q).any()):
        return None
    lp = pywraplp.Solver.CreateSolver("GLOP")
    if lp is None:
        return None
    objective = lp.Objective()
    use = [lp.NumVar(0.0, 1.0, "") for _ in range(n)]
    for row in range(n):
        objective.SetCoefficient(use[row], float(f[row]))
    demand = []
    for line in range(len(q)):
        rows = np.flatnonzero(a[:, line])
        fill = lp.Constraint(float(q[line]), float(q[line]))
        for row in rows.tolist():
            units = lp.NumVar(0.0, float(a[row, line]), "")
            link = lp.Constraint(-lp.infinity(), 0.0)  # units <= a x use
            link.SetCoefficient(units, 1.0)
            link.SetCoefficient(use[row], -float(a[row, line]))
            objective.SetCoefficient(units, float(c[row]))
            fill.SetCoefficient(units, 1.0)
        if problem.partial:
            unfilled = lp.NumVar(0.0, float(q[line]), "")
            objective.SetCoefficient(unfilled, problem.penalty)
            fill.SetCoefficient(unfilled, 1.0)
        demand.append(fill)
    k = 0 if problem.partial else max(1, at_least)
    count = lp.Constraint(float(k), lp.infinity())
    for row in range(n):
        count.SetCoefficient(use[row], 1.0)
    objective.SetMinimization()
    if seconds is not None and math.isfinite(seconds):
        lp.SetTimeLimit(max(1, int(seconds * 1000)))
    if lp.Solve() != pywraplp.Solver.OPTIMAL:
        return None
    prices = np.array([d.dual_value() for d in demand])
    if problem.partial:
        prices = np.minimum(prices, problem.penalty)
    mu = max(0.0, count.dual_value())
    margin = (np.maximum(prices[None, :] - c[:, None], 0.0) * a).sum(axis=1) - f + mu
    bound = float(prices @ q) + mu * k - float(np.maximum(margin, 0.0).sum())
    return PriceBound(prices, bound, bound + np.maximum(0.0, -margin), margin, bound)


def _bound(prices: FloatArray, q: FloatArray, total: FloatArray, f: FloatArray) -> float:
    """L at these prices, the choice of nodes free (what the ascent maximises)."""
    return float(prices @ q - np.maximum(total - f, 0.0).sum())


def _line_price(units: FloatArray, threshold: FloatArray, quantity: float, cap: float) -> float:
    """The price at which the supply of the holders (`units` > 0 each), entering at
    `threshold`, first covers `quantity` (or `cap`, the unfilled unit's penalty, if lower)."""
    order = np.argsort(threshold, kind="stable")
    supply = np.cumsum(units[order])
    enough = int(np.searchsorted(supply, quantity - 1e-9))
    price = float(threshold[order[enough]]) if enough < len(order) else np.inf
    return min(price, cap)
