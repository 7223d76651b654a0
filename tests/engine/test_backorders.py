"""Backorders: plans against incoming supply choose exactly between "later and near" and "now
and far", ship each node once, never take more of a lot than it holds, and match a brute-force
enumeration of every (node, day) assignment on small random cases."""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from allocation_engine.engine import (
    CustomerType,
    DeliveryMode,
    InvalidInput,
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
    allocate,
    parse_rules,
)
from allocation_engine.engine.codec import plan_to_dict
from allocation_engine.engine.rules import Backorders
from allocation_engine.engine.supply import IncomingLot, LotTake
from tests.engine.oracle import eligible, haversine

EQUATOR = ShipTo(0.0, 0.0, "DE")
DEGREE_KM = haversine(0.0, 0.0, 0.0, 1.0)  # 111.195 km: one degree of longitude at the equator


def backorders(delay: float, *, max_wait_days: int = 60, **weights: object) -> RuleSet:
    """The default rule set with backorders on at `delay` per unit-day (and `weights`)."""
    return RuleSet().with_weights(backorders=Backorders(True, delay, max_wait_days), **weights)


def near_and_far() -> tuple[Network, Inventory, list[IncomingLot], Order]:
    """NEAR is at the ship-to with nothing on hand and a purchase order of 10 A in 3 days; FAR,
    one degree of longitude away, holds 5 A now. The order wants 2 A."""
    network = Network.of(
        [
            Node("FAR", NodeType.WAREHOUSE, 0.0, 1.0, "DE"),
            Node("NEAR", NodeType.WAREHOUSE, 0.0, 0.0, "DE"),
        ]
    )
    inventory = Inventory.from_available(network, {"A": {"FAR": 5}})
    lots = [IncomingLot("po-1", "NEAR", "A", 10, 3)]
    return network, inventory, lots, Order("o", (OrderLine("A", 2),), EQUATOR)


# Per unit, FAR costs unit_distance_cost x d more, NEAR delay x 3 more (one package either way):
# the choice flips where delay = unit_distance_cost x d / 3.
DISTANCE_COST = 0.03
BREAK_EVEN = DISTANCE_COST * DEGREE_KM / 3  # 1.11195... per unit-day


@pytest.mark.parametrize(
    ("delay", "node", "day"),
    [(BREAK_EVEN * (1 - 1e-6), "NEAR", 3), (BREAK_EVEN * (1 + 1e-6), "FAR", 0)],
)
def test_later_and_near_against_now_and_far_flips_at_the_break_even_weight(
    delay: float, node: str, day: int
) -> None:
    """Given NEAR's purchase order in 3 days and FAR's stock now, when the delay weight is just
    below the break-even (unit_distance_cost x d / 3), then NEAR waits for its lot; just above
    it, FAR ships today. Either plan is OPTIMAL and costs what the formula says."""
    network, inventory, lots, order = near_and_far()
    rules = backorders(delay, unit_distance_cost=DISTANCE_COST)
    plan = allocate(order, network, inventory, rules, lots=lots)
    assert plan.status is Status.OPTIMAL
    (shipment,) = plan.shipments
    assert (shipment.node_id, shipment.ship_day) == (node, day)
    d = DEGREE_KM if node == "FAR" else 0.0
    expected = rules.shipment_cost + 2 * (rules.unit_cost + DISTANCE_COST * d + delay * day)
    assert math.isclose(plan.total_cost, expected, rel_tol=1e-9)
    assert shipment.lots == ((LotTake("po-1", "A", 2),) if node == "NEAR" else ())


def test_a_sweep_of_the_delay_weight_flips_exactly_once_at_the_break_even() -> None:
    """Given the same two nodes, when the delay weight sweeps 0 to 3 in steps of 0.01, then the
    plan waits for NEAR's lot below the break-even and ships from FAR above it: one flip."""
    network, inventory, lots, order = near_and_far()
    chosen = []
    for step in range(301):
        delay = step / 100
        plan = allocate(
            order,
            network,
            inventory,
            backorders(delay, unit_distance_cost=DISTANCE_COST),
            lots=lots,
        )
        chosen.append((delay, plan.shipments[0].node_id))
    flips = [(a, b) for a, b in itertools.pairwise(chosen) if a[1] != b[1]]
    assert len(flips) == 1
    ((before, after),) = flips
    assert (before[1], after[1]) == ("NEAR", "FAR")
    assert before[0] < BREAK_EVEN < after[0]


