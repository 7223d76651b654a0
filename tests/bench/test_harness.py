"""The replay harness draws stock down and spends capacity as it goes; shadows change nothing."""

from __future__ import annotations

from allocation_engine.bench.harness import REFUSED, planner, replay
from allocation_engine.bench.kpi import node_usage
from allocation_engine.engine import (
    Inventory,
    Network,
    Node,
    NodeType,
    Order,
    OrderLine,
    RuleSet,
    ShipTo,
)

NETWORK = Network.of(
    [
        Node("WH-A", NodeType.WAREHOUSE, 51.5, 7.5, "DE"),
        Node("ST-B", NodeType.STORE, 50.9, 6.9, "DE", capacity=1),
    ]
)
COLOGNE = ShipTo(50.94, 6.96, "DE")


def orders(count: int, sku: str = "SKU-1") -> list[Order]:
    return [Order(f"o-{i}", (OrderLine(sku, 1),), COLOGNE) for i in range(count)]


def test_each_order_sees_the_stock_earlier_ones_left() -> None:
    """Given 3 units in all, when 4 one-unit orders replay, then 3 ship, the 4th is INFEASIBLE
    and the stock ends at zero."""
    stock = Inventory.from_available(NETWORK, {"SKU-1": {"WH-A": 2, "ST-B": 1}})
    run = replay(orders(4), NETWORK, stock, RuleSet(), "engine")
    assert [o.status for o in run.outcomes] == ["OPTIMAL"] * 3 + ["INFEASIBLE"]
    assert sum(o.units_filled for o in run.outcomes) == 3
    assert run.inventory is not None
    assert run.inventory.available("WH-A", "SKU-1") == 0
    assert run.inventory.available("ST-B", "SKU-1") == 0


def test_a_shipment_spends_one_unit_of_node_capacity() -> None:
    """Given the store (closest to Cologne) can take one shipment today, when two orders replay,
    then the first ships from the store and the second from the warehouse."""
    stock = Inventory.from_available(NETWORK, {"SKU-1": {"WH-A": 5, "ST-B": 5}})
    run = replay(orders(2), NETWORK, stock, RuleSet(), "engine")
    assert [o.shipments[0][0] for o in run.outcomes] == ["ST-B", "WH-A"]
    assert run.network is not None
    assert run.network.node("ST-B").capacity == 0
    usage = node_usage(run.outcomes, NETWORK)
    assert usage["capacity"] == {"store": {"capacity": 1, "used": 1, "full": 1, "nodes": 1}}
    assert usage["by_type"]["warehouse"] == {"shipments": 1, "units": 1, "nodes": 1}


def test_shadows_plan_on_the_same_stock_without_drawing_it_down() -> None:
    stock = Inventory.from_available(NETWORK, {"SKU-1": {"WH-A": 1}})
    run = replay(
        orders(3),
        NETWORK,
        stock,
        RuleSet(),
        "engine",
        shadows={"shopify": planner("shopify")},
        every={"shopify": 2},
    )
    assert [o.status for o in run.outcomes] == ["OPTIMAL", "INFEASIBLE", "INFEASIBLE"]
    assert [(o.order_id, o.status) for o in run.shadows["shopify"]] == [
        ("o-0", "FEASIBLE"),
        ("o-2", "INFEASIBLE"),
    ]


def test_an_order_the_engine_refuses_is_recorded_and_takes_nothing() -> None:
    """A sku no node carries (discontinued since the history was written) is REFUSED."""
    stock = Inventory.from_available(NETWORK, {"SKU-1": {"WH-A": 1}})
    run = replay(orders(1, sku="SKU-GONE") + orders(1), NETWORK, stock, RuleSet(), "engine")
    assert [o.status for o in run.outcomes] == [REFUSED, "OPTIMAL"]
    assert run.outcomes[0].units_filled == 0
