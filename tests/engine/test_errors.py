"""Bad input is refused with the field and the value named, and nothing changes."""

from __future__ import annotations

import math

import numpy as np
import pytest

from allocation_engine.engine import (
    InvalidInput,
    Inventory,
    InventoryPosition,
    Network,
    Node,
    NodeType,
    Order,
    OrderLine,
    ShipTo,
    allocate,
)
from allocation_engine.engine.codec import node_from_dict, order_from_dict

BERLIN = ShipTo(52.52, 13.405, "DE")


@pytest.fixture
def network() -> Network:
    return Network.of(
        [
            Node("WH-1", NodeType.WAREHOUSE, 51.5, 7.5, "DE"),
            Node("ST-1", NodeType.STORE, 52.5, 13.4, "DE"),
        ]
    )


@pytest.fixture
def inventory(network: Network) -> Inventory:
    return Inventory.from_available(network, {"A": {"WH-1": 3, "ST-1": 1}})


def problem_of(raised: pytest.ExceptionInfo[InvalidInput]) -> tuple[str, object]:
    (first, *_) = raised.value.problems
    return first.field, first.value


def test_negative_quantity_names_the_line() -> None:
    """Given a line with quantity -2, when the order is built, then the line's field is named."""
    with pytest.raises(InvalidInput) as raised:
        Order("o", (OrderLine("A", -2),), BERLIN)
    assert problem_of(raised) == ("lines[0].quantity", -2)
    assert "lines[0].quantity=-2" in str(raised.value)


def test_empty_order_is_refused() -> None:
    """An order names its fields from itself down: `lines`, not `order.lines`."""
    with pytest.raises(InvalidInput) as raised:
        Order("o", (), BERLIN)
    assert problem_of(raised)[0] == "lines"


def test_nan_coordinates_are_refused_for_nodes_and_ship_to() -> None:
    """NaN latitude on a node and on a ship-to are both named with their field."""
    with pytest.raises(InvalidInput) as raised:
        Node("WH-X", NodeType.WAREHOUSE, math.nan, 7.0, "DE")
    field, value = problem_of(raised)
    assert field == "latitude" and math.isnan(value)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput) as raised:
        Order("o", (OrderLine("A", 1),), ShipTo(52.0, math.nan, "DE"))
    assert problem_of(raised)[0] == "ship_to.longitude"


def test_duplicate_node_id_is_refused() -> None:
    node = Node("WH-1", NodeType.WAREHOUSE, 51.5, 7.5, "DE")
    with pytest.raises(InvalidInput) as raised:
        Network.of([node, node])
    assert problem_of(raised) == ("nodes.id", "WH-1")


def test_every_problem_is_reported_at_once() -> None:
    """Given an order with two bad lines and a bad ship-to, all three problems are listed."""
    with pytest.raises(InvalidInput) as raised:
        Order("o", (OrderLine("A", 0), OrderLine("", 1)), ShipTo(95.0, 0.0, "DE"))
    fields = [p.field for p in raised.value.problems]
    assert fields == ["lines[0].quantity", "lines[1].sku", "ship_to.latitude"]


def test_unknown_sku_changes_nothing(network: Network, inventory: Inventory) -> None:
    """Given an order for a sku nobody carries, when it is allocated, then the error names the
    order's line and the sku, and the inventory is untouched."""
    before = inventory.matrix(["A"]).copy()
    order = Order("o", (OrderLine("A", 1), OrderLine("NOPE", 1)), BERLIN)
    with pytest.raises(InvalidInput) as raised:
        allocate(order, network, inventory)
    assert problem_of(raised) == ("order.lines[1].sku", "NOPE")
    assert np.array_equal(inventory.matrix(["A"]), before)


def test_negative_stock_and_unknown_node_positions_are_refused(network: Network) -> None:
    with pytest.raises(InvalidInput) as raised:
        InventoryPosition("WH-1", "A", on_hand=-1)
    assert problem_of(raised) == ("on_hand", -1)
    with pytest.raises(InvalidInput) as raised:
        Inventory.from_available(network, {"A": {"WH-1": -1}})
    assert problem_of(raised) == ("position['WH-1', 'A'].on_hand", -1)
    with pytest.raises(InvalidInput) as raised:
        Inventory.from_positions(network, [InventoryPosition("WH-9", "A", 1)])
    assert problem_of(raised) == ("position['WH-9', 'A'].node_id", "WH-9")


def test_under_adds_the_prefix_once() -> None:
    """Whoever holds the order adds where it sits: every problem gets the prefix, once."""
    with pytest.raises(InvalidInput) as raised:
        Order("", (OrderLine("A", 0),), ShipTo(95.0, 0.0, "DE"))
    fields = [p.field for p in raised.value.under("order.").problems]
    assert fields == ["order.id", "order.lines[0].quantity", "order.ship_to.latitude"]
    assert raised.value.problems[0].field == "id"  # the original is unchanged


def test_repeated_sku_lines_must_be_merged() -> None:
    with pytest.raises(InvalidInput) as raised:
        Order("o", (OrderLine("A", 1), OrderLine("A", 2)), BERLIN)
    assert problem_of(raised) == ("lines[1].sku", "A")


def test_unknown_method_and_pickup_store(network: Network, inventory: Inventory) -> None:
    order = Order("o", (OrderLine("A", 1),), BERLIN)
    with pytest.raises(InvalidInput) as raised:
        allocate(order, network, inventory, method="fastest")
    assert problem_of(raised) == ("method", "fastest")
    from allocation_engine.engine import DeliveryMode

    collect = Order(
        "o",
        (OrderLine("A", 1),),
        BERLIN,
        delivery_mode=DeliveryMode.CLICK_AND_COLLECT,
        pickup_store_id="WH-1",
    )
    with pytest.raises(InvalidInput) as raised:
        allocate(collect, network, inventory)
    assert problem_of(raised) == ("order.pickup_store_id", "WH-1")


def test_inventory_is_immutable_under_planning(network: Network, inventory: Inventory) -> None:
    """Planning never draws stock down; only `without(plan.taken())` gives a new, smaller view."""
    order = Order("o", (OrderLine("A", 2),), BERLIN)
    plan = allocate(order, network, inventory)
    assert inventory.available("WH-1", "A") == 3
    after = inventory.without(plan.taken())
    assert after.available("WH-1", "A") + after.available("ST-1", "A") == 2
    assert inventory.available("WH-1", "A") == 3


def test_the_json_readers_name_fields_under_what_they_read() -> None:
    """`codec.order_from_dict` (the CLI's and replay's reader) names `order.<path>`, once,
    whether a key is missing or the engine refused a value; nodes likewise as `node.<field>`."""
    ship_to = {"latitude": 52.5, "longitude": 13.4, "country": "DE"}
    with pytest.raises(InvalidInput) as raised:
        order_from_dict({"id": "o", "lines": [{"sku": "A", "quantity": -2}], "ship_to": ship_to})
    assert problem_of(raised) == ("order.lines[0].quantity", -2)
    with pytest.raises(InvalidInput) as raised:
        order_from_dict({"lines": [], "ship_to": ship_to})
    assert problem_of(raised)[0] == "order.id"
    node = {"id": "WH-X", "type": "warehouse", "latitude": 91, "longitude": 7, "country": "DE"}
    with pytest.raises(InvalidInput) as raised:
        node_from_dict(node)
    assert problem_of(raised) == ("node.latitude", 91.0)