def test_a_node_ships_an_order_once_when_everything_it_sends_is_there() -> None:
    """Given NEAR with 1 A now and a lot of 1 B in 5 days, and FAR (20 a unit farther) with 1 B
    now, at 2 per unit-day: two packages from NEAR (A today, B on day 5) would be cheapest, but
    a node ships an order once, so the plan is NEAR with both on day 5 (cheaper than NEAR today
    plus FAR), one package."""
    network = Network.of(
        [
            Node("FAR", NodeType.WAREHOUSE, 0.0, 1.0, "DE"),
            Node("NEAR", NodeType.WAREHOUSE, 0.0, 0.0, "DE"),
        ]
    )
    inventory = Inventory.from_available(network, {"A": {"NEAR": 1}, "B": {"FAR": 1}})
    lots = [IncomingLot("po-b", "NEAR", "B", 1, 5)]
    order = Order("o", (OrderLine("A", 1), OrderLine("B", 1)), EQUATOR)
    rules = backorders(2.0, unit_distance_cost=20 / DEGREE_KM)
    plan = allocate(order, network, inventory, rules, lots=lots)
    assert plan.status is Status.OPTIMAL
    (shipment,) = plan.shipments
    assert (shipment.node_id, shipment.ship_day, shipment.units) == ("NEAR", 5, 2)
    s, u = rules.shipment_cost, rules.unit_cost
    assert math.isclose(plan.total_cost, s + 2 * u + 2 * 2.0 * 5, rel_tol=1e-9)
    # what two packages from NEAR would have cost, and NEAR today with FAR
    assert 2 * s + 2 * u + 2.0 * 5 < plan.total_cost < 2 * s + 2 * u + 20
    assert shipment.lots == (LotTake("po-b", "B", 1),)
    assert plan.taken() == {("NEAR", "A"): 1}  # the shelf only: B comes from the lot
    assert "ships 2 units in 5 days" in plan.explanations.for_node("NEAR").detail


def test_a_pre_order_ships_on_the_day_its_lot_arrives() -> None:
    """Given a sku nobody holds (no position anywhere), only a lot of it due in 12 days, when
    it is ordered under backorders, then the plan ships it on day 12 from that lot; without
    backorders the sku is unknown, as before."""
    network = Network.of([Node("WH", NodeType.WAREHOUSE, 0.0, 0.5, "DE")])
    inventory = Inventory.from_available(network, {"OTHER": {"WH": 3}})
    lots = [IncomingLot("po-new", "WH", "NEW", 50, 12), IncomingLot("po-o", "WH", "OTHER", 1, 1)]
    order = Order("pre", (OrderLine("NEW", 3),), EQUATOR)
    plan = allocate(order, network, inventory, backorders(0.5), lots=lots)
    assert plan.status is Status.OPTIMAL
    (shipment,) = plan.shipments
    assert shipment.ship_day == 12
    assert shipment.lots == (LotTake("po-new", "NEW", 3),)
    assert plan.taken() == {}
    assert plan_to_dict(plan)["shipments"][0]["ship_day"] == 12
    assert plan_to_dict(plan)["shipments"][0]["lots"] == [
        {"lot_id": "po-new", "sku": "NEW", "units": 3}
    ]
    with pytest.raises(InvalidInput) as raised:
        allocate(order, network, inventory, lots=lots)
    assert raised.value.problems[0].field == "order.lines[0].sku"


