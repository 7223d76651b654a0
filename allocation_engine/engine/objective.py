"""The solver's integer objective: one weight per variable, in tiers, inside int64 by construction.

CP-SAT takes integer coefficients only, and refuses a model ("possible integer overflow") when
the sum over the objective's terms of |coefficient| x (largest value of its variable), call it
the box, exceeds (2^63 - 1) / 2. The box counts every variable at its bound at once, not one plan:
a model of N candidates with one line of q units has a box of N x q x (cost per unit).

Tiers, most important first; each weight is  fill x W_fill + cost x W_cost + tie:
  fill   units left unfilled, only while searching the fullest plan for a shortfall
         (`SourcingProblem.fill_first`): W_fill = W_cost x (C_max + 1), where C_max bounds the
         integer cost of any plan, so one unit filled more outweighs any cost
  cost   the default formula in integer units of 1/r currency: round(cost x r), r = 10^6
         (MICRO) normally. Per unit, per package and per unfilled unit (the penalty)
  tie    (row + 1) for each candidate used (rows are in node-id order), so that equal-cost plans
         break towards lower node ids: W_cost = 1 + the largest tie sum a plan can have (the
         `s` largest rows, s = the most shipments an optimal plan can have), so ties never
         outweigh one integer cost unit

Why the objective fits in int64, for every order the contract admits
  Every weight is >= 0 and every variable lies in [0, ub] with ub <= 10^9 (`limits.MAX_UNITS`:
  a unit count is capped at its line's quantity). `choose` computes the box B in floating point
  for r = MICRO, MICRO/2, MICRO/4, ... and takes the first r with B <= LIMIT = 2^61; failing all
  (r reaching 2^-60, where every cost rounds to 0) it drops the tie tier and repeats. It always
  ends: at r = 0 without ties the cost and tie tiers vanish, and B = W_fill x U = U with
  U <= 200 lines x 10^9 units = 2 x 10^11 < 2^61 (fill-first), or B = 0 (otherwise). The float
  sum of n <= 2^40 non-negative terms, each an integer below 2^63 times one below 2^31, errs by at
  most n x 2^-52 relative, so the true box is below 2^61 x (1 + 2^-12) < 2^62 - 1 <= (2^63-1)/2:
  every coefficient, every product with a bound and every partial sum fits in int64, and CP-SAT's
  check passes. The constraints' boxes are far smaller (unit counts and 0/1 sums, coefficients
  <= 10^9 over at most 10^9 units per variable).

What the limits buy: with the weights of `rules.py` (at most 10^6 per package or unit, 100 per
km, distances <= 20,016 km, node costs <= 10^6) a candidate's cost per unit is at most
~4 x 10^6 (a backorder's wait adds at most 10^4 x 365 ~ 3.7 x 10^6 more, see dated.py), so
the resolution stays at MICRO whenever MICRO x W_cost x (sum of costs over the box) <= 2^61:
for instance an order of 10^4 units over 50 candidates at costs up to 100 (box <= 5 x 10^17),
or any of the F1/F2 benchmark orders. Past that (a bulk order of 10^8 units, a
shortfall search on thousands of units) the resolution coarsens by powers of two: the plan is
optimal for costs rounded to 1/r, which the solver reports as FEASIBLE with `optimality_gap` at
least the rounding bound (each used node and each unit rounds by at most 1/(2r) per plan, so two
plans' costs compare to within (s + U) / r). A fill-first search keeps its fullest plan exact at
any resolution (the fill tier counts units, not money).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from allocation_engine.engine.problem import SourcingProblem

MICRO = 1_000_000  # costs are exact to a millionth of a currency unit per unit/shipment
LIMIT = float(2**61)  # the box allowed, with a factor 2 to spare below CP-SAT's (2^63 - 1) / 2
FINEST_STEP = 2.0**-60  # below this resolution every cost the rules admit rounds to 0

IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Scale:
    """How costs become integer weights for one model (see the module docstring)."""

    resolution: float  # r: integer cost units per currency unit (0: costs left out)
    cost_weight: int  # W_cost: 1 + the largest tie sum (1 without the tie tier)
    fill_weight: int  # W_fill: weight of one unfilled unit in a fill-first search, else 0
    ties: bool

    @property
    def exact(self) -> bool:
        """Costs at the documented resolution (a millionth) and ties broken by node id."""
        return self.resolution == MICRO and self.ties

    def costs(self, values: npt.NDArray[np.float64]) -> IntArray:
        """Costs in integer units, times W_cost (weights of the cost tier)."""
        return np.rint(values * self.resolution).astype(np.int64) * self.cost_weight

    def tie(self, rows: int) -> IntArray:
        """The tie tier of each candidate's `use` variable."""
        return np.arange(1, rows + 1, dtype=np.int64) if self.ties else np.zeros(rows, np.int64)

    def rounding(self, shipments: int, units: int) -> float:
        """How far apart (in currency) the true costs of two plans the model ranks can be."""
        return math.inf if self.resolution == 0 else (shipments + units) / self.resolution


