"""Protobuf <-> domain: the one place where `allocation.v1` messages meet engine types.

Every `x_from_proto` sits next to its `x_to_proto`. Readers validate as they go and report every
bad field by its path in the request (`order.lines[2].quantity`), so the edge can answer
INVALID_ARGUMENT naming the field. Reservations and availability only ever leave the server, so
they have a writer alone.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TypeVar

from google.protobuf.timestamp_pb2 import Timestamp

from .engine import (
    CustomerType,
    DeliveryMode,
    FieldProblem,
    InvalidInput,
    Node,
    NodeType,
    Order,
    OrderLine,
    Plan,
    RuleSet,
    Shipment,
    ShipmentLine,
    ShipTo,
    Shortfall,
    Status,
)
from .engine.errors import ProblemCollector
from .engine.ports import Adjustment, Level, ReservationRecord, ReservationState, SnapshotLine
from .proto.allocation.v1 import allocation_pb2 as apb
from .proto.allocation.v1 import common_pb2 as cpb
from .proto.allocation.v1 import inventory_pb2 as ipb
from .proto.allocation.v1 import rules_pb2 as rpb

T = TypeVar("T")

_NODE_TYPES = {
    NodeType.WAREHOUSE: cpb.NODE_TYPE_WAREHOUSE,
    NodeType.STORE: cpb.NODE_TYPE_STORE,
    NodeType.SUPPLIER: cpb.NODE_TYPE_SUPPLIER,
}
_CUSTOMER_TYPES = {CustomerType.B2C: cpb.CUSTOMER_TYPE_B2C, CustomerType.B2B: cpb.CUSTOMER_TYPE_B2B}
_DELIVERY_MODES = {
    DeliveryMode.SHIP_TO_ADDRESS: cpb.DELIVERY_MODE_SHIP_TO_ADDRESS,
    DeliveryMode.CLICK_AND_COLLECT: cpb.DELIVERY_MODE_CLICK_AND_COLLECT,
}
_STATUSES = {
    Status.OPTIMAL: apb.PLAN_STATUS_OPTIMAL,
    Status.FEASIBLE: apb.PLAN_STATUS_FEASIBLE,
    Status.INFEASIBLE: apb.PLAN_STATUS_INFEASIBLE,
}
_RESERVATION_STATES = {
    ReservationState.PENDING: apb.RESERVATION_STATE_PENDING,
    ReservationState.HELD: apb.RESERVATION_STATE_HELD,
    ReservationState.COMMITTED: apb.RESERVATION_STATE_COMMITTED,
    ReservationState.RELEASED: apb.RESERVATION_STATE_RELEASED,
    ReservationState.EXPIRED: apb.RESERVATION_STATE_EXPIRED,
    ReservationState.FULFILLED: apb.RESERVATION_STATE_FULFILLED,
}


def _enum_from_proto(
    table: Mapping[T, int], value: int, field: str, default: T | None, problems: ProblemCollector
) -> T | None:
    for domain, wire in table.items():
        if wire == value:
            return domain
    if value == 0 and default is not None:
        return default
    problems.add(field, value, f"must be one of {[str(d) for d in table]}")
    return default


def _prefixed(error: InvalidInput, prefix: str) -> list[FieldProblem]:
    return [FieldProblem(f"{prefix}{p.field}", p.value, p.problem) for p in error.problems]


# nodes
def node_to_proto(node: Node) -> cpb.Node:
    message = cpb.Node(
        id=node.id,
        type=_NODE_TYPES[node.type],
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
    node_type = _enum_from_proto(_NODE_TYPES, message.type, f"{where}.type", None, problems)
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
        customer_type=_CUSTOMER_TYPES[order.customer_type],
        delivery_mode=_DELIVERY_MODES[order.delivery_mode],
        pickup_store_id=order.pickup_store_id or "",
    )


def order_from_proto(message: cpb.Order) -> Order:
    """The order, or InvalidInput naming every bad field as `order.<path>`."""
    problems = ProblemCollector()
    if not message.HasField("ship_to"):
        problems.add("order.ship_to", None, "is required")
    customer = _enum_from_proto(
        _CUSTOMER_TYPES, message.customer_type, "order.customer_type", CustomerType.B2C, problems
    )
    mode = _enum_from_proto(
        _DELIVERY_MODES,
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


def plan_to_proto(plan: Plan, *, explain: bool = False) -> apb.Plan:
    message = apb.Plan(
        order_id=plan.order_id,
        status=_STATUSES[plan.status],
        shipments=[
            apb.Shipment(
                node_id=s.node_id,
                lines=[apb.ShipmentLine(sku=line.sku, quantity=line.quantity) for line in s.lines],
                distance_km=s.distance_km,
                cost=s.cost,
            )
            for s in plan.shipments
        ],
        total_cost=plan.total_cost,
        optimality_gap=0.0 if math.isnan(plan.optimality_gap) else plan.optimality_gap,
        unfilled=[apb.ShipmentLine(sku=line.sku, quantity=line.quantity) for line in plan.unfilled],
        shortfalls=[shortfall_to_proto(s) for s in plan.shortfalls],
        rules_name=plan.rules.rpartition("@")[0] or plan.rules,
        rules_version=plan.rules.rpartition("@")[2] if "@" in plan.rules else "",
        candidates=plan.candidates,
        solver_candidates=plan.solver_candidates,
    )
    if explain:
        message.explanations.extend(
            apb.Explanation(node_id=e.node_id, reason=e.reason.name, detail=e.detail)
            for e in plan.explanations
        )
    return message


def plan_from_proto(message: apb.Plan) -> Plan:
    """A plan as a client sent it back (Reserve with a plan) or as the CLI prints it."""
    problems = ProblemCollector()
    status = _enum_from_proto(_STATUSES, message.status, "plan.status", Status.FEASIBLE, problems)
    problems.raise_if_any()
    return Plan(
        order_id=message.order_id,
        method="engine",
        status=status or Status.FEASIBLE,
        shipments=tuple(
            Shipment(
                s.node_id,
                tuple(ShipmentLine(line.sku, line.quantity) for line in s.lines),
                s.distance_km,
                s.cost,
            )
            for s in message.shipments
        ),
        total_cost=message.total_cost,
        optimality_gap=message.optimality_gap,
        unfilled=tuple(ShipmentLine(line.sku, line.quantity) for line in message.unfilled),
        shortfalls=tuple(shortfall_from_proto(s) for s in message.shortfalls),
        rules="@".join(filter(None, (message.rules_name, message.rules_version))),
        candidates=message.candidates,
        solver_candidates=message.solver_candidates,
    )


# reservations (outbound only)
def timestamp(seconds: float) -> Timestamp:
    stamp = Timestamp()
    stamp.FromNanoseconds(round(seconds * 1e9))
    return stamp


def reservation_to_proto(record: ReservationRecord) -> apb.Reservation:
    message = apb.Reservation(
        id=record.id,
        order_id=record.order_id,
        state=_RESERVATION_STATES[record.state],
        created_at=timestamp(record.created_at),
        expires_at=timestamp(record.expires_at),
        attempts=record.attempt,
    )
    if record.plan is not None:
        message.plan.CopyFrom(plan_to_proto(record.plan))
    return message


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


def availability_to_proto(sku: str, levels: Sequence[Level]) -> ipb.SkuAvailability:
    return ipb.SkuAvailability(
        sku=sku,
        on_hand=sum(lv.on_hand for lv in levels),
        reserved=sum(lv.reserved for lv in levels),
        safety_stock=sum(lv.safety_stock for lv in levels),
        available=sum(lv.available for lv in levels),
        positions=[level_to_proto(lv) for lv in levels],
    )


def snapshot_line_to_proto(line: SnapshotLine) -> ipb.SnapshotPosition:
    message = ipb.SnapshotPosition(node_id=line.node_id, sku=line.sku, on_hand=line.on_hand)
    if line.safety_stock is not None:
        message.safety_stock = line.safety_stock
    return message


def snapshot_line_from_proto(message: ipb.SnapshotPosition) -> SnapshotLine:
    safety = message.safety_stock if message.HasField("safety_stock") else None
    return SnapshotLine(message.node_id, message.sku, message.on_hand, safety)


def adjustment_to_proto(adjustment: Adjustment) -> ipb.Adjustment:
    message = ipb.Adjustment(
        node_id=adjustment.node_id, sku=adjustment.sku, on_hand_delta=adjustment.on_hand_delta
    )
    if adjustment.safety_stock is not None:
        message.safety_stock = adjustment.safety_stock
    return message


def adjustment_from_proto(message: ipb.Adjustment) -> Adjustment:
    safety = message.safety_stock if message.HasField("safety_stock") else None
    return Adjustment(message.node_id, message.sku, message.on_hand_delta, safety)


# rules
def rules_to_proto(rules: RuleSet, text: str, revision: int) -> rpb.RuleSet:
    return rpb.RuleSet(toml=text, name=rules.name, version=rules.version, revision=revision)


def rules_text_from_proto(message: rpb.RuleSet) -> str:
    """Only the TOML of a rule set travels inward; name and version are read from it."""
    return message.toml


def problem_to_proto(problem: FieldProblem) -> rpb.RuleProblem:
    return rpb.RuleProblem(field=problem.field, value=repr(problem.value), problem=problem.problem)


def problem_from_proto(message: rpb.RuleProblem) -> FieldProblem:
    return FieldProblem(message.field, message.value, message.problem)
