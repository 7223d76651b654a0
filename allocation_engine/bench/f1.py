"""F1: the multi-item fulfilment setting of Jasin & Sinha (Operations Research, 2015).

The setting the later papers reuse (W. Ma 2022; Amil, Makhdoumi & Wei), rebuilt from its published
description and data (`allocation_engine/data/`, US metro areas and fulfilment centres):

- Order types: for each size s = 1..max_size, `types_per_size` random s-item subsets. Size weights
  (and an extra weight for "no order this period") and within-size weights are uniform random,
  normalised; type q arrives from city j with probability P(q) x population_j / total population,
  one arrival per period, T periods.
- Each centre carries each item with probability `carry`. A city's demand for an item is routed to
  the closest centre carrying it, giving a rate d per period; starting stock is
  round(T d + 0.5 sqrt(T d (1 - d))).
- Cost: 8.759 per package, 0.423 + 0.000541 x miles per unit (haversine). An item that cannot be
  filled goes to a dummy centre: 2 x 8.759 once per order plus 2 x (0.423 + 0.000541 x miles to the
  farthest centre) per item.

How the dummy becomes part of our network, exactly: each city j gets its own node UNFILLED-Cjj at
the city itself (distance 0) with unlimited stock of every item, a shipment surcharge of 8.759 and a
unit handling cost of 2 x (0.423 + 0.000541 x max miles) - 0.423, and it ships only to region Cjj
(each city is its own ship-to "country"), so the engine's formula charges it exactly the paper's
dummy cost and only orders from city j can use it. Shipments from these nodes count as unfilled
units in every KPI. Distances use the engine's haversine (Earth radius 6371.0088 km, 1.609344 km per
mile); the papers' code uses 6371 km and 1.61, a difference below 0.1 % in any distance.

The papers' "myopic" baseline (each item from the closest centre initially assigned to carry it,
unfilled if that centre is out) is `myopic_plan`; the greedy peers choose among the real centres
only (`peer_plan`); the LP yardstick lives in `lp_bound.py`.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterator
from dataclasses import dataclass, replace
from functools import cached_property
from importlib import resources

import numpy as np
import numpy.typing as npt

from allocation_engine.bench.harness import Planner
from allocation_engine.engine import (
    Inventory,
    Network,
    Node,
    NodeType,
    Order,
    OrderLine,
    Plan,
    RuleSet,
    ShipTo,
    Status,
)
from allocation_engine.engine.allocator import PEERS
from allocation_engine.engine.assignment import build_plan, empty
from allocation_engine.engine.geo import haversine_km
from allocation_engine.engine.problem import Reason, SourcingProblem
from allocation_engine.engine.rules import KM_PER_MILE

SEED = 2015
PACKAGE_COST = 8.759
UNIT_COST = 0.423
COST_PER_UNIT_MILE = 0.000541
SAFETY_Z = 0.5
UNLIMITED = 10**12  # the dummy nodes' stock: more than any sequence can draw
DUMMY_PREFIX = "UNFILLED-"


@dataclass(frozen=True)
class Setting:
    """One experimental setting of the papers."""

    name: str
    cities_file: str
    centres_file: str
    items: int
    max_size: int
    types_per_size: int
    periods: int  # T, arrivals per sequence
    carry: float


SETTINGS = {
    s.name: s
    for s in (
        Setting(
            "small-0.75",
            "cities_warmup.csv",
            "fulfillment_centers_warmup.csv",
            20,
            5,
            5,
            10_000,
            0.75,
        ),
        Setting("large-0.5", "cities.csv", "fulfillment_centers.csv", 100, 10, 10, 100_000, 0.5),
        Setting("large-0.25", "cities.csv", "fulfillment_centers.csv", 100, 10, 10, 100_000, 0.25),
    )
}


@dataclass(frozen=True)
class Place:
    name: str
    latitude: float
    longitude: float
    population: int = 0


def load_places(file: str) -> tuple[Place, ...]:
    """Cities (with population) or centres from the package's data folder."""
    text = resources.files("allocation_engine").joinpath("data", file).read_text(encoding="utf-8")
    rows = list(csv.DictReader(text.splitlines()))
    return tuple(
        Place(
            row.get("City") or row["Facility"],
            float(row["Latitude"]),
            float(row["Longitude"]),
            int(row.get("Population") or 0),
        )
        for row in rows
    )


def region(city: int) -> str:
    """The ship-to region code of city `city` (its dummy node ships only there)."""
    return f"C{city:02d}"