def test_lots_past_the_wait_are_not_planned_on_and_shortfalls_count_the_lots() -> None:
    """Given a lot due after max_wait_days, then the plan does not wait for it; an order larger
    than shelf and due lots together is INFEASIBLE, its shortfall counting the due lots."""
    network, inventory, lots, order = near_and_far()
    late = [IncomingLot("po-late", "NEAR", "A", 10, 30)]
    plan = allocate(order, network, inventory, backorders(0.0, max_wait_days=29), lots=late)
    assert [(s.node_id, s.ship_day) for s in plan.shipments] == [("FAR", 0)]
    big = Order("big", (OrderLine("A", 16),), EQUATOR)
    plan = allocate(big, network, inventory, backorders(0.0), lots=lots)
    assert plan.status is Status.INFEASIBLE
    ((sku, requested, available),) = [(s.sku, s.requested, s.available) for s in plan.shortfalls]
    assert (sku, requested, available) == ("A", 16, 15)


def test_shelf_first_then_lots_earliest_first_within_a_shipment() -> None:
    """Given 2 on hand and three lots (day 4: 3 units, day 2: 1 unit, day 9: 5 units), when 5
    units leave, then they take the shelf, then the day-2 lot, then 2 of the day-4 lot, on day
    4; the day-9 lot stays untouched."""
    network = Network.of([Node("WH", NodeType.WAREHOUSE, 0.0, 0.5, "DE")])
    inventory = Inventory.from_available(network, {"A": {"WH": 2}})
    lots = [
        IncomingLot("d4", "WH", "A", 3, 4),
        IncomingLot("d2", "WH", "A", 1, 2),
        IncomingLot("d9", "WH", "A", 5, 9),
    ]
    plan = allocate(
        Order("o", (OrderLine("A", 5),), EQUATOR), network, inventory, backorders(1.0), lots=lots
    )
    (shipment,) = plan.shipments
    assert shipment.ship_day == 4
    assert shipment.lots == (LotTake("d2", "A", 1), LotTake("d4", "A", 2))
    assert plan.taken() == {("WH", "A"): 2}


def test_without_backorders_or_lots_plans_are_todays() -> None:
    """Given lots, when backorders are off (the default), then they are not read at all (even
    one at an unknown node) and the plan is the plan without them; backorders on with no lot
    due for the order plans as without supply too."""
    network, inventory, lots, order = near_and_far()
    bare = allocate(order, network, inventory)
    unknown = [*lots, IncomingLot("x", "NOWHERE", "A", 1, 1)]
    assert allocate(order, network, inventory, lots=unknown) == bare
    other_sku = [IncomingLot("po-b", "NEAR", "B", 10, 1)]
    assert allocate(order, network, inventory, backorders(0.5), lots=other_sku) == bare
    assert allocate(order, network, inventory, backorders(0.5)) == bare
    assert all(s.ship_day == 0 and s.lots == () for s in bare.shipments)


@pytest.mark.parametrize(("own_stock_first", "node", "day"), [(True, "ST", 4), (False, "WH", 0)])
def test_click_and_collect_counts_the_stores_incoming_lots_as_its_own_stock(
    own_stock_first: bool, node: str, day: int
) -> None:
    """Given a pickup store with a lot of 2 A due in 4 days and a warehouse 100 km off with A
    now, at a dear delay (10 per unit-day): under own stock first the store waits for its lot
    (its own stock, however late, before any transfer); without it the warehouse transfers
    today, being cheaper, and the plan reports true costs, no bias."""
    network = Network.of(
        [
            Node("ST", NodeType.STORE, 0.0, 0.0, "DE", unit_handling_cost=0.6),
            Node("WH", NodeType.WAREHOUSE, 0.0, 0.9, "DE"),
        ]
    )
    inventory = Inventory.from_available(network, {"A": {"WH": 5}})
    lots = [IncomingLot("to-st", "ST", "A", 2, 4)]
    order = Order(
        "cc",
        (OrderLine("A", 2),),
        EQUATOR,
        delivery_mode=DeliveryMode.CLICK_AND_COLLECT,
        pickup_store_id="ST",
    )
    rules = backorders(10.0, click_collect_own_stock_first=own_stock_first)
    plan = allocate(order, network, inventory, rules, lots=lots)
    assert plan.status is Status.OPTIMAL
    (shipment,) = plan.shipments
    assert (shipment.node_id, shipment.ship_day) == (node, day)
    if node == "ST":  # no package, the store's handling and the wait
        assert math.isclose(plan.total_cost, 2 * (0.6 + 10.0 * 4), rel_tol=1e-9)
        assert shipment.lots == (LotTake("to-st", "A", 2),)
    else:
        d = shipment.distance_km
        expected = rules.shipment_cost + 2 * (rules.unit_cost + rules.unit_distance_cost * d)
        assert math.isclose(plan.total_cost, expected, rel_tol=1e-9)
        assert shipment.transfer_to == "ST"


