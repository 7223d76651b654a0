"""Protobuf <-> domain for `common.proto`: nodes, orders, stock positions and shortfalls.

These messages are shared by every allocation.v1 service, so their mappers live here once and the
per-service converters (`allocation`, `inventory`, `orders`) import them, with the enum tables and
`enum_from_proto`. Readers name bad fields from the message down (`lines[0].quantity`,
`ship_to.latitude`, `type`), as the engine does; the servicer that knows where the message sits
in its request adds the prefix (`InvalidInput.under("order.")`). `nodes_from_proto` reads the
repeated field of a request itself and so names each node `nodes[i].`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TypeVar

from google.protobuf.timestamp_pb2 import Timestamp

from allocation_engine.engine import (
    CustomerType,
    DeliveryMode,
    InvalidInput,
    Node,
    NodeType,
    Order,
    OrderLine,
    ShipTo,
    Shortfall,
)
from allocation_engine.errors import ProblemCollector
from allocation_engine.ports.inventory import Level
from allocation_engine.proto.allocation.v1 import common_pb2 as cpb

T = TypeVar("T")


NODE_TYPES = {
    NodeType.WAREHOUSE: cpb.NODE_TYPE_WAREHOUSE,
    NodeType.STORE: cpb.NODE_TYPE_STORE,
    NodeType.SUPPLIER: cpb.NODE_TYPE_SUPPLIER,
}


CUSTOMER_TYPES = {CustomerType.B2C: cpb.CUSTOMER_TYPE_B2C, CustomerType.B2B: cpb.CUSTOMER_TYPE_B2B}


DELIVERY_MODES = {
    DeliveryMode.SHIP_TO_ADDRESS: cpb.DELIVERY_MODE_SHIP_TO_ADDRESS,
    DeliveryMode.CLICK_AND_COLLECT: cpb.DELIVERY_MODE_CLICK_AND_COLLECT,
}


def enum_from_proto(
    table: Mapping[T, int], value: int, field: str, default: T | None, problems: ProblemCollector
) -> T | None:
    """The domain member for wire `value`; 0 (unspecified) is `default` when there is one,
    anything else unknown is a problem named `field`."""
    for domain, wire in table.items():
        if wire == value:
            return domain
    if value == 0 and default is not None:
        return default
    problems.add(field, value, f"must be one of {[str(d) for d in table]}")
    return default


# nodes
def node_to_proto(node: Node) -> cpb.Node:
    message = cpb.Node(
        id=node.id,
        type=NODE_TYPES[node.type],
        latitude=node.latitude,
        longitude=node.longitude,
        country=node.country,
        ships_to=sorted(node.ships_to),
        unit_handling_cost=node.unit_handling_cost,
        shipment_surcharge=node.shipment_surcharge,
        active=node.active,
        tags=sorted(node.tags),
    )
    if node.capacity is not None:
        message.capacity = node.capacity
    return message


def node_from_proto(message: cpb.Node) -> Node:
    """The node, or InvalidInput naming every bad field from the node down (`latitude`)."""
    problems = ProblemCollector()
    node_type = enum_from_proto(NODE_TYPES, message.type, "type", None, problems)
    if not message.country:
        problems.add("country", message.country, "is required")
    problems.raise_if_any()
    assert node_type is not None
    return Node(
        id=message.id,
        type=node_type,
        latitude=message.latitude,
        longitude=message.longitude,
        country=message.country,
        ships_to=frozenset(message.ships_to),
        unit_handling_cost=message.unit_handling_cost,
        shipment_surcharge=message.shipment_surcharge,
        capacity=message.capacity if message.HasField("capacity") else None,
        active=message.active if message.HasField("active") else True,
        tags=frozenset(message.tags),
    )


def nodes_from_proto(messages: Sequence[cpb.Node]) -> list[Node]:
    """Every node of a request's `nodes`, or InvalidInput naming all bad ones (`nodes[3].type`)."""
    problems = ProblemCollector()
    nodes = []
    for i, message in enumerate(messages):
        try:
            nodes.append(node_from_proto(message))
        except InvalidInput as bad:
            problems.extend(bad.under(f"nodes[{i}].").problems)
    problems.raise_if_any()
    return nodes


# orders
def order_to_proto(order: Order) -> cpb.Order:
    return cpb.Order(
        id=order.id,
        lines=[
            cpb.OrderLine(sku=line.sku, quantity=line.quantity, ship_group=line.ship_group or "")
            for line in order.lines
        ],
        ship_to=cpb.ShipTo(
            latitude=order.ship_to.latitude,
            longitude=order.ship_to.longitude,
            country=order.ship_to.country,
            postal_code=order.ship_to.postal_code,
        ),
        channel=order.channel,
        customer_type=CUSTOMER_TYPES[order.customer_type],
        delivery_mode=DELIVERY_MODES[order.delivery_mode],
        pickup_store_id=order.pickup_store_id or "",
    )


def order_from_proto(message: cpb.Order) -> Order:
    """The order, or InvalidInput naming every bad field from the order down (`lines[0].sku`)."""
    problems = ProblemCollector()
    if not message.HasField("ship_to"):
        problems.add("ship_to", None, "is required")
    customer = enum_from_proto(
        CUSTOMER_TYPES, message.customer_type, "customer_type", CustomerType.B2C, problems
    )
    mode = enum_from_proto(
        DELIVERY_MODES,
        message.delivery_mode,
        "delivery_mode",
        DeliveryMode.SHIP_TO_ADDRESS,
        problems,
    )
    problems.raise_if_any()
    return Order(
        id=message.id,
        lines=tuple(
            OrderLine(line.sku, line.quantity, line.ship_group or None) for line in message.lines
        ),
        ship_to=ShipTo(
            message.ship_to.latitude,
            message.ship_to.longitude,
            message.ship_to.country,
            message.ship_to.postal_code,
        ),
        channel=message.channel or "web",
        customer_type=customer or CustomerType.B2C,
        delivery_mode=mode or DeliveryMode.SHIP_TO_ADDRESS,
        pickup_store_id=message.pickup_store_id or None,
    )


# shortfalls (inside plans and FAILED_PRECONDITION details)
def shortfall_to_proto(shortfall: Shortfall) -> cpb.Shortfall:
    return cpb.Shortfall(
        sku=shortfall.sku, requested=shortfall.requested, available=shortfall.available
    )


def shortfall_from_proto(message: cpb.Shortfall) -> Shortfall:
    return Shortfall(message.sku, message.requested, message.available)


# time (outbound only)
def timestamp(seconds: float) -> Timestamp:
    stamp = Timestamp()
    stamp.FromNanoseconds(round(seconds * 1e9))
    return stamp


# stock
def level_to_proto(level: Level) -> cpb.Position:
    return cpb.Position(
        node_id=level.node_id,
        sku=level.sku,
        on_hand=level.on_hand,
        reserved=level.reserved,
        safety_stock=level.safety_stock,
        available=level.available,
    )