@dataclass(frozen=True, eq=False)
class Instance:
    """One random instance of a setting: order types, arrival rates, carrying and stock."""

    setting: Setting
    number: int
    cities: tuple[Place, ...]
    centres: tuple[Place, ...]
    types: tuple[tuple[int, ...], ...]  # item indices per order type; type 0 is "no order"
    arrival: npt.NDArray[np.float64]  # (types, cities): probability per period, sums to 1
    closest: npt.NDArray[np.int64]  # (items, cities): closest centre carrying the item, or -1
    stock: npt.NDArray[np.int64]  # (centres, items): starting inventory

    @classmethod
    def generate(cls, setting: Setting, number: int, periods: int | None = None) -> Instance:
        """Instance `number` of `setting` (fixed seed); `periods` overrides T for shorter runs."""
        rng = np.random.default_rng([SEED, list(SETTINGS).index(setting.name), number])
        if periods is not None:
            setting = replace(setting, periods=periods)
        cities, centres = load_places(setting.cities_file), load_places(setting.centres_file)
        n_items, n_size, n_per = setting.items, setting.max_size, setting.types_per_size

        # Order types and their probabilities (type 0: no order this period).
        types: list[tuple[int, ...]] = [()]
        for size in range(1, n_size + 1):
            types += [tuple(rng.permutation(n_items)[:size].tolist()) for _ in range(n_per)]
        no_order, size_weight = rng.random(), rng.random(n_size)
        total = no_order + size_weight.sum()
        type_p = [no_order / total]
        for size in range(n_size):
            within = rng.random(n_per)
            type_p += (size_weight[size] / total * within / within.sum()).tolist()
        population = np.array([c.population for c in cities], dtype=np.float64)
        arrival = np.outer(type_p, population / population.sum())

        # Carrying, the myopic routing, and the starting stock from the routed demand rates.
        miles = _miles(centres, cities)
        closest = np.full((n_items, len(cities)), -1, dtype=np.int64)
        rate = np.zeros((len(centres), n_items))
        contains = np.zeros((len(types), n_items), dtype=bool)
        for q, items in enumerate(types):
            contains[q, list(items)] = True
        for i in range(n_items):
            carries = rng.random(len(centres)) < setting.carry
            if carries.any():
                masked = np.where(carries[:, None], miles, np.inf)
                closest[i] = masked.argmin(axis=0)
            demand = arrival[contains[:, i]].sum(axis=0)  # per city, per period
            for j in np.flatnonzero(closest[i] >= 0):
                rate[closest[i, j], i] += demand[j]
        t = setting.periods
        stock = np.round(t * rate + SAFETY_Z * np.sqrt(t * rate * (1 - rate))).astype(np.int64)
        return cls(setting, number, cities, centres, tuple(types), arrival, closest, stock)

    # ----- the network the engine plans on ------------------------------------------------------

    @cached_property
    def network(self) -> Network:
        """The centres (warehouses) plus one dummy node per city (see the module docstring)."""
        far = _miles(self.centres, self.cities).max(axis=0)
        nodes = [
            Node(f"FC-{c.name}", NodeType.WAREHOUSE, c.latitude, c.longitude, "US")
            for c in self.centres
        ]
        nodes += [
            Node(
                f"{DUMMY_PREFIX}{region(j)}",
                NodeType.SUPPLIER,
                city.latitude,
                city.longitude,
                "US",
                ships_to=frozenset({region(j)}),
                shipment_surcharge=PACKAGE_COST,
                unit_handling_cost=2 * (UNIT_COST + COST_PER_UNIT_MILE * float(far[j])) - UNIT_COST,
                tags=frozenset({"unfilled"}),
            )
            for j, city in enumerate(self.cities)
        ]
        return Network.of(nodes)

    @property
    def unfilled_nodes(self) -> frozenset[str]:
        return frozenset(f"{DUMMY_PREFIX}{region(j)}" for j in range(len(self.cities)))

    def centre_index(self) -> npt.NDArray[np.intp]:
        """Network index of each centre, in centre order."""
        return np.array([self.network.index[f"FC-{c.name}"] for c in self.centres], dtype=np.intp)

    def dummy_index(self) -> npt.NDArray[np.intp]:
        """Network index of each city's dummy node, in city order."""
        return np.array(
            [self.network.index[f"{DUMMY_PREFIX}{region(j)}"] for j in range(len(self.cities))],
            dtype=np.intp,
        )

    def inventory(self) -> Inventory:
        """Starting stock at the centres, and unlimited stock at every dummy."""
        centres, dummies = self.centre_index(), np.sort(self.dummy_index())
        columns = {}
        for i in range(self.setting.items):
            held = np.flatnonzero(self.stock[:, i] > 0)
            nodes = np.concatenate([centres[held], dummies])
            units = np.concatenate([self.stock[held, i], np.full(len(dummies), UNLIMITED)])
            by_node = np.argsort(nodes)
            columns[item(i)] = (nodes[by_node].astype(np.intp), units[by_node].astype(np.int64))
        return Inventory(self.network, columns)

    def rules(self) -> RuleSet:
        """The papers' weights: the engine's defaults (the dummy nodes stand in for partial
        fulfilment, so no unfilled-unit penalty is needed)."""
        return RuleSet(name="f1-literature")

    def _draws(self, sequence: int) -> npt.NDArray[np.int64]:
        """Sequence `sequence`'s T arrivals, each an index into `arrival.ravel()`."""
        rng = np.random.default_rng(
            [SEED, list(SETTINGS).index(self.setting.name), self.number, 1_000 + sequence]
        )
        p = self.arrival.ravel()
        return rng.choice(len(p), size=self.setting.periods, p=p / p.sum())

    def orders(self, sequence: int) -> Iterator[Order]:
        """Sequence `sequence`: T random arrivals, periods with no order skipped."""
        for t, draw in enumerate(self._draws(sequence).tolist()):
            q, j = divmod(draw, len(self.cities))
            if not self.types[q]:
                continue
            city = self.cities[j]
            yield Order(
                id=f"{self.setting.name}/{self.number}/{sequence}/{t}",
                lines=tuple(OrderLine(item(i), 1) for i in self.types[q]),
                ship_to=ShipTo(city.latitude, city.longitude, region(j)),
            )

    def expected_demand(self) -> npt.NDArray[np.float64]:
        """(types, cities): expected arrivals over T periods, T x lambda."""
        return np.asarray(self.setting.periods * self.arrival)

    def realised_demand(self, sequence: int) -> npt.NDArray[np.float64]:
        """(types, cities): how many of each order type each city sent in the sequence."""
        counts = np.bincount(self._draws(sequence), minlength=self.arrival.size)
        return counts.reshape(self.arrival.shape).astype(np.float64)


