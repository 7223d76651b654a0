"""Bulk-quantity instances and a brute force over a `SourcingProblem`'s own arrays.

`bulk_instances` draws the small fenced instances of strategies.py with bulk quantities: lines of
20 to 300 units over nodes holding 1 to 200 units each (or none), so a line often needs several
nodes and the unit cost, not the shipment, decides. `random_bulk(seed)` is a seeded (numpy)
variant with wider weights, for loops over many seeds; `identical_nodes(seed)` puts equal nodes
in one place, so that many plans tie.

`Brute` enumerates every node set S (up to the shipment limit) of a problem's candidates. With S
fixed, the cost separates by order item: a splittable line is filled from S's nodes cheapest unit
first (and, with partial fulfilment, the rest left unfilled at the penalty, an option of unbounded
supply), a ship-together bundle goes whole to the cheapest holder in S (or is skipped at the
penalty). Charging the shipment cost of every node of S gives a value no lower than the best plan
whose nodes lie in S, and equal to it at S = the plan's own nodes, so the least over all S is the
optimum. For "plans that use node n", the same over the sets S that hold n, with n made to ship at
least one unit of one item it can ship: one unit of line l from n at c_n, the other q_l - 1 filled
as before from S with one unit fewer at n (the cheapest fill with x_n >= 1), or bundle b whole
from n.

Costs are the arrays the engine minimises (`shipment_fixed`, `unit_cost` and `penalty`, the click
& collect bias included), so results compare with `assignment.total_cost`. The oracle in oracle.py
re-derives everything from the raw inputs; tests check that the two agree.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from itertools import combinations

import numpy as np
from hypothesis import strategies as st

from allocation_engine.bench import f2
from allocation_engine.engine import (
    Network,
    Node,
    NodeType,
    Order,
    OrderLine,
    RuleSet,
    ShipTo,
)
from allocation_engine.engine.assignment import Units, empty
from allocation_engine.engine.objective import MICRO
from allocation_engine.engine.problem import SourcingProblem
from tests.engine.strategies import Instance, instances

INF = math.inf


def bulk_stock(quantity: int) -> st.SearchStrategy[int]:
    """None, part of the line (1 to 200 units) or all of it."""
    return st.just(0) | st.integers(1, 200) | st.just(quantity)


def bulk_instances(
    max_nodes: int = 7, max_lines: int = 3, fenced: bool = True
) -> st.SearchStrategy[Instance]:
    """Like strategies.instances, with lines of 20 to 300 units over stocks of 1 to 200 (or 0)."""
    return instances(
        max_nodes,
        max_lines,
        fenced,
        quantities=st.integers(20, 300),
        stock=bulk_stock,
        groups=(None, None, None, "g1"),
        order_id="o-bulk",
    )


def problem_of(case: Instance) -> SourcingProblem:
    return SourcingProblem.build(case.order, case.network, case.inventory, case.rules)


def available_of(instance: f2.Instance) -> dict[tuple[str, str], int]:
    """(node id, sku) -> units of a bench instance, as the oracle takes them."""
    return {
        (instance.network.nodes[int(n)].id, sku): int(units)
        for sku, (held, counts) in instance.inventory.columns.items()
        for n, units in zip(held, counts, strict=True)
    }


def solver_key(problem: SourcingProblem, units: Units) -> tuple[int, int]:
    """What the exact methods rank plans by: the cost in integers at MICRO resolution, then the
    sum of (row + 1) over the rows used (see objective.py), for a complete plan."""
    used = np.flatnonzero(units.sum(axis=1) > 0)
    cost = 0
    for row in used:
        cost += round(float(problem.shipment_fixed[row]) * MICRO)
        cost += int(units[row].sum()) * round(float(problem.unit_cost[row]) * MICRO)
    return cost, int((used + 1).sum())


@dataclass(frozen=True)
class Item:
    lines: tuple[int, ...]
    whole: bool
    size: int  # units


class Brute:
    """Exhaustive search over the node sets of one problem (see the module docstring)."""

    def __init__(self, problem: SourcingProblem) -> None:
        self.problem = problem
        self.n = len(problem.nodes)
        self.f = [float(x) for x in problem.shipment_fixed]
        self.c = [float(x) for x in problem.unit_cost]
        self.usable = problem.usable.tolist()
        self.q = [int(x) for x in problem.quantity]
        self.penalty = float(problem.penalty) if problem.partial else None
        items = [Item((j,), False, self.q[j]) for j in problem.split_lines]
        items += [Item(tuple(b), True, sum(self.q[j] for j in b)) for b in problem.bundles]
        self.items = items
        limit = problem.shipment_limit
        self.limit = self.n if limit is None else min(limit, self.n)

    def sets(self):
        for size in range(0, self.limit + 1):
            yield from combinations(range(self.n), size)

    def _fill(self, line: int, chosen, quantity: int, less: int = -1) -> float:
        """Cheapest way to supply `quantity` of `line` from `chosen` (one unit fewer at `less`),
        inf when impossible."""
        options = sorted(
            (self.c[r], self.usable[r][line] - (r == less)) for r in chosen if self.usable[r][line]
        )
        if self.penalty is not None:
            options.append((self.penalty, quantity))
            options.sort()
        left, cost = quantity, 0.0
        for price, units in options:
            take = min(left, units)
            cost += take * price
            left -= take
            if left == 0:
                return cost
        return cost if left == 0 else INF

    def _best(self, item: Item, chosen) -> float:
        if not item.whole:
            return self._fill(item.lines[0], chosen, item.size)
        col = item.lines[0]
        options = [self.c[r] * item.size for r in chosen if self.usable[r][col]]
        if self.penalty is not None:
            options.append(self.penalty * item.size)
        return min(options, default=INF)

    def _forced(self, item: Item, chosen, row: int) -> float:
        """The item's cheapest cost with `row` shipping at least one unit of it."""
        col = item.lines[0]
        if not self.usable[row][col]:
            return INF
        if item.whole:
            return self.c[row] * item.size
        return self.c[row] + self._fill(col, chosen, item.size - 1, less=row)

    @cached_property
    def table(self) -> dict[tuple[int, ...], tuple[float, list[float]]]:
        """Per node set: its shipment costs plus the best cost of each item."""
        out = {}
        for chosen in self.sets():
            fixed = sum(self.f[r] for r in chosen)
            out[chosen] = (fixed, [self._best(item, chosen) for item in self.items])
        return out

    @cached_property
    def optimum(self) -> float:
        """The least cost of any valid plan (inf when there is none)."""
        return min((fixed + sum(parts) for fixed, parts in self.table.values()), default=INF)

    @cached_property
    def using(self) -> list[float]:
        """Per candidate: the least cost of a valid plan in which it ships (inf: none)."""
        out = [INF] * self.n
        for chosen, (fixed, parts) in self.table.items():
            base = fixed + sum(parts)
            if math.isinf(base):
                continue  # some item cannot be shipped from these nodes at all
            for row in chosen:
                for item, part in zip(self.items, parts, strict=True):
                    value = base - part + self._forced(item, chosen, row)
                    if value < out[row]:
                        out[row] = value
        return out

    @cached_property
    def fewest(self) -> int | None:
        """The fewest candidates that together hold the whole order (None: even all fall short);
        shipment limit or not."""
        q = self.q
        for size in range(1, self.n + 1):
            for chosen in combinations(range(self.n), size):
                if all(sum(self.usable[r][j] for r in chosen) >= q[j] for j in range(len(q))):
                    return size
        return None

    def fill(self, chosen) -> Units | None:
        """The cheapest-first complete plan on the nodes `chosen` (lowest row first among equal
        unit costs), None when they cannot ship everything."""
        units = empty(self.problem)
        members = set(chosen)
        by_cost = sorted(members, key=lambda r: (self.c[r], r))
        for item in self.items:
            if item.whole:
                holder = next((r for r in by_cost if self.usable[r][item.lines[0]]), None)
                if holder is None:
                    return None
                for j in item.lines:
                    units[holder, j] = self.q[j]
                continue
            (j,) = item.lines
            left = self.q[j]
            for r in by_cost:
                take = min(left, self.usable[r][j])
                units[r, j] = take
                left -= take
            if left:
                return None
        return units

    @cached_property
    def _ranked(self) -> tuple[tuple[int, int] | None, list[Units]]:
        best, plans = None, []
        for chosen in self.sets():
            units = self.fill(chosen) if chosen else None
            if units is None:
                continue
            key = solver_key(self.problem, units)
            if best is None or key < best:
                best, plans = key, [units]
            elif key == best and not any(np.array_equal(units, p) for p in plans):
                plans.append(units)
        return best, plans

    @property
    def best_key(self) -> tuple[int, int] | None:
        """The least `solver_key` over all complete plans (None: there is none). A plan P of
        that rank on nodes U is matched by the fill of U: no dearer, on nodes within U, so of no
        higher row sum; hence the least over every set's fill."""
        return self._ranked[0]

    @property
    def ranked_once(self) -> bool:
        """Whether a single plan has the least rank: one node set's fill reaches it, and in that
        fill no unit could move between two of its nodes of the same integer unit cost (a
        bundle between two such holders). Conservative: may say False for a unique plan."""
        best, plans = self._ranked
        if best is None or len(plans) != 1:
            return False
        (units,) = plans
        used = np.flatnonzero(units.sum(axis=1) > 0)
        price = {r: round(self.c[r] * MICRO) for r in used}
        for item in self.items:
            col = item.lines[0]
            for a in used:
                for b in used:
                    if a == b or price[a] != price[b]:
                        continue
                    if not (self.usable[a][col] and self.usable[b][col]):
                        continue
                    if item.whole or (units[a, col] > 0 and units[b, col] < self.usable[b][col]):
                        return False
        return True