def test_explanations_stay_one_per_physical_node() -> None:
    network, inventory, lots, order = near_and_far()
    plan = allocate(order, network, inventory, backorders(0.001), lots=lots)
    assert [e.node_id for e in plan.explanations] == ["FAR", "NEAR"]
    assert plan.explanations.for_node("NEAR").reason.name == "CHOSEN"


def test_bad_lots_are_named() -> None:
    """A lot at an unknown node, or a lot id given twice, is an InvalidInput naming the lot's
    field and quoting the value; a lot of negative units cannot be made at all."""
    network, inventory, lots, order = near_and_far()
    bad = [
        lots[0],
        IncomingLot("po-x", "NOWHERE", "A", 1, 1),
        IncomingLot("po-1", "FAR", "A", 1, 2),
    ]
    with pytest.raises(InvalidInput) as raised:
        allocate(order, network, inventory, backorders(0.5), lots=bad)
    found = {(p.field, p.value) for p in raised.value.problems}
    assert found == {("lots[1].node_id", "NOWHERE"), ("lots[2].id", "po-1")}
    with pytest.raises(InvalidInput) as raised:
        IncomingLot("po-n", "NEAR", "A", -3, 1)
    assert [(p.field, p.value) for p in raised.value.problems] == [("units", -3)]


def test_the_backorders_table_validates_with_its_keys_named() -> None:
    """The [backorders] table reads from TOML, keeps its defaults where left out, and refuses
    each bad value naming `backorders.<key>` with the value found."""
    rules = parse_rules("[backorders]\nenabled = true\nmax_wait_days = 14\n")
    assert rules.backorders == Backorders(True, 0.5, 14)
    assert RuleSet().backorders == Backorders(False, 0.5, 60)
    text = (
        "[backorders]\nenabled = 1\ndelay_cost_per_unit_day = 1e5\nmax_wait_days = 366\nwait = 3\n"
    )
    with pytest.raises(InvalidInput) as raised:
        parse_rules(text)
    found = {(p.field, p.value) for p in raised.value.problems}
    assert found == {
        ("backorders.enabled", 1),
        ("backorders.delay_cost_per_unit_day", 1e5),
        ("backorders.max_wait_days", 366),
        ("backorders.wait", 3),
    }
    for bad in ("-0.5", "nan", "true"):
        with pytest.raises(InvalidInput) as raised:
            parse_rules(f"[backorders]\ndelay_cost_per_unit_day = {bad}\n")
        assert raised.value.problems[0].field == "backorders.delay_cost_per_unit_day"