def item(i: int) -> str:
    """The sku of item `i`."""
    return f"ITEM-{i:03d}"


def item_index(sku: str) -> int:
    return int(sku.removeprefix("ITEM-"))


def city_of(order: Order) -> int:
    """The city an F1 order comes from (its ship-to region)."""
    return int(order.ship_to.country.removeprefix("C"))


def _miles(centres: tuple[Place, ...], cities: tuple[Place, ...]) -> npt.NDArray[np.float64]:
    """(centres, cities) haversine distances in miles, as the engine computes them."""
    lat = np.array([c.latitude for c in centres])
    lon = np.array([c.longitude for c in centres])
    km = np.column_stack([haversine_km(lat, lon, c.latitude, c.longitude) for c in cities])
    return np.asarray(km / KM_PER_MILE)


def _dummy_row(instance: Instance, problem: SourcingProblem) -> int:
    """The candidate row of the order's city's dummy node."""
    dummy = int(instance.dummy_index()[city_of(problem.order)])
    return int(np.flatnonzero(problem.nodes == dummy)[0])


def myopic_plan(instance: Instance, order: Order, inventory: Inventory, rules: RuleSet) -> Plan:
    """The papers' myopic policy: each item from the closest centre initially assigned to carry
    it, or from the city's dummy (unfilled) when there is none or it has run out."""
    problem = SourcingProblem.build(order, instance.network, inventory, rules)
    row_of = {int(n): r for r, n in enumerate(problem.nodes)}
    city, dummy, centres = city_of(order), _dummy_row(instance, problem), instance.centre_index()
    units = empty(problem)
    for column, line in enumerate(order.lines):
        k = int(instance.closest[item_index(line.sku), city])
        row = row_of.get(int(centres[k])) if k >= 0 else None
        if row is None or problem.available[row, column] < line.quantity:
            row = dummy
        units[row, column] = line.quantity
    return build_plan(problem, units, method="myopic", status=Status.FEASIBLE, gap=math.nan)


def peer_plan(
    instance: Instance, method: str, order: Order, inventory: Inventory, rules: RuleSet
) -> Plan:
    """A greedy peer ("shopify" or "salesforce") choosing among the real centres only, as the
    industry's routing would; whatever it leaves unfilled goes to the city's dummy node. (Left to
    themselves, the peers would take the dummy: it holds everything at distance 0.)"""
    problem = SourcingProblem.build(order, instance.network, inventory, rules)
    dummy = _dummy_row(instance, problem)
    real = np.arange(len(problem.nodes)) != dummy
    centres = replace(
        problem.subset(real, Reason.NOT_CHOSEN),
        rules=replace(rules, allow_partial=True, unfilled_unit_penalty=1e6),  # peers ignore it
    )
    shipped = PEERS[method](centres)
    units = empty(problem)
    if shipped is not None:
        units[real] = shipped
    units[dummy] = problem.quantity - units.sum(axis=0)
    return build_plan(problem, units, method=method, status=Status.FEASIBLE, gap=math.nan)


def planners(instance: Instance) -> dict[str, Planner]:
    """The F1 policies besides the exact ones: both greedy peers and the papers' myopic rule."""

    def peer(method: str) -> Planner:
        def plan(order: Order, network: Network, inventory: Inventory, rules: RuleSet) -> Plan:
            return peer_plan(instance, method, order, inventory, rules)

        return plan

    def myopic(order: Order, network: Network, inventory: Inventory, rules: RuleSet) -> Plan:
        return myopic_plan(instance, order, inventory, rules)

    return {"shopify": peer("shopify"), "salesforce": peer("salesforce"), "myopic": myopic}
