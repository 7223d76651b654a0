"""TODO docstring."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TypeVar

from google.protobuf.timestamp_pb2 import Timestamp

from allocation_engine.engine import (
    CustomerType,
    DeliveryMode,
    FieldProblem,
    InvalidInput,
    Node,
    NodeType,
    Order,
    OrderLine,
    ShipTo,
    Shortfall,
)
from allocation_engine.errors import ProblemCollector
from allocation_engine.ports.inventory import (
    Level,
)
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
    for domain, wire in table.items():
        if wire == value:
            return domain
    if value == 0 and default is not None:
        return default
    problems.add(field, value, f"must be one of {[str(d) for d in table]}")
    return default


def prefixed(error: InvalidInput, prefix: str) -> list[FieldProblem]:
    return [FieldProblem(f"{prefix}{p.field}", p.value, p.problem) for p in error.problems]


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


def node_from_proto(message: cpb.Node, where: str, problems: ProblemCollector) -> Node | None:
    """The node, or None with its problems added (named `where.field`)."""
    node_type = enum_from_proto(NODE_TYPES, message.type, f"{where}.type", None, problems)
    if not message.country:
        problems.add(f"{where}.country", message.country, "is required")
    if node_type is None or not message.country:
        return None
    try:
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
    except InvalidInput as bad:
        problems.extend(
            FieldProblem(f"{where}.{p.field.split('.', 1)[-1]}", p.value, p.problem)
            for p in bad.problems
        )
        return None


def nodes_from_proto(messages: Sequence[cpb.Node]) -> list[Node]:
    problems = ProblemCollector()
    nodes = [node_from_proto(m, f"nodes[{i}]", problems) for i, m in enumerate(messages)]
    problems.raise_if_any()
    return [n for n in nodes if n is not None]


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
    """The order, or InvalidInput naming every bad field as `order.<path>`."""
    problems = ProblemCollector()
    if not message.HasField("ship_to"):
        problems.add("order.ship_to", None, "is required")
    customer = enum_from_proto(
        CUSTOMER_TYPES, message.customer_type, "order.customer_type", CustomerType.B2C, problems
    )
    mode = enum_from_proto(
        DELIVERY_MODES,
        message.delivery_mode,
        "order.delivery_mode",
        DeliveryMode.SHIP_TO_ADDRESS,
        problems,
    )
    problems.raise_if_any()
    try:
        return Order(
            id=message.id,
            lines=tuple(
                OrderLine(line.sku, line.quantity, line.ship_group or None)
                for line in message.lines
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
    except InvalidInput as bad:
        raise InvalidInput(
            [
                FieldProblem(f"order.{p.field.removeprefix('order.')}", p.value, p.problem)
                for p in bad.problems
            ]
        ) from None


# plans
def shortfall_to_proto(shortfall: Shortfall) -> cpb.Shortfall:
    return cpb.Shortfall(
        sku=shortfall.sku, requested=shortfall.requested, available=shortfall.available
    )


def shortfall_from_proto(message: cpb.Shortfall) -> Shortfall:
    return Shortfall(message.sku, message.requested, message.available)


# reservations (outbound only)
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


def level_from_proto(message: cpb.Position) -> Level:
    return Level(
        message.node_id, message.sku, message.on_hand, message.reserved, message.safety_stock
    )
