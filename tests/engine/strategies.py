"""Hypothesis strategies for small and medium sourcing instances over a Germany-sized box."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from hypothesis import strategies as st

from allocation_engine.engine import (
    CustomerType,
    DeliveryMode,
    Inventory,
    Network,
    Node,
    NodeType,
    Order,
    OrderLine,
    RuleSet,
    ShipTo,
)


@dataclass(frozen=True)
class Instance:
    network: Network
    available: dict  # (node id, sku) -> units
    order: Order
    rules: RuleSet

    @property
    def inventory(self) -> Inventory:
        skus = {line.sku for line in self.order.lines}
        table = {
            sku: {n.id: self.available.get((n.id, sku), 0) for n in self.network.nodes}
            for sku in skus
        }
        return Inventory.from_available(self.network, table)


latitudes = st.floats(47.3, 55.0)
longitudes = st.floats(6.0, 15.0)


@st.composite
def nodes(draw, count: int, fenced: bool) -> list[Node]:
    out = []
    for i in range(count):
        out.append(
            Node(
                id=f"N{i:02d}",
                type=draw(st.sampled_from(list(NodeType))),
                latitude=draw(latitudes),
                longitude=draw(longitudes),
                country="DE",
                ships_to=draw(st.sampled_from([frozenset(), frozenset({"DE"}), frozenset({"AT"})]))
                if fenced
                else frozenset(),
                unit_handling_cost=draw(st.sampled_from([0.0, 0.25, 1.0])),
                shipment_surcharge=draw(st.sampled_from([0.0, 1.5, 4.0])),
                capacity=draw(st.sampled_from([None, None, 3, 0])) if fenced else None,
                active=draw(st.booleans() | st.just(True)) if fenced else True,
            )
        )
    return out


@st.composite
def rule_sets(draw, fenced: bool) -> RuleSet:
    partial = draw(st.booleans())
    return RuleSet(
        allow_partial=partial,
        unfilled_unit_penalty=draw(st.sampled_from([0.5, 5.0, 30.0])) if partial else 0.0,
        max_shipments=draw(st.sampled_from([None, 1, 2, 3])),
        ship_complete=draw(st.booleans()) if fenced else False,
        allow_line_split=draw(st.booleans()),
        max_distance_km=draw(st.sampled_from([None, 250.0, 500.0])) if fenced else None,
        shipment_distance_cost=draw(st.sampled_from([0.0, 0.01])),
        unit_distance_cost=draw(st.sampled_from([0.000541 / 1.609344, 0.01])),
        click_collect_own_stock_first=draw(st.booleans()) if fenced else True,
    )


FEW_UNITS = st.integers(1, 4)  # what a line asks, by default


def unit_stock(quantity: int) -> st.SearchStrategy[int]:
    """Stock of a few units, whatever the line asks."""
    return st.integers(0, 5)


@st.composite
def instances(
    draw,
    max_nodes: int = 6,
    max_lines: int = 3,
    fenced: bool = True,
    quantities: st.SearchStrategy[int] = FEW_UNITS,
    stock: Callable[[int], st.SearchStrategy[int]] = unit_stock,
    groups: tuple[str | None, ...] = (None, None, "g1", "g2"),
    order_id: str = "o-1",
) -> Instance:
    """A random network, stock, order and rule set; `quantities`, `stock` (per line quantity)
    and `groups` (ship-together labels drawn per line) set the order's shape."""
    count = draw(st.integers(1, max_nodes))
    network = Network.of(draw(nodes(count, fenced)))
    n_lines = draw(st.integers(1, max_lines))
    labels = draw(st.lists(st.sampled_from(groups), min_size=n_lines, max_size=n_lines))
    lines = tuple(OrderLine(f"SKU-{j}", draw(quantities), labels[j]) for j in range(n_lines))
    available = {
        (n.id, line.sku): draw(stock(line.quantity)) for n in network.nodes for line in lines
    }
    customer = draw(st.sampled_from(list(CustomerType))) if fenced else CustomerType.B2C
    stores = [n.id for n in network.nodes if n.type is NodeType.STORE]
    collect = fenced and stores and draw(st.booleans())
    order = Order(
        id=order_id,
        lines=lines,
        ship_to=ShipTo(
            draw(latitudes), draw(longitudes), draw(st.sampled_from(["DE", "DE", "AT"]))
        ),
        customer_type=customer,
        delivery_mode=DeliveryMode.CLICK_AND_COLLECT if collect else DeliveryMode.SHIP_TO_ADDRESS,
        pickup_store_id=draw(st.sampled_from(stores)) if collect else None,
    )
    return Instance(network, available, order, draw(rule_sets(fenced)))