# ----- the brute-force oracle ---------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    network: Network
    on_hand: dict[tuple[str, str], int]  # (node id, sku) -> units on the shelf
    lots: list[IncomingLot]
    order: Order
    rules: RuleSet

    @property
    def inventory(self) -> Inventory:
        table: dict[str, dict[str, int]] = {}
        for (node, sku), units in self.on_hand.items():
            table.setdefault(sku, {})[node] = units
        return Inventory.from_available(self.network, table)

    def costs(self) -> dict[str, tuple[float, float]]:
        """node id -> (fixed, unit cost) of every node the fences leave, its due lots counted
        as stock (a node holding only lots of the order is a candidate)."""
        stocked = dict(self.on_hand)
        for lot in self.lots:
            if lot.day <= self.rules.backorders.max_wait_days:
                key = (lot.node_id, lot.sku)
                stocked[key] = stocked.get(key, 0) + lot.units
        costs = eligible(self.order, self.network, stocked, self.rules)
        return {n: c for n, c in costs.items() if n not in self.order.excluded_nodes}

    def stock(self, node: str, sku: str, day: int) -> int:
        """Units of `sku` at `node` by `day`: the shelf and every lot due by then and within
        the wait, written from the rule's text."""
        due = sum(
            lot.units
            for lot in self.lots
            if (lot.node_id, lot.sku) == (node, sku)
            and lot.day <= day <= self.rules.backorders.max_wait_days
        )
        return self.on_hand.get((node, sku), 0) + due

    def days(self, node: str) -> list[int]:
        wait = self.rules.backorders.max_wait_days
        skus = set(self.order.skus)
        return sorted(
            {0}
            | {
                lot.day
                for lot in self.lots
                if lot.node_id == node and lot.sku in skus and lot.day <= wait
            }
        )


def random_case(seed: int) -> Case:
    """2 to 4 nodes, 1 to 3 skus of 1 to 4 units, 0 to 2 lots, and random weights and fences
    (shipment limits, ship-complete, whole lines, ship-together groups, partial fulfilment, a
    distance limit, B2B's warehouses only, a node without capacity, a node the order
    excludes)."""
    rng = random.Random(seed)
    nodes = [
        Node(
            f"N{i}",
            rng.choice([NodeType.WAREHOUSE, NodeType.STORE]),
            rng.uniform(47.3, 55.0),
            rng.uniform(6.0, 15.0),
            "DE",
            unit_handling_cost=rng.choice([0.0, 0.25, 1.0]),
            shipment_surcharge=rng.choice([0.0, 1.5, 4.0]),
            capacity=0 if rng.random() < 0.1 else None,
        )
        for i in range(rng.randint(2, 4))
    ]
    network = Network.of(nodes)
    skus = [f"S{j}" for j in range(rng.randint(1, 3))]
    held = rng.choice([0.3, 0.8])  # half the cases thin on the shelf, so lots matter
    on_hand = {
        (node.id, sku): rng.choice([0, 1, 2, 3, 4])
        for node in nodes
        for sku in skus
        if rng.random() < held
    }
    for sku in skus:  # every sku has a position somewhere, so it is a known sku
        on_hand.setdefault((rng.choice(nodes).id, sku), 0)
    lots = [
        IncomingLot(
            f"L{k}", rng.choice(nodes).id, rng.choice(skus), rng.randint(2, 4), rng.randint(0, 6)
        )
        for k in range(rng.choice([0, 1, 2, 2, 2]))
    ]
    groups = rng.random() < 0.2 and len(skus) > 1
    lines = tuple(
        OrderLine(sku, rng.choice([1, 1, 2, 2, 3, 4]), "g" if groups and j < 2 else None)
        for j, sku in enumerate(skus)
    )
    partial = rng.random() < 0.2
    rules = RuleSet().with_weights(
        shipment_cost=rng.choice([0.0, 2.0, 8.759]),
        unit_cost=rng.choice([0.0, 0.423]),
        unit_distance_cost=rng.choice([0.0, 0.002, 0.01]),
        shipment_distance_cost=rng.choice([0.0, 0.01]),
        max_shipments=rng.choice([None, None, None, 1, 2]),
        ship_complete=rng.random() < 0.1,
        allow_line_split=rng.random() < 0.8,
        allow_partial=partial,
        unfilled_unit_penalty=rng.choice([5.0, 40.0]) if partial else 0.0,
        max_distance_km=rng.choice([None, None, None, None, 500.0]),
        backorders=Backorders(True, rng.choice([0.0, 0.05, 0.3, 3.0]), rng.choice([4, 60])),
    )
    order = Order(
        f"o{seed}",
        lines,
        ShipTo(rng.uniform(47.3, 55.0), rng.uniform(6.0, 15.0), "DE"),
        customer_type=CustomerType.B2B if rng.random() < 0.1 else CustomerType.B2C,
        excluded_nodes=frozenset({rng.choice(nodes).id}) if rng.random() < 0.1 else frozenset(),
    )
    return Case(network, on_hand, lots, order, rules)


