"""F1 replicates the literature's setting: its costs (dummy centre included), stock and policies."""

from __future__ import annotations

import math

import numpy as np
import pytest

from allocation_engine.bench import f1
from allocation_engine.engine import Inventory, Order, OrderLine, ShipTo, allocate

MILES_PER_KM = 1 / 1.609344


def miles(a: f1.Place, b: f1.Place) -> float:
    """Haversine in miles, written out independently of the engine."""
    p1, p2 = math.radians(a.latitude), math.radians(b.latitude)
    h = (
        math.sin((p2 - p1) / 2) ** 2
        + math.cos(p1) * math.cos(p2) * math.sin(math.radians(b.longitude - a.longitude) / 2) ** 2
    )
    return 2 * 6371.0088 * math.asin(math.sqrt(h)) * MILES_PER_KM


@pytest.fixture(scope="module")
def small() -> f1.Instance:
    return f1.Instance.generate(f1.SETTINGS["small-0.75"], 0, periods=500)


def order_from(instance: f1.Instance, city: int, items: list[int]) -> Order:
    place = instance.cities[city]
    return Order(
        "o-1",
        tuple(OrderLine(f1.item(i), 1) for i in items),
        ShipTo(place.latitude, place.longitude, f1.region(city)),
    )


def without_centre_stock(instance: f1.Instance, items: list[int]) -> Inventory:
    """The starting stock with every centre's units of `items` taken out."""
    inventory = instance.inventory()
    taken = {
        (f"FC-{c.name}", f1.item(i)): inventory.available(f"FC-{c.name}", f1.item(i))
        for c in instance.centres
        for i in items
    }
    return inventory.without({k: v for k, v in taken.items() if v})


def test_unfilled_items_cost_what_the_papers_dummy_costs(small: f1.Instance) -> None:
    """Given two items no centre has left, when an order from city 3 asks for both, then the
    plan costs 2 x 8.759 once plus 2 x (0.423 + 0.000541 x miles to the farthest centre) each."""
    city, items = 3, [0, 1]
    inventory = without_centre_stock(small, items)
    plan = allocate(order_from(small, city, items), small.network, inventory, small.rules())
    farthest = max(miles(c, small.cities[city]) for c in small.centres)
    expected = 2 * 8.759 + 2 * 2 * (0.423 + 0.000541 * farthest)
    assert [s.node_id for s in plan.shipments] == [f"UNFILLED-{f1.region(city)}"]
    assert plan.total_cost == pytest.approx(expected, rel=1e-9)


def test_a_centre_ships_at_the_papers_cost(small: f1.Instance) -> None:
    """Given stock, a one-item order costs 8.759 + 0.423 + 0.000541 x miles from its centre."""
    plan = allocate(order_from(small, 0, [5]), small.network, small.inventory(), small.rules())
    (shipment,) = plan.shipments
    centre = next(c for c in small.centres if f"FC-{c.name}" == shipment.node_id)
    expected = 8.759 + 0.423 + 0.000541 * miles(centre, small.cities[0])
    assert plan.total_cost == pytest.approx(expected, rel=1e-9)


def test_the_dummy_is_only_a_candidate_for_its_own_city(small: f1.Instance) -> None:
    plan = allocate(order_from(small, 2, [0]), small.network, small.inventory(), small.rules())
    reasons = {e.node_id: e.reason.name for e in plan.explanations}
    assert reasons[f"UNFILLED-{f1.region(5)}"] == "DOES_NOT_SHIP_TO_COUNTRY"
    assert reasons[f"UNFILLED-{f1.region(2)}"] != "DOES_NOT_SHIP_TO_COUNTRY"


def test_instances_follow_the_setting_and_repeat_with_the_seed(small: f1.Instance) -> None:
    """Types: 5 per size 1..5 plus 'no order'; arrival probabilities sum to 1 and follow the
    populations; stock = round(T d + 0.5 sqrt(T d (1 - d))) of the routed demand rate d."""
    setting = small.setting
    assert len(small.types) == 1 + setting.max_size * setting.types_per_size
    assert sorted({len(t) for t in small.types}) == list(range(setting.max_size + 1))
    assert small.arrival.sum() == pytest.approx(1.0)
    population = np.array([c.population for c in small.cities], dtype=float)
    np.testing.assert_allclose(small.arrival.sum(axis=0), population / population.sum())
    item = 4
    rate = np.zeros(len(small.centres))
    for q, items in enumerate(small.types):
        if item in items:
            for j in range(len(small.cities)):
                if small.closest[item, j] >= 0:
                    rate[small.closest[item, j]] += small.arrival[q, j]
    t = setting.periods
    expected = np.round(t * rate + 0.5 * np.sqrt(t * rate * (1 - rate)))
    np.testing.assert_array_equal(small.stock[:, item], expected)
    again = f1.Instance.generate(f1.SETTINGS["small-0.75"], 0, periods=500)
    np.testing.assert_array_equal(again.stock, small.stock)
    assert [o.lines for o in again.orders(1)] == [o.lines for o in small.orders(1)]


def test_myopic_sends_each_item_to_its_closest_carrying_centre_or_leaves_it(
    small: f1.Instance,
) -> None:
    city, item = 1, 2
    centre = small.centres[small.closest[item, city]]
    plan = f1.myopic_plan(small, order_from(small, city, [item]), small.inventory(), small.rules())
    assert [s.node_id for s in plan.shipments] == [f"FC-{centre.name}"]
    drained = without_centre_stock(small, [item])
    plan = f1.myopic_plan(small, order_from(small, city, [item]), drained, small.rules())
    assert [s.node_id for s in plan.shipments] == [f"UNFILLED-{f1.region(city)}"]


@pytest.mark.parametrize("method", ["shopify", "salesforce"])
def test_peers_use_the_dummy_only_for_what_centres_lack(small: f1.Instance, method: str) -> None:
    """Given one item out everywhere and one in stock, the peer ships the second from a centre
    and only the first from the dummy."""
    inventory = without_centre_stock(small, [0])
    order = order_from(small, 0, [0, 7])
    plan = f1.peer_plan(small, method, order, inventory, small.rules())
    by_node = {s.node_id: [line.sku for line in s.lines] for s in plan.shipments}
    assert by_node.pop(f"UNFILLED-{f1.region(0)}") == [f1.item(0)]
    assert list(by_node.values()) == [[f1.item(7)]]
    assert next(iter(by_node)).startswith("FC-")
