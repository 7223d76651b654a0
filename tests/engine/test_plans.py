"""Plans cost what the formula says, explain every node, and are deterministic."""

from __future__ import annotations

import dataclasses
import math

import pytest

from allocation_engine.engine import (
    CustomerType,
    DeliveryMode,
    Inventory,
    Network,
    Node,
    NodeType,
    Order,
    OrderLine,
    Reason,
    RuleSet,
    ShipTo,
    Status,
    allocate,
)
from allocation_engine.errors import InvalidInput

COLOGNE = ShipTo(50.9375, 6.9603, "DE", "50667")


@pytest.fixture
def network() -> Network:
    return Network.of(
        [
            Node("WH-DORTMUND", NodeType.WAREHOUSE, 51.53, 7.55, "DE"),
            Node("WH-LEIPZIG", NodeType.WAREHOUSE, 51.42, 12.23, "DE", shipment_surcharge=1.0),
            Node("ST-BONN", NodeType.STORE, 50.7374, 7.0982, "DE", unit_handling_cost=0.3),
            Node("ST-KIEL", NodeType.STORE, 54.3233, 10.1228, "DE", active=False),
            Node("SUP-VIENNA", NodeType.SUPPLIER, 48.21, 16.37, "AT", ships_to={"AT"}),
            Node("ST-FULL", NodeType.STORE, 50.94, 6.96, "DE", capacity=0),
        ]
    )


@pytest.fixture
def inventory(network: Network) -> Inventory:
    everywhere = {n.id: 5 for n in network.nodes}
    return Inventory.from_available(
        network, {"A": everywhere, "B": {"WH-LEIPZIG": 2, "ST-BONN": 1}, "C": {"WH-DORTMUND": 1}}
    )


def test_cost_matches_the_formula_by_hand(network: Network, inventory: Inventory) -> None:
    """Given 2 x A and 1 x B to Cologne, the plan's total equals the formula worked by hand."""
    order = Order("o", (OrderLine("A", 2), OrderLine("B", 1)), COLOGNE)
    plan = allocate(order, network, inventory)
    assert plan.status is Status.OPTIMAL
    (shipment,) = plan.shipments  # Bonn holds both: one package beats two
    assert shipment.node_id == "ST-BONN"
    d = shipment.distance_km
    assert 22 < d < 25  # Bonn to Cologne, about 24 km
    by_hand = 8.759 + 3 * (0.423 + 0.3 + 0.000541 / 1.609344 * d)
    assert math.isclose(plan.total_cost, by_hand, rel_tol=1e-12)
    assert math.isclose(shipment.cost, by_hand, rel_tol=1e-12)


def test_every_node_is_explained(network: Network, inventory: Inventory) -> None:
    """Each fence that excludes a node is the reason given for it."""
    order = Order("o", (OrderLine("A", 1),), COLOGNE)
    plan = allocate(order, network, inventory)
    reasons = {e.node_id: e.reason for e in plan.explanations}
    assert reasons["ST-KIEL"] is Reason.INACTIVE
    assert reasons["SUP-VIENNA"] is Reason.DOES_NOT_SHIP_TO_COUNTRY
    assert reasons["ST-FULL"] is Reason.NO_CAPACITY
    # Bonn is nearer but its handling cost (0.30 per unit) outweighs ~55 km of distance cost
    assert reasons["WH-DORTMUND"] is Reason.CHOSEN
    assert reasons["ST-BONN"] in {Reason.COST_BOUND, Reason.DOMINATED, Reason.NOT_CHOSEN}
    assert reasons["WH-LEIPZIG"] in {Reason.COST_BOUND, Reason.DOMINATED, Reason.NOT_CHOSEN}
    chosen = plan.explanations.for_node("WH-DORTMUND").detail
    assert chosen.startswith("ships 1 units") and f"{plan.total_cost:.2f}" in chosen
    assert len(plan.explanations) == len(network)


def test_b2b_ships_from_warehouses_only(network: Network, inventory: Inventory) -> None:
    order = Order("o", (OrderLine("A", 2),), COLOGNE, customer_type=CustomerType.B2B)
    plan = allocate(order, network, inventory)
    assert [s.node_id for s in plan.shipments] == ["WH-DORTMUND"]
    assert plan.explanations.for_node("ST-BONN").reason is Reason.NODE_TYPE_NOT_ALLOWED


def test_max_distance_fence(network: Network, inventory: Inventory) -> None:
    order = Order("o", (OrderLine("B", 2),), COLOGNE)
    plan = allocate(order, network, inventory, RuleSet(max_distance_km=100))
    assert plan.status is Status.INFEASIBLE
    assert [(s.sku, s.requested, s.available) for s in plan.shortfalls] == [("B", 2, 1)]
    assert plan.explanations.for_node("WH-LEIPZIG").reason is Reason.TOO_FAR


def test_an_order_excludes_nodes_and_caps_its_shipments(
    network: Network, inventory: Inventory
) -> None:
    """A reroute's own fences: Bonn rejected it, so the order goes elsewhere and says why; its
    own shipment cap tightens the rule set's (and never loosens it)."""
    order = Order("o", (OrderLine("A", 2), OrderLine("B", 1)), COLOGNE)
    rerouted = dataclasses.replace(order, excluded_nodes={"ST-BONN"})
    plan = allocate(rerouted, network, inventory)
    assert plan.status is Status.OPTIMAL
    assert "ST-BONN" not in {s.node_id for s in plan.shipments}
    bonn = plan.explanations.for_node("ST-BONN")
    assert bonn.reason is Reason.EXCLUDED_FOR_ORDER
    assert "rejected" in bonn.detail
    split = Order("s", (OrderLine("B", 1), OrderLine("C", 1)), COLOGNE)
    assert len(allocate(split, network, inventory).shipments) == 2
    capped = allocate(dataclasses.replace(split, max_shipments=1), network, inventory)
    assert capped.status is Status.INFEASIBLE
    loose = dataclasses.replace(split, max_shipments=5)
    assert allocate(loose, network, inventory, RuleSet(max_shipments=1)).status is (
        Status.INFEASIBLE
    )