def distributions(units: int, bins: int) -> Iterator[tuple[int, ...]]:
    """Every way to put `units` into `bins` (ordered) bins (none when there is no bin)."""
    if bins == 0:
        return
    if bins == 1:
        yield (units,)
        return
    for first in range(units + 1):
        for rest in distributions(units - first, bins - 1):
            yield (first, *rest)


def brute_force(case: Case) -> float | None:
    """The least cost over every dated plan, or None when none fills the order: every choice of
    a day (or none) per node, and for each, every assignment of each item's units to the nodes
    chosen (a split line unit by unit, a whole line or group to one of them) or to unfilled."""
    order, rules = case.order, case.rules
    costs = case.costs()
    delay = rules.backorders.delay_cost_per_unit_day
    limit = 1 if rules.ship_complete else rules.max_shipments
    penalty = rules.unfilled_unit_penalty if rules.allow_partial else None
    items: list[tuple[list[OrderLine], bool]] = []
    grouped: dict[str, list[OrderLine]] = {}
    for line in order.lines:
        if line.ship_group is not None:
            grouped.setdefault(line.ship_group, []).append(line)
        else:
            items.append(([line], not rules.allow_line_split or rules.ship_complete))
    items += [(lines, True) for lines in grouped.values()]
    ids = sorted(costs)
    best = None
    for choice in itertools.product(*[[None, *case.days(n)] for n in ids]):
        used = [(n, t) for n, t in zip(ids, choice, strict=True) if t is not None]
        if limit is not None and len(used) > limit:
            continue
        total = sum(costs[n][0] for n, _ in used)
        per_unit = {n: costs[n][1] + delay * t for n, t in used}
        for lines, whole in items:
            options = []
            units = sum(line.quantity for line in lines)
            if whole:
                for n, t in used:
                    if all(case.stock(n, line.sku, t) >= line.quantity for line in lines):
                        options.append(per_unit[n] * units)
                if penalty is not None:
                    options.append(penalty * units)
            else:
                (line,) = lines
                bins = len(used) + (penalty is not None)
                for split in distributions(line.quantity, bins):
                    sent = split[: len(used)]
                    if any(
                        k > case.stock(n, line.sku, t) for k, (n, t) in zip(sent, used, strict=True)
                    ):
                        continue
                    cost = sum(k * per_unit[n] for k, (n, _) in zip(sent, used, strict=True))
                    options.append(cost + (penalty or 0.0) * (line.quantity - sum(sent)))
            if not options:
                total = None
                break
            total += min(options)
        if total is not None and (best is None or total < best):
            best = total
    return best


def check_plan(plan: Plan, case: Case) -> None:
    """The plan is a dated plan within the rules, costed by the formula, with lots taken right."""
    rules, delay = case.rules, case.rules.backorders.delay_cost_per_unit_day
    lots = {lot.id: lot for lot in case.lots}
    taken: dict[str, int] = {}
    nodes = [s.node_id for s in plan.shipments]
    assert len(nodes) == len(set(nodes)), "one package per node"
    limit = 1 if rules.ship_complete else rules.max_shipments
    assert limit is None or len(nodes) <= limit
    costs = case.costs()
    total = 0.0
    for s in plan.shipments:
        fixed, unit = costs[s.node_id]
        assert s.ship_day in case.days(s.node_id)
        assert math.isclose(
            s.cost, fixed + s.units * (unit + delay * s.ship_day), rel_tol=1e-9, abs_tol=1e-9
        )
        total += s.cost
        from_lots: dict[str, int] = {}
        for take in s.lots:
            lot = lots[take.lot_id]
            assert (lot.node_id, lot.sku) == (s.node_id, take.sku)
            assert lot.day <= s.ship_day and take.units > 0
            taken[take.lot_id] = taken.get(take.lot_id, 0) + take.units
            from_lots[take.sku] = from_lots.get(take.sku, 0) + take.units
        for line in s.lines:
            assert line.quantity <= case.stock(s.node_id, line.sku, s.ship_day)
            shelf = line.quantity - from_lots.get(line.sku, 0)
            assert 0 <= shelf <= case.on_hand.get((s.node_id, line.sku), 0)
            # the shelf first: a lot is touched only once the shelf is empty
            assert from_lots.get(line.sku, 0) == 0 or shelf == case.on_hand.get(
                (s.node_id, line.sku), 0
            )
    for lot_id, units in taken.items():
        assert units <= lots[lot_id].units, f"lot {lot_id} over-taken"
    total += rules.unfilled_unit_penalty * plan.units_unfilled
    assert math.isclose(plan.total_cost, total, rel_tol=1e-9, abs_tol=1e-9)