def choose(problem: SourcingProblem, shipments: int) -> Scale:
    """The finest scale whose box fits in LIMIT; `shipments` bounds the shipments of a plan."""
    rows = len(problem.nodes)
    s = max(0, min(rows, shipments))
    # Units each candidate's variables may carry at most: splittable lines as capped, bundles
    # whole where it holds them.
    box_units = np.zeros(rows, dtype=np.float64)
    if problem.split_lines:
        box_units += problem.usable[:, list(problem.split_lines)].sum(axis=1)
    if problem.bundles:
        sizes = np.array([problem.quantity[list(b)].sum() for b in problem.bundles], np.float64)
        box_units += problem.covers.astype(np.float64) @ sizes
    units = float(problem.units)
    largest_ties = float(s * rows - s * (s - 1) // 2)  # rows N, N-1, ..., N-s+1 (as row + 1)
    for ties in (True, False):
        cost_weight = int(largest_ties) + 1 if ties else 1
        tie_box = rows * (rows + 1) / 2 if ties else 0.0
        r = float(MICRO)
        while True:
            scale = _at(problem, r, cost_weight, ties, s)
            box = _box(problem, scale, box_units, units, tie_box)
            if box <= LIMIT:
                return scale
            if r == 0.0:
                break
            r = r / 2.0 ** max(1, math.ceil(math.log2(box / LIMIT)))
            if r < FINEST_STEP:
                r = 0.0
    raise AssertionError("unreachable: without ties, at r = 0, the box is at most the units")


def _at(problem: SourcingProblem, r: float, cost_weight: int, ties: bool, s: int) -> Scale:
    fill_weight = 0
    if problem.fill_first:
        fixed = np.rint(problem.shipment_fixed * r)
        top = float(np.sort(fixed)[::-1][:s].sum()) if len(fixed) else 0.0
        unit = float(np.rint(problem.unit_cost * r).max()) if len(fixed) else 0.0
        # the most integer cost any plan can have: its shipments and every unit at the dearest
        c_max = top + problem.units * unit
        fill_weight = int(cost_weight * (c_max + 1))
    return Scale(r, cost_weight, fill_weight, ties)


def _box(
    problem: SourcingProblem,
    scale: Scale,
    box_units: npt.NDArray[np.float64],
    units: float,
    tie_box: float,
) -> float:
    r, w = scale.resolution, float(scale.cost_weight)
    fixed = np.rint(problem.shipment_fixed * r)
    unit = np.rint(problem.unit_cost * r)
    cost = float(fixed.sum()) + float(unit @ box_units)
    unfilled = 0.0
    if problem.partial:
        if problem.fill_first:
            unfilled = float(scale.fill_weight) * units
        else:
            cost += float(np.rint(problem.penalty * r)) * units
    return w * cost + tie_box + unfilled