@pytest.mark.parametrize("bad", [0, -1, 1001, True, 1.5])
def test_an_order_shipment_cap_out_of_range_is_named(bad: object) -> None:
    with pytest.raises(InvalidInput) as caught:
        Order("o", (OrderLine("A", 1),), COLOGNE, max_shipments=bad)  # type: ignore[arg-type]
    assert "max_shipments" in str(caught.value)
    assert repr(bad)[:4] in str(caught.value)


def test_ship_complete_and_shipment_limit_give_shortfalls(
    network: Network, inventory: Inventory
) -> None:
    """B and C sit at different nodes: one shipment cannot carry both. Each alone could be had
    in full, so the order fails only as a whole: the shortfall names the sku one fullest plan
    leaves out, with what the fences allow for it alone (its whole quantity)."""
    order = Order("o", (OrderLine("B", 1), OrderLine("C", 1)), COLOGNE)
    assert len(allocate(order, network, inventory).shipments) == 2
    plan = allocate(order, network, inventory, RuleSet(ship_complete=True))
    assert plan.status is Status.INFEASIBLE
    assert [(s.sku, s.requested, s.available) for s in plan.shortfalls] in (
        [("B", 1, 1)],
        [("C", 1, 1)],
    )


def test_ship_together_group_stays_together(network: Network, inventory: Inventory) -> None:
    order = Order("o", (OrderLine("A", 1, "kit"), OrderLine("B", 2, "kit")), COLOGNE)
    plan = allocate(order, network, inventory)
    (shipment,) = plan.shipments
    assert shipment.node_id == "WH-LEIPZIG"  # the only node with 2 x B


def test_line_split_forbidden(network: Network, inventory: Inventory) -> None:
    order = Order("o", (OrderLine("B", 3),), COLOGNE)
    assert allocate(order, network, inventory).status is Status.OPTIMAL  # 2 + 1
    plan = allocate(order, network, inventory, RuleSet(allow_line_split=False))
    assert plan.status is Status.INFEASIBLE


def test_partial_fulfilment_pays_the_penalty(network: Network, inventory: Inventory) -> None:
    order = Order("o", (OrderLine("B", 5),), COLOGNE)
    rules = RuleSet(allow_partial=True, unfilled_unit_penalty=40.0)
    plan = allocate(order, network, inventory, rules)
    assert plan.status is Status.OPTIMAL
    assert plan.units_shipped == 3 and plan.units_unfilled == 2
    shipped = sum(s.cost for s in plan.shipments)
    assert math.isclose(plan.total_cost, shipped + 2 * 40.0)


def test_click_and_collect_sources_to_the_store(network: Network, inventory: Inventory) -> None:
    """Collecting 2 x B at Bonn (which holds 1): the rest comes from a warehouse, distances are
    measured to the store, and other stores are fenced out."""
    order = Order(
        "o",
        (OrderLine("B", 2),),
        COLOGNE,
        delivery_mode=DeliveryMode.CLICK_AND_COLLECT,
        pickup_store_id="ST-BONN",
    )
    plan = allocate(order, network, inventory)
    assert plan.status is Status.OPTIMAL
    by_node = {s.node_id: s for s in plan.shipments}
    assert set(by_node) <= {"ST-BONN", "WH-LEIPZIG"}
    assert sum(s.units for s in plan.shipments) == 2
    if "ST-BONN" in by_node:
        assert by_node["ST-BONN"].distance_km == 0.0


def test_same_input_same_plan(network: Network, inventory: Inventory) -> None:
    order = Order("o", (OrderLine("A", 3), OrderLine("B", 1)), COLOGNE)
    plans = [allocate(order, network, inventory) for _ in range(5)]
    assert all(p == plans[0] for p in plans)


def test_ties_break_towards_the_lower_node_id() -> None:
    """Two identical warehouses at the same spot: the one with the lower id ships."""
    network = Network.of(
        [Node(i, NodeType.WAREHOUSE, 51.0, 7.0, "DE") for i in ("WH-B", "WH-A", "WH-C")]
    )
    inventory = Inventory.from_available(network, {"A": {"WH-B": 1, "WH-A": 1, "WH-C": 1}})
    for method in ("engine", "reference"):
        plan = allocate(
            Order("o", (OrderLine("A", 1),), COLOGNE), network, inventory, method=method
        )
        assert [s.node_id for s in plan.shipments] == ["WH-A"]


def test_geodesic_distance_differs_slightly_from_haversine(
    network: Network, inventory: Inventory
) -> None:
    order = Order("o", (OrderLine("C", 1),), COLOGNE)
    sphere = allocate(order, network, inventory).shipments[0].distance_km
    ellipsoid = allocate(order, network, inventory, RuleSet(distance="geodesic")).shipments[0]
    assert ellipsoid.node_id == "WH-DORTMUND"
    assert 0 < abs(ellipsoid.distance_km - sphere) < 0.005 * sphere
