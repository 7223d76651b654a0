"""Backorders: the sourcing problem dated by incoming supply ("later and near" or "now and far").

Under `rules.backorders.enabled`, a node n may ship an order on day 0 or on the day any of its
lots of the order's skus arrives (within `max_wait_days`); on day t it holds its on-hand stock
plus every such lot due by then. A shipment leaving on day t costs the usual formula plus
`delay_cost_per_unit_day` x t per unit. A node ships an order once, when everything it sends is
there: at most one day per node, so one package per node as without supply.

The model is the ordinary one (solver.py) on virtual candidates, one row per (node, day) with
that day's stock and costs, and "at most one row of each node ships" (`rows_of`). What keeps it
exact, and quick:
- `base`, the problem with every lot counted as if it were there (each node at its latest
  day), has every dated plan's node sets with at least as much stock: its fences decide
  whether the order can be filled at all (and the shortfalls), its fewest shipments is a floor
  for the dated plans, and a plan of it, each node dated to the first day its share is there
  (`date`), is a valid dated plan: that is how the greedy peers answer.
- the solver's hint is the cheapest greedy plan on the stock by one of a few horizons
  (`greedy`), delay costs included; one row per node, so a valid dated plan as well.
- a row with no more of the order than its node's previous day is dropped: the earlier row
  ships the same for no more.
- a row whose lower bound (`reduction.lower_bounds`, which holds on any rows) exceeds the
  hint's cost is dropped (COST_BOUND): every plan costing at most the hint keeps its rows.
The dominance and enumeration shortcuts of reduction.py assume one row per node and are not
used. The solver's tie-break (lower rows first) ships each node on its earliest such day.

Click & collect: a lot due at the pickup store is the store's own stock; under
`own_stock_first` the plan takes it before any transfer, however late (within the wait).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from allocation_engine.engine.assignment import Units, build_plan, empty, total_cost
from allocation_engine.engine.greedy import cheapest_cover
from allocation_engine.engine.inventory import Inventory
from allocation_engine.engine.network import FloatArray, IntArray, Network
from allocation_engine.engine.order import Order
from allocation_engine.engine.plan import Plan, Shipment, Status
from allocation_engine.engine.problem import Reason, SourcingProblem, _above_any_plan
from allocation_engine.engine.reduction import lower_bounds
from allocation_engine.engine.rules import RuleSet
from allocation_engine.engine.supply import MAX_SUPPLY_DAYS, IncomingLot, LotTake
from allocation_engine.errors import ProblemCollector

TOLERANCE = 1e-9  # relative slack on a cost bound before a row is dropped (float rounding)
HORIZONS = 4  # days at most on which a greedy plan is tried for the solver's hint


def due_lots(
    order: Order, network: Network, rules: RuleSet, lots: Sequence[IncomingLot]
) -> list[IncomingLot]:
    """The lots a plan of `order` may wait for: of its skus, due within `max_wait_days`.
    Every lot is checked first: an unknown node or a repeated lot id is an InvalidInput naming
    `lots[i].node_id` or `lots[i].id`."""
    problems = ProblemCollector()
    seen: set[str] = set()
    for i, lot in enumerate(lots):
        if lot.node_id not in network.index:
            problems.add(f"lots[{i}].node_id", lot.node_id, "unknown node")
        if lot.id in seen:
            problems.add(f"lots[{i}].id", lot.id, "duplicate lot id")
        seen.add(lot.id)
    problems.raise_if_any()
    skus = set(order.skus)
    wait = rules.backorders.max_wait_days
    return [lot for lot in lots if lot.sku in skus and lot.day <= wait]


def with_lots(inventory: Inventory, lots: Sequence[IncomingLot]) -> Inventory:
    """`inventory` with every lot counted as if it were on the shelf (the latest day)."""
    added: dict[tuple[str, str], int] = {}
    for lot in lots:
        added[lot.node_id, lot.sku] = added.get((lot.node_id, lot.sku), 0) + lot.units
    return inventory.plus(added)


@dataclass(frozen=True, eq=False)
class DatedProblem:
    """`base` (every lot counted, see the module docstring) and `rows`, its candidates by day.

    Per row: its `day`, and `of`, its node's row in `base`. `on_hand` (base rows x lines) is
    each node's shelf stock, uncapped; `lots[base row, line]` that node's lots of the line's
    sku, earliest first (then by id): the order shipments take them in (`takes`).
    """

    base: SourcingProblem
    rows: SourcingProblem
    day: IntArray
    of: IntArray
    on_hand: npt.NDArray[np.int64]
    lots: dict[tuple[int, int], list[IncomingLot]]

    @classmethod
    def build(
        cls, base: SourcingProblem, with_supply: Inventory, lots: Sequence[IncomingLot]
    ) -> DatedProblem:
        """`base` is the problem on `with_supply` (`with_lots` of the shelf and `lots`)."""
        network, skus, q = base.network, base.order.skus, base.quantity
        row_of = {int(node): i for i, node in enumerate(base.nodes)}
        column = {sku: j for j, sku in enumerate(skus)}
        by_row: dict[tuple[int, int], list[IncomingLot]] = {}
        for lot in lots:
            i = row_of.get(network.index[lot.node_id])
            if i is not None:
                by_row.setdefault((i, column[lot.sku]), []).append(lot)
        for listed in by_row.values():
            listed.sort(key=lambda lot: (lot.day, lot.id))
        on_hand = with_supply.matrix(skus)[base.nodes]
        table = [(i, j, lot.day, lot.units) for (i, j), ls in by_row.items() for lot in ls]
        lot_row, lot_line, lot_day, lot_units = np.array(table, dtype=np.int64).reshape(-1, 4).T
        np.subtract.at(on_hand, (lot_row, lot_line), lot_units)
        # the (node, day) pairs: each node today and on each of its lots' days, by node then day
        span = MAX_SUPPLY_DAYS + 1
        keys = np.unique(
            np.concatenate([np.arange(len(base.nodes)) * span, lot_row * span + lot_day])
        )
        of_rows, day_rows = keys // span, keys % span
        # each lot adds its units from its own pair on, to the end of its node's pairs
        arriving = np.zeros((len(keys), len(q)), dtype=np.int64)
        np.add.at(arriving, (np.searchsorted(keys, lot_row * span + lot_day), lot_line), lot_units)
        running = np.cumsum(arriving, axis=0)
        first = np.searchsorted(of_rows, of_rows)  # each pair's node's first pair
        due = running - running[first] + arriving[first]
        stock = np.minimum(on_hand[of_rows] + due, q)
        # a pair no better stocked than its node's previous one ships the same for no less
        same = np.zeros(len(keys), dtype=bool)
        same[1:] = (of_rows[1:] == of_rows[:-1]) & (stock[1:] == stock[:-1]).all(axis=1)
        of_rows, day_rows, stock_rows = of_rows[~same], day_rows[~same], stock[~same]
        rows = _rows(base, of_rows, day_rows, stock_rows)
        useful = np.asarray(rows.usable.any(axis=1), dtype=bool)
        return cls(
            base=base,
            rows=rows.subset(useful, Reason.NO_FEASIBLE_USE),
            day=day_rows[useful],
            of=of_rows[useful],
            on_hand=on_hand,
            lots=by_row,
        )

    def rows_of(self) -> list[list[int]]:
        """The rows of each node that has more than one: at most one of them ships."""
        groups: dict[int, list[int]] = {}
        for row, i in enumerate(self.of.tolist()):
            groups.setdefault(i, []).append(row)
        return [rows for rows in groups.values() if len(rows) > 1]

    def date(self, units: Units) -> Units:
        """A plan of `base` as a plan of `rows`: each node on the first day it holds its share."""
        dated = empty(self.rows)
        for i in np.flatnonzero(units.sum(axis=1) > 0):
            (candidates,) = np.nonzero(self.of == i)  # its rows, earliest first
            fits = (self.rows.available[candidates] >= units[i]).all(axis=1)
            dated[candidates[np.argmax(fits)]] = units[i]
        return dated

    def greedy(self) -> Units | None:
        """The cheapest of the greedy plans (`greedy.cheapest_cover`, delay costs included) on
        the stock each node holds by a horizon: today, the last day, and up to HORIZONS days
        between (lot days, evenly spread). Each is a dated plan, each node at its earliest day
        for its share; None when no horizon has one."""
        days = np.unique(self.day)
        if len(days) > HORIZONS:
            days = days[np.linspace(0, len(days) - 1, HORIZONS).round().astype(np.int64)]
        plans = []
        for t in days.tolist():
            # each node's last row by t (rows are by node, then day)
            keep = self.day <= t
            keep[:-1] &= ~((self.of[:-1] == self.of[1:]) & keep[1:])
            found = cheapest_cover(self.rows.subset(keep, Reason.CANDIDATE))
            if found is not None:
                units = np.zeros_like(self.base.available)
                units[self.of[keep]] = found
                plans.append(self.date(units))
        if not plans:
            return None
        return min(plans, key=lambda units: total_cost(self.rows, units))

    def pruned(self, hint: Units, at_least: int) -> tuple[DatedProblem, Units, FloatArray]:
        """Without the rows no plan as cheap as `hint` can use (their lower bound is above its
        cost), with `hint` on the rows kept, and per network node the least lower bound of
        its rows (NaN where it has none), which explanations quote."""
        bound, possible = lower_bounds(self.rows, at_least)
        cost = total_cost(self.rows, hint)
        keep = (possible & (bound <= cost + TOLERANCE * (1.0 + abs(cost)))) | (hint.sum(axis=1) > 0)
        by_node = np.full(len(self.rows.network), np.nan)
        np.fmin.at(by_node, self.rows.nodes, bound)
        kept = replace(
            self,
            rows=self.rows.subset(keep, Reason.COST_BOUND),
            day=self.day[keep],
            of=self.of[keep],
        )
        return kept, hint[keep], by_node

    def takes(self, row: int, shipment: Shipment) -> Shipment:
        """The shipment of `row`, dated: its day, and what it takes from lots after the shelf
        (each line from its node's lots due by then, earliest first)."""
        i, t = int(self.of[row]), int(self.day[row])
        column = {sku: j for j, sku in enumerate(self.base.order.skus)}
        taken: list[LotTake] = []
        for line in shipment.lines:
            j = column[line.sku]
            left = line.quantity - min(line.quantity, int(self.on_hand[i, j]))
            for lot in self.lots.get((i, j), ()):
                if left == 0 or lot.day > t:
                    break
                units = min(left, lot.units)
                taken.append(LotTake(lot.id, lot.sku, units))
                left -= units
        return replace(shipment, ship_day=t, lots=tuple(taken))

    def plan(
        self,
        units: Units,
        *,
        method: str,
        status: Status,
        gap: float,
        bound: FloatArray | None = None,
    ) -> Plan:
        """The plan of an assignment to `rows`: one dated shipment per node used."""
        return build_plan(
            self.rows,
            units,
            method=method,
            status=status,
            gap=gap,
            bound=bound,
            candidates=len(self.base.nodes),
            solver_candidates=len(np.unique(self.rows.nodes)),
            dating=self.takes,
        )


def _rows(
    base: SourcingProblem, of: IntArray, day: IntArray, available: npt.NDArray[np.int64]
) -> SourcingProblem:
    """`base` with one row per (node, day): that day's stock, its unit cost plus the delay cost.
    Under click & collect's own stock first, the bias is recomputed above any dated plan."""
    real = base.real_unit_cost[of] + base.rules.backorders.delay_cost_per_unit_day * day
    nodes, fixed = base.nodes[of], base.shipment_fixed[of]
    bias = 0.0
    if base.transfer_bias:
        bias = _above_any_plan(base.quantity, fixed, real, base.rules)
    return replace(
        base,
        nodes=nodes,
        distance_km=base.distance_km[of],
        shipment_fixed=fixed,
        unit_cost=np.where(nodes == base.pickup, real, real + bias),
        available=available,
        transfer_bias=bias,
    )
