"""Shortfalls report, per sku, the most the fences allow for that sku alone."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings

from allocation_engine.engine import (
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
from tests.engine.oracle import optimum
from tests.engine.strategies import Instance, instances

COLOGNE = ShipTo(50.94, 6.96, "DE")


def network_of(*ids: str) -> Network:
    return Network.of(
        Node(node_id, NodeType.WAREHOUSE, 50.0 + i / 10, 7.0, "DE") for i, node_id in enumerate(ids)
    )


def test_a_line_no_single_node_fills_shows_the_best_node() -> None:
    """Under no-split, 443 ordered and one node holding 442: available is 442 (it was 0), the
    most one order of this sku could get from one node."""
    network = network_of("WH-1", "WH-2")
    inventory = Inventory.from_available(network, {"A": {"WH-1": 442, "WH-2": 300}})
    order = Order("o", (OrderLine("A", 443),), COLOGNE)
    plan = allocate(order, network, inventory, RuleSet(allow_line_split=False))
    assert plan.status is Status.INFEASIBLE
    assert [(s.sku, s.requested, s.available) for s in plan.shortfalls] == [("A", 443, 442)]
    split = allocate(order, network, inventory)  # split: both nodes together hold 742
    assert split.status is Status.OPTIMAL


def test_a_plentiful_sku_is_not_short_under_a_shipment_limit() -> None:
    """B is plentiful, A is short everywhere: only A is named, with what the two best nodes
    hold (the shipment limit), whatever a fullest plan of the whole order would take of B."""
    network = network_of("WH-1", "WH-2", "WH-3")
    inventory = Inventory.from_available(
        network,
        {"A": {"WH-1": 4, "WH-2": 3, "WH-3": 2}, "B": {"WH-1": 50, "WH-2": 50, "WH-3": 50}},
    )
    order = Order("o", (OrderLine("A", 10), OrderLine("B", 20)), COLOGNE)
    plan = allocate(order, network, inventory, RuleSet(max_shipments=2))
    assert [(s.sku, s.requested, s.available) for s in plan.shortfalls] == [("A", 10, 7)]
    unlimited = allocate(order, network, inventory)
    assert [(s.sku, s.available) for s in unlimited.shortfalls] == [("A", 9)]


def test_a_ship_together_group_that_no_node_holds_names_its_skus() -> None:
    """A and B must ship together but no node holds both: each alone could be had, so the
    order fails as a whole and its skus are named with available = requested."""
    network = network_of("WH-1", "WH-2")
    inventory = Inventory.from_available(network, {"A": {"WH-1": 1}, "B": {"WH-2": 1}})
    order = Order("o", (OrderLine("A", 1, "kit"), OrderLine("B", 1, "kit")), COLOGNE)
    plan = allocate(order, network, inventory)
    assert plan.status is Status.INFEASIBLE
    assert [(s.sku, s.requested, s.available) for s in plan.shortfalls] == [
        ("A", 1, 1),
        ("B", 1, 1),
    ]


def alone(case: Instance, sku: str) -> int:
    """What the oracle can fill of `sku` ordered by itself: the largest quantity it can plan."""
    line = next(line for line in case.order.lines if line.sku == sku)
    for quantity in range(line.quantity, 0, -1):
        order = Order(
            case.order.id,
            (OrderLine(sku, quantity, line.ship_group),),
            case.order.ship_to,
            case.order.channel,
            case.order.customer_type,
            case.order.delivery_mode,
            case.order.pickup_store_id,
        )
        if optimum(order, case.network, case.available, case.rules) is not None:
            return quantity
    return 0


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(instances(max_nodes=5, max_lines=3))
def test_each_shortfall_is_what_its_sku_alone_can_get(case: Instance) -> None:
    """Given any small instance that cannot be filled, each shortfall's `available` equals what
    the brute-force oracle fills of that sku ordered alone; the skus named are exactly those
    short alone, or, when none is, skus a fullest plan leaves out (available = requested)."""
    plan = allocate(case.order, case.network, case.inventory, case.rules)
    if plan.status is not Status.INFEASIBLE:
        return
    expected = {line.sku: alone(case, line.sku) for line in case.order.lines}
    short = {line.sku for line in case.order.lines if expected[line.sku] < line.quantity}
    named = {s.sku for s in plan.shortfalls}
    assert plan.shortfalls
    for s in plan.shortfalls:
        assert s.available == expected[s.sku], s
    if short:
        assert named == short
    else:
        assert all(s.available == s.requested for s in plan.shortfalls)