def random_bulk(
    seed: int, max_nodes: int = 8, fenced: bool = False, ties: bool = False
) -> Instance:
    """A seeded bulk instance (numpy, no hypothesis): 3 to `max_nodes` nodes, 1 to 3 lines of 20
    to 300 units, stocks of 1 to 200 (a third of them 0), so most orders need several nodes;
    random shipment limit, ship-together group, line split, partial fulfilment and weights.
    `ties`: every node and the customer in one place, no distance costs and two levels of
    handling cost and surcharge, so many plans cost the same."""
    rng = np.random.default_rng([20_260_402, seed, int(ties)])
    handling, surcharge = (
        ([0.0, 0.25], [0.0, 1.5]) if ties else ([0.0, 0.25, 1.0, 2.5], [0.0, 1.5, 4.0, 20.0])
    )
    place = (51.0, 10.0)

    def where() -> tuple[float, float]:
        if ties:
            return place
        return float(rng.uniform(47.3, 55.0)), float(rng.uniform(6.0, 15.0))

    count = int(rng.integers(3, max_nodes + 1))
    kinds = list(NodeType)
    network = Network.of(
        Node(
            f"N{i:02d}",
            kinds[int(rng.integers(len(kinds)))],
            *where(),
            "DE",
            unit_handling_cost=float(rng.choice(handling)),
            shipment_surcharge=float(rng.choice(surcharge)),
            active=not (fenced and rng.random() < 0.1),
        )
        for i in range(count)
    )
    n_lines = int(rng.integers(1, 4))
    group = rng.random() < 0.2
    lines = tuple(
        OrderLine(
            f"SKU-{j}",
            int(rng.integers(20, 301)),
            "g1" if group and j < 2 and n_lines > 1 else None,
        )
        for j in range(n_lines)
    )
    available = {}
    for node in network.nodes:
        for line in lines:
            draw = rng.random()
            if draw < 0.33:
                continue
            units = line.quantity if draw > 0.93 else int(rng.integers(1, 201))
            available[node.id, line.sku] = units
    partial = rng.random() < 0.25
    rules = RuleSet(
        allow_partial=partial,
        unfilled_unit_penalty=float(rng.choice([0.5, 5.0, 30.0])) if partial else 0.0,
        max_shipments=[None, None, 2, 3, 4][int(rng.integers(5))],
        allow_line_split=rng.random() < 0.85,
        shipment_cost=float(rng.choice([1.0, 4.9, 25.0])),
        unit_cost=float(rng.choice([0.1, 0.45, 2.0])),
        shipment_distance_cost=0.0 if ties else float(rng.choice([0.0, 0.01])),
        unit_distance_cost=0.0 if ties else float(rng.choice([0.000541 / 1.609344, 0.01])),
        max_distance_km=500.0 if fenced and rng.random() < 0.3 else None,
    )
    order = Order(
        id=f"o-bulk-{seed}",
        lines=lines,
        ship_to=ShipTo(*where(), "DE"),
    )
    return Instance(network, available, order, rules)


def identical_nodes(seed: int) -> Instance:
    """4 to 6 warehouses in one place, with the customer, at one cost, holding random parts of
    1 to 3 lines: every plan on k nodes costs the same, so the solver's rank decides between
    node sets by their rows alone (and, within a set, nothing decides which node ships what)."""
    rng = np.random.default_rng([20_260_403, seed])
    count, n_lines = int(rng.integers(4, 7)), int(rng.integers(1, 4))
    network = Network.of(Node(f"N{i}", NodeType.WAREHOUSE, 51.0, 10.0, "DE") for i in range(count))
    quantity = rng.integers(2, 8, n_lines)
    lines = tuple(OrderLine(f"SKU-{j}", int(quantity[j])) for j in range(n_lines))
    available = {
        (node.id, line.sku): int(rng.integers(0, line.quantity + 1))
        for node in network.nodes
        for line in lines
    }
    rules = RuleSet(
        shipment_distance_cost=0.0,
        unit_distance_cost=0.0,
        max_shipments=[None, 2, 3][int(rng.integers(3))],
    )
    order = Order(id=f"o-same-{seed}", lines=lines, ship_to=ShipTo(51.0, 10.0, "DE"))
    return Instance(network, available, order, rules)
