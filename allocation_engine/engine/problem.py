"""One order's sourcing problem: the candidate nodes that pass every fence, with their costs.

`SourcingProblem.build` applies the fences to the whole network in a few array operations and
records, per node, the first fence that excluded it (for explanations). What remains is what every
method (the optimiser, the reference model and the greedy peers) works on, so they all see exactly
the same feasible set and the same cost formula.

Click & collect. Distances are measured to the pickup store, whose own stock is no package: a
unit the store holds costs only the store's `unit_handling_cost` (no shipment cost, no per-unit
cost, d = 0). Every other candidate sends a transfer to the store, priced by the default formula
with d measured to the store (shipment_cost + surcharge + shipment_distance_cost x d per package,
unit_cost + handling + unit_distance_cost x d per unit). Under `click_collect.own_stock_first`
(the default) the plan also takes all the store's own stock can give before transferring anything:
every unit not taken from the store (transferred, or left unfilled) carries a bias M larger than
the cost of any plan, so minimising the biased cost is exactly "most units from the store, then
the cheapest". The bias is in the cost arrays every method optimises (so the reduction's proofs
hold for it unchanged); plans report the true costs (`real_unit_cost`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import IntEnum
from functools import cached_property

import numpy as np
import numpy.typing as npt

from allocation_engine.engine.geo import geodesic_km, haversine_km
from allocation_engine.engine.inventory import Inventory
from allocation_engine.engine.network import (
    NODE_TYPES,
    BoolArray,
    FloatArray,
    IntArray,
    Network,
    NodeType,
)
from allocation_engine.engine.order import DeliveryMode, Order
from allocation_engine.engine.rules import RuleSet
from allocation_engine.errors import InvalidInput


class Reason(IntEnum):
    """Why a node does or does not ship this order (first fence that applied wins)."""

    CANDIDATE = 0
    INACTIVE = 1
    NODE_TYPE_NOT_ALLOWED = 2
    NOT_PICKUP_SOURCE = 3
    DOES_NOT_SHIP_TO_COUNTRY = 4
    NO_CAPACITY = 5
    NO_STOCK = 6
    TOO_FAR = 7
    NO_FEASIBLE_USE = 8  # using it would break the shipment limit or a ship-together group
    COST_BOUND = 9  # any plan using it costs more than a plan already known
    DOMINATED = 10  # a cheaper node can take over whatever it would ship
    NOT_CHOSEN = 11
    CHOSEN = 12
    EXCLUDED_FOR_ORDER = 13  # this order's own fence: a node that rejected part of it


@dataclass(frozen=True, eq=False)
class SourcingProblem:
    """Candidates (rows) by order lines (columns), in network order, i.e. sorted by node id.

    `available` is capped at each line's quantity. Lines in `bundles` ship whole from one node;
    lines in `split_lines` may be split across nodes unit by unit. `unit_cost` (and `penalty`)
    include the click & collect bias `transfer_bias` (0 otherwise); `fenced_nodes` are the nodes
    that passed the fences, before any was dropped as useless or by reduction, and `stock` the
    whole network's capped stock (what a sku alone could get, see `alone`). `fill_first` marks
    the search for the fullest plan of an order that cannot be filled (the solver then ranks
    units filled above any cost).
    """

    order: Order
    rules: RuleSet
    network: Network
    nodes: IntArray
    distance_km: FloatArray
    shipment_fixed: FloatArray
    unit_cost: FloatArray
    available: npt.NDArray[np.int64]
    quantity: npt.NDArray[np.int64]
    bundles: tuple[tuple[int, ...], ...]
    split_lines: tuple[int, ...]
    reason: npt.NDArray[np.int8] = field(repr=False)
    network_distance_km: FloatArray = field(repr=False)
    stock: npt.NDArray[np.int64] = field(repr=False)
    fenced_nodes: IntArray = field(repr=False)
    pickup: int = -1  # network index of the click & collect pickup store, else -1
    transfer_bias: float = 0.0
    fill_first: bool = False
    fill_penalty: float = 0.0  # the penalty per unfilled unit while `fill_first`
    # results computed once per problem (each subset starts empty): see covering.fewest_shipments
    memo: dict[object, object] = field(default_factory=dict, init=False, repr=False)

    @classmethod
    def build(
        cls, order: Order, network: Network, inventory: Inventory, rules: RuleSet
    ) -> SourcingProblem:
        """Applies the fences; an unknown sku or pickup store raises InvalidInput."""
        if inventory.network is not network:
            raise InvalidInput.one("inventory", "network", "inventory belongs to another network")
        quantity = np.array([line.quantity for line in order.lines], dtype=np.int64)
        stock = np.minimum(inventory.matrix(order.skus), quantity)
        to_lat, to_lon, country = (
            order.ship_to.latitude,
            order.ship_to.longitude,
            order.ship_to.country,
        )
        reason = np.zeros(len(network), dtype=np.int8)

        def fence(excluded: BoolArray | np.bool_, why: Reason) -> None:
            reason[(reason == Reason.CANDIDATE) & excluded] = why

        fence(~network.active, Reason.INACTIVE)
        if order.excluded_nodes:
            excluded = np.array([node.id in order.excluded_nodes for node in network.nodes])
            fence(excluded, Reason.EXCLUDED_FOR_ORDER)
        pickup = -1
        if order.delivery_mode is DeliveryMode.CLICK_AND_COLLECT:
            store_id = order.pickup_store_id or ""
            store = network.index.get(store_id)
            if store is None or network.nodes[store].type is not NodeType.STORE:
                raise InvalidInput.one("pickup_store_id", store_id, "not a store of the network")
            pickup = store
            to_lat, to_lon = network.latitude[store], network.longitude[store]
            country = network.nodes[store].country
            transfer = _type_mask(network, rules.click_collect_transfer_types)
            fence(~transfer & (np.arange(len(network)) != store), Reason.NOT_PICKUP_SOURCE)
            allowed = _type_mask(
                network, rules.allowed_node_types(order.customer_type, order.channel)
            )
            allowed[store] = True
            fence(~allowed, Reason.NODE_TYPE_NOT_ALLOWED)
        else:
            allowed = _type_mask(
                network, rules.allowed_node_types(order.customer_type, order.channel)
            )
            fence(~allowed, Reason.NODE_TYPE_NOT_ALLOWED)
        fence(~network.ships_to(country), Reason.DOES_NOT_SHIP_TO_COUNTRY)
        fence(network.capacity <= 0, Reason.NO_CAPACITY)
        fence(~stock.any(axis=1), Reason.NO_STOCK)
        distance = haversine_km(network.latitude, network.longitude, float(to_lat), float(to_lon))
        if rules.distance == "geodesic":
            near = np.flatnonzero(reason == Reason.CANDIDATE)
            distance[near] = geodesic_km(
                network.latitude[near], network.longitude[near], float(to_lat), float(to_lon)
            )
        if rules.max_distance_km is not None:
            fence(distance > rules.max_distance_km, Reason.TOO_FAR)

        groups: dict[str, list[int]] = {}
        split_lines: list[int] = []
        bundles: list[tuple[int, ...]] = []
        for j, line in enumerate(order.lines):
            if line.ship_group is not None:
                groups.setdefault(line.ship_group, []).append(j)
            elif rules.allow_line_split and not rules.ship_complete:
                split_lines.append(j)
            else:
                bundles.append((j,))
        bundles.extend(tuple(g) for g in groups.values())

        nodes = np.flatnonzero(reason == Reason.CANDIDATE)
        d = distance[nodes]
        fixed = (
            rules.shipment_cost
            + network.shipment_surcharge[nodes]
            + rules.shipment_distance_cost * d
        )
        unit = rules.unit_cost + network.unit_handling_cost[nodes] + rules.unit_distance_cost * d
        at_store = nodes == pickup
        if at_store.any():  # the store's own stock: no package, only the store's handling
            fixed[at_store] = 0.0
            unit[at_store] = network.unit_handling_cost[pickup]
            d[at_store] = 0.0
        bias = 0.0
        if at_store.any() and rules.click_collect_own_stock_first:
            bias = _above_any_plan(quantity, fixed, unit, rules)
            unit[~at_store] += bias
        problem = cls(
            order=order,
            rules=rules,
            network=network,
            nodes=nodes,
            distance_km=d,
            shipment_fixed=fixed,
            unit_cost=unit,
            available=stock[nodes],
            quantity=quantity,
            bundles=tuple(bundles),
            split_lines=tuple(split_lines),
            reason=reason,
            network_distance_km=distance,
            stock=stock,
            fenced_nodes=nodes,
            pickup=pickup,
            transfer_bias=bias,
        )
        return problem.drop_useless()

    # ----- derived views -------------------------------------------------------------------------

    @property
    def shipment_limit(self) -> int | None:
        return self.rules.shipment_limit

    @property
    def units(self) -> int:
        """Units ordered, over all lines."""
        return int(self.quantity.sum())

    @property
    def partial(self) -> bool:
        return self.rules.allow_partial or self.fill_first

    @property
    def penalty(self) -> float:
        """Cost of a unit left unfilled (biased like a transfer under click & collect)."""
        if self.fill_first:
            return self.fill_penalty
        return self.rules.unfilled_unit_penalty + self.transfer_bias

    def fullest(self) -> SourcingProblem:
        """The same candidates, searching the fullest plan: partial fulfilment with a penalty
        above the cost of any plan, so the most units are filled first (the solver ranks them
        exactly, in a tier of their own; see objective.py), then the cost decides."""
        dearest = float(self.unit_cost.max(initial=0.0)) + float(
            self.shipment_fixed.max(initial=0.0)
        )
        return replace(self, fill_first=True, fill_penalty=self.units * dearest + 1.0)

    @property
    def real_unit_cost(self) -> FloatArray:
        """Per candidate, what a unit really costs: `unit_cost` without the click & collect bias."""
        if self.transfer_bias == 0.0:
            return self.unit_cost
        real: FloatArray = np.where(
            self.nodes == self.pickup, self.unit_cost, self.unit_cost - self.transfer_bias
        )
        return real

    @cached_property
    def alone(self) -> npt.NDArray[np.int64]:
        """Per line, the most units the fences allow for its sku alone (the rest of the order left
        out): over at most `shipment_limit` nodes where the line may be split, from one node
        where it ships whole (a ship-together group of one line is whole as well). Capped at the
        line's quantity; stock dropped as useless for the whole order still counts here."""
        fenced = self.stock[self.fenced_nodes]
        out = fenced.max(axis=0, initial=0)
        if self.split_lines:
            split = list(self.split_lines)
            stock = fenced[:, split]
            limit = self.shipment_limit
            if limit is not None and limit < len(stock):
                stock = -np.partition(-stock, limit - 1, axis=0)[:limit]
            out[split] = stock.sum(axis=0)
        capped: npt.NDArray[np.int64] = np.minimum(out, self.quantity)
        return capped

    @cached_property
    def covers(self) -> BoolArray:
        """covers[n, b]: candidate n holds bundle b in full."""
        out = np.ones((len(self.nodes), len(self.bundles)), dtype=bool)
        for b, lines in enumerate(self.bundles):
            cols: list[int] = list(lines)
            out[:, b] = (self.available[:, cols] >= self.quantity[cols]).all(axis=1)
        return out

    @cached_property
    def usable(self) -> npt.NDArray[np.int64]:
        """Units each candidate may ship per line: split lines as stocked, bundles only in full."""
        out = np.zeros_like(self.available)
        if self.split_lines:
            split = list(self.split_lines)
            out[:, split] = self.available[:, split]
        covers = self.covers
        for b, lines in enumerate(self.bundles):
            rows = np.flatnonzero(covers[:, b])
            cols = np.array(lines, dtype=np.intp)
            out[np.ix_(rows, cols)] = self.quantity[cols]
        return out

    def subset(self, keep: BoolArray, why: Reason) -> SourcingProblem:
        """The same problem on fewer candidates; the dropped ones are marked with `why`."""
        if keep.all():
            return self
        reason = self.reason.copy()
        reason[self.nodes[~keep]] = why
        return replace(
            self,
            nodes=self.nodes[keep],
            distance_km=self.distance_km[keep],
            shipment_fixed=self.shipment_fixed[keep],
            unit_cost=self.unit_cost[keep],
            available=self.available[keep],
            reason=reason,
        )

    def drop_useless(self) -> SourcingProblem:
        """Drops candidates that can ship nothing usable (e.g. only part of a ship group)."""
        useful = np.asarray(self.usable.any(axis=1), dtype=bool)
        return self if useful.all() else self.subset(useful, Reason.NO_FEASIBLE_USE)


def _above_any_plan(
    quantity: npt.NDArray[np.int64], fixed: FloatArray, unit: FloatArray, rules: RuleSet
) -> float:
    """More than any plan can cost: a plan has at most one shipment per unit, and every unit
    costs at most the dearest candidate's unit (or the penalty, left unfilled)."""
    units = float(quantity.sum())
    dearest = float(unit.max(initial=0.0))
    if rules.allow_partial:
        dearest = max(dearest, rules.unfilled_unit_penalty)
    return units * (float(fixed.max(initial=0.0)) + dearest) + 1.0


def _type_mask(network: Network, allowed: frozenset[NodeType]) -> BoolArray:
    codes = np.array([NODE_TYPES.index(t) for t in allowed], dtype=np.int8)
    return np.isin(network.type_code, codes)
