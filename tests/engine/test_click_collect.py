"""Click & collect: the pickup store's own stock first (unless a rule says otherwise), distance 0
and no package for it; every other node sends a transfer to the store, and the plan says so."""

from __future__ import annotations

import math

import pytest

from allocation_engine.engine import (
    DeliveryMode,
    Inventory,
    Network,
    Node,
    NodeType,
    Order,
    OrderLine,
    RuleSet,
    ShipTo,
    Status,
    allocate,
)
from allocation_engine.engine.rules import parse_rules

MUNICH = ShipTo(48.14, 11.58, "DE")  # the customer's address (unused: they collect)


@pytest.fixture
def network() -> Network:
    """A store in Munich with a high handling cost, a warehouse in Frankfurt (~300 km) and one
    in Hamburg (~610 km)."""
    return Network.of(
        [
            Node("ST-MUC", NodeType.STORE, 48.137, 11.575, "DE", unit_handling_cost=0.6),
            Node("WH-FRA", NodeType.WAREHOUSE, 50.11, 8.68, "DE"),
            Node("WH-HAM", NodeType.WAREHOUSE, 53.55, 9.99, "DE", shipment_surcharge=1.0),
        ]
    )


def collect(*lines: OrderLine) -> Order:
    return Order(
        "o",
        lines,
        MUNICH,
        delivery_mode=DeliveryMode.CLICK_AND_COLLECT,
        pickup_store_id="ST-MUC",
    )


def test_the_store_that_holds_the_units_serves_them(network: Network) -> None:
    """The reported case: the pickup store holds the units, yet a warehouse far away was chosen.
    Now the store's own stock serves them: distance 0, no package, the store's handling only,
    and no transfer."""
    inventory = Inventory.from_available(network, {"A": {"ST-MUC": 40, "WH-FRA": 100}})
    plan = allocate(collect(OrderLine("A", 30)), network, inventory)
    assert plan.status is Status.OPTIMAL
    (own,) = plan.shipments
    assert (own.node_id, own.distance_km, own.transfer_to) == ("ST-MUC", 0.0, "")
    assert math.isclose(own.cost, 30 * 0.6)
    assert math.isclose(plan.total_cost, 30 * 0.6)


def test_what_the_store_lacks_comes_as_a_transfer(network: Network) -> None:
    """The store holds 2 of 5: it serves its 2 and the nearest warehouse transfers 3, priced by
    the formula with the distance to the store, and marked as a transfer to the store."""
    inventory = Inventory.from_available(network, {"A": {"ST-MUC": 2, "WH-FRA": 9, "WH-HAM": 9}})
    plan = allocate(collect(OrderLine("A", 5)), network, inventory)
    by_node = {s.node_id: s for s in plan.shipments}
    assert sorted(by_node) == ["ST-MUC", "WH-FRA"]
    assert by_node["ST-MUC"].units == 2 and by_node["ST-MUC"].transfer_to == ""
    transfer = by_node["WH-FRA"]
    assert transfer.units == 3 and transfer.transfer_to == "ST-MUC"
    assert 290 < transfer.distance_km < 310
    rules = RuleSet()
    by_hand = rules.shipment_cost + 3 * (
        rules.unit_cost + rules.unit_distance_cost * transfer.distance_km
    )
    assert math.isclose(transfer.cost, by_hand, rel_tol=1e-12)
    assert math.isclose(plan.total_cost, 2 * 0.6 + by_hand, rel_tol=1e-12)


def test_own_stock_first_beats_a_cheaper_transfer_unless_the_rule_says_otherwise(
    network: Network,
) -> None:
    """100 units at 2.00 handling cost 200 from the store's own stock, one transfer from
    Frankfurt about 61 (8.76 + 100 x 0.52): by default the store's own stock is still used
    first; with own_stock_first = false the costs decide and Frankfurt transfers them."""
    dear = Network.of(
        [
            Node("ST-MUC", NodeType.STORE, 48.137, 11.575, "DE", unit_handling_cost=2.0),
            Node("WH-FRA", NodeType.WAREHOUSE, 50.11, 8.68, "DE"),
        ]
    )
    inventory = Inventory.from_available(dear, {"A": {"ST-MUC": 100, "WH-FRA": 100}})
    order = collect(OrderLine("A", 100))
    first = allocate(order, dear, inventory)
    assert [(s.node_id, s.transfer_to) for s in first.shipments] == [("ST-MUC", "")]
    assert math.isclose(first.total_cost, 200.0)
    by_cost = allocate(
        order, dear, inventory, parse_rules("[click_collect]\nown_stock_first = false\n")
    )
    assert [(s.node_id, s.transfer_to) for s in by_cost.shipments] == [("WH-FRA", "ST-MUC")]
    assert by_cost.total_cost < first.total_cost
    assert by_cost.status is Status.OPTIMAL


def test_own_stock_first_holds_under_partial_fulfilment_and_the_reference_model(
    network: Network,
) -> None:
    """With partial fulfilment and a penalty below the store's handling cost, the store's units
    are still taken (own stock first), by both exact methods."""
    inventory = Inventory.from_available(network, {"A": {"ST-MUC": 3}})
    rules = RuleSet(allow_partial=True, unfilled_unit_penalty=0.1)
    for method in ("engine", "reference"):
        plan = allocate(collect(OrderLine("A", 5)), network, inventory, rules, method=method)
        assert plan.units_shipped == 3 and plan.units_unfilled == 2
        assert math.isclose(plan.total_cost, 3 * 0.6 + 2 * 0.1)