@pytest.mark.parametrize("seed", range(500))
def test_dated_optimum_equals_brute_force_enumeration(seed: int) -> None:
    """Given a small random case (2-4 nodes, 1-3 skus of 1-4 units, 0-2 lots, random weights,
    delay weight and fences), when the engine plans it under backorders, then the plan is
    OPTIMAL at the enumerated least cost to 1e-6, or INFEASIBLE exactly when no dated plan
    exists; either way within the rules, every lot taken at most once in full."""
    case = random_case(seed)
    plan = allocate(case.order, case.network, case.inventory, case.rules, lots=case.lots)
    best = brute_force(case)
    if best is None:
        assert plan.status is Status.INFEASIBLE
        assert plan.shortfalls
    else:
        assert plan.status is Status.OPTIMAL
        assert math.isclose(plan.total_cost, best, rel_tol=1e-6, abs_tol=1e-6), (
            plan.total_cost,
            best,
        )
        check_plan(plan, case)
    reference = allocate(
        case.order, case.network, case.inventory, case.rules, lots=case.lots, method="reference"
    )
    assert math.isclose(reference.total_cost, plan.total_cost, rel_tol=1e-6, abs_tol=1e-6)
    for peer in ("shopify", "salesforce"):
        greedy = allocate(
            case.order, case.network, case.inventory, case.rules, lots=case.lots, method=peer
        )
        if greedy.status is not Status.INFEASIBLE:
            check_plan(greedy, case)
            assert best is not None and greedy.total_cost >= best - 1e-6


def test_the_largest_weights_and_waits_in_range_still_plan() -> None:
    """Every weight at the top of its range, 10^4 per unit-day and a lot of 6 x 10^8 units due in
    365 days: an order of 10^9 units that needs the shelf and the lot plans (the solver's
    int64 scale holds the wait too), leaving on day 365."""
    rules = parse_rules(
        "[costs]\nshipment_cost = 1e6\nshipment_distance_cost = 100.0\nunit_cost = 1e6\n"
        "unit_distance_cost = 100.0\nunfilled_unit_penalty = 1e7\n"
        "[fences]\nmax_shipments = 1000\nmax_distance_km = 20100.0\n"
        "[solver]\ntime_limit_seconds = 60\n"
        "[backorders]\nenabled = true\ndelay_cost_per_unit_day = 1e4\nmax_wait_days = 365\n"
    )
    network = Network.of(
        [
            Node("A", NodeType.WAREHOUSE, 52.0, 13.0, "DE", unit_handling_cost=1e6),
            Node("B", NodeType.WAREHOUSE, -33.9, 151.2, "AU", shipment_surcharge=1e6),
        ]
    )
    inventory = Inventory.from_available(network, {"X": {"A": 6 * 10**8}})
    lots = [IncomingLot("po", "B", "X", 6 * 10**8, 365)]
    order = Order("o", (OrderLine("X", 10**9),), ShipTo(51.0, 7.0, "DE"))
    plan = allocate(order, network, inventory, rules, lots=lots)
    assert plan.status in (Status.OPTIMAL, Status.FEASIBLE)
    assert plan.units_shipped == 10**9
    assert {s.node_id: s.ship_day for s in plan.shipments} == {"A": 0, "B": 365}
