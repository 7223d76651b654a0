"""Protobuf <-> workflow types for `OrderService`: where `orders.proto` meets the workflow.

Requests are read into workflow commands (validation that needs no state happens in the
workflow and names request fields: `lines[1].unit_price`, `customer.email`); orders, customers
and timeline events only leave the server, so they have a writer alone. Enums map by name: the
proto value `ORDER_STATE_SHIPPED` is `OrderState.SHIPPED`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Any, TypeVar

from google.protobuf import struct_pb2

from allocation_engine.api.convert.common import (
    CUSTOMER_TYPES,
    DELIVERY_MODES,
    enum_from_proto,
    timestamp,
)
from allocation_engine.engine import CustomerType, DeliveryMode, InvalidInput, ShipTo
from allocation_engine.engine.limits import MAX_PAGE_OFFSET
from allocation_engine.errors import ProblemCollector
from allocation_engine.orders.commands import (
    REJECT_REASONS,
    CustomerInfo,
    Inspection,
    PlaceOrder,
    ReturnItem,
)
from allocation_engine.orders.definition import Workflows
from allocation_engine.orders.machines import OrderState, PaymentState, ReturnState, ShipmentState
from allocation_engine.orders.model import (
    Address,
    Customer,
    Event,
    FlowStatus,
    Item,
    OrderRecord,
    ShipmentItem,
)
from allocation_engine.orders.payments import PaymentEvent, PaymentEventKind
from allocation_engine.proto.allocation.v1 import allocation_pb2 as apb
from allocation_engine.proto.allocation.v1 import common_pb2 as cpb
from allocation_engine.proto.allocation.v1 import orders_pb2 as opb

E = TypeVar("E", bound=StrEnum)


def _by_name(enum: type[E], proto_enum: Any, prefix: str) -> dict[E, Any]:
    return {member: proto_enum.Value(f"{prefix}{member.value}") for member in enum}


ORDER_STATES = _by_name(OrderState, opb.OrderState, "ORDER_STATE_")
PAYMENT_STATES = _by_name(PaymentState, opb.PaymentState, "PAYMENT_STATE_")
SHIPMENT_STATES = _by_name(ShipmentState, opb.ShipmentState, "SHIPMENT_STATE_")
RETURN_STATES = _by_name(ReturnState, opb.ReturnState, "RETURN_STATE_")
FLOW_STATUSES = _by_name(FlowStatus, opb.WorkflowStatus, "WORKFLOW_STATUS_")
PAYMENT_EVENTS = {
    PaymentEventKind.AUTHORIZED: opb.PAYMENT_EVENT_KIND_AUTHORIZED,
    PaymentEventKind.CAPTURED: opb.PAYMENT_EVENT_KIND_CAPTURED,
    PaymentEventKind.FAILED: opb.PAYMENT_EVENT_KIND_FAILED,
}


# requests in


def place_from_proto(m: opb.PlaceOrderRequest) -> PlaceOrder:
    """The PlaceOrder command; enums and required messages checked here, the rest in the flow."""
    problems = ProblemCollector()
    if not m.HasField("ship_to"):
        problems.add("ship_to", None, "is required")
    customer_type = enum_from_proto(
        CUSTOMER_TYPES, m.customer_type, "customer_type", CustomerType.B2C, problems
    )
    mode = enum_from_proto(
        DELIVERY_MODES, m.delivery_mode, "delivery_mode", DeliveryMode.SHIP_TO_ADDRESS, problems
    )
    problems.raise_if_any()
    return PlaceOrder(
        channel=m.channel,
        external_id=m.external_order_id,
        customer=CustomerInfo(
            m.customer.id, m.customer.email, m.customer.name, m.customer.language
        ),
        items=tuple(Item(x.sku, x.quantity, x.unit_price, x.name) for x in m.lines),
        ship_to=ShipTo(
            m.ship_to.latitude, m.ship_to.longitude, m.ship_to.country, m.ship_to.postal_code
        ),
        address=Address(
            m.address.name,
            m.address.street,
            m.address.postal_code,
            m.address.city,
            m.address.country,
        ),
        currency=m.currency or "EUR",
        customer_type=customer_type or CustomerType.B2C,
        delivery_mode=mode or DeliveryMode.SHIP_TO_ADDRESS,
        pickup_store_id=m.pickup_store_id or None,
        payment_method=m.payment_method,
    )


def payment_event_from_proto(m: opb.PaymentEvent) -> PaymentEvent:
    """A payment event as a provider reported it; an unknown kind is named `kind`."""
    problems = ProblemCollector()
    kind = enum_from_proto(PAYMENT_EVENTS, m.kind, "kind", None, problems)
    problems.raise_if_any()
    assert kind is not None
    return PaymentEvent(kind, m.amount, m.reference, reason=m.reason)


REJECT_REASON_NAMES: dict[int, str] = {
    int(opb.RejectReason.Value(f"REJECT_REASON_{reason.upper()}")): reason
    for reason in REJECT_REASONS
}


def reject_reason_from_proto(value: int) -> str:
    """The flow's reason name; an unset or unknown value passes as its number, which the flow
    refuses naming the field `reason`."""
    return REJECT_REASON_NAMES.get(value, str(value))


def shipment_items_from_proto(lines: Sequence[apb.ShipmentLine]) -> tuple[ShipmentItem, ...]:
    return tuple(ShipmentItem(x.sku, x.quantity) for x in lines)


def return_items_from_proto(items: Sequence[opb.ReturnItem]) -> tuple[ReturnItem, ...]:
    return tuple(ReturnItem(x.sku, x.quantity) for x in items)


def inspections_from_proto(items: Sequence[opb.Inspection]) -> tuple[Inspection, ...]:
    return tuple(Inspection(x.sku, x.restock, x.write_off) for x in items)


def order_state_from_proto(value: int) -> OrderState | None:
    """A ListOrders filter: unspecified = any state."""
    if value == opb.ORDER_STATE_UNSPECIFIED:
        return None
    problems = ProblemCollector()
    state = enum_from_proto(ORDER_STATES, value, "state", None, problems)
    problems.raise_if_any()
    return state


def page_from_token(token: str) -> int:
    """The offset a ListOrders page token stands for ("" = the first page): ASCII digits, at
    most `MAX_PAGE_OFFSET`; anything else is not a token this server gave out."""
    if not token:
        return 0
    if not (token.isascii() and token.isdigit()) or len(token) > len(str(MAX_PAGE_OFFSET)):
        raise InvalidInput.one("page_token", token, "not a token this server gave out")
    offset = int(token)
    if offset > MAX_PAGE_OFFSET:
        raise InvalidInput.one("page_token", token, "not a token this server gave out")
    return offset


# answers out


def order_view_to_proto(r: OrderRecord, workflows: Workflows) -> opb.OrderView:
    """The order as clients see it, with the kind of the workflow step it is at."""
    steps = workflows.get(r.workflow).steps
    p = r.payment
    a = r.address
    view = opb.OrderView(
        id=r.id,
        channel=r.channel,
        external_order_id=r.external_id,
        customer_id=r.customer_id,
        customer_type=CUSTOMER_TYPES[r.order.customer_type],
        workflow=r.workflow,
        state=ORDER_STATES[r.state],
        workflow_status=FLOW_STATUSES[r.status],
        current_step=steps[r.step].kind if r.step < len(steps) else "",
        blocked_reason=r.blocked_reason,
        lines=[
            opb.PricedLine(sku=i.sku, quantity=i.quantity, unit_price=i.unit_price, name=i.name)
            for i in r.items
        ],
        currency=r.currency,
        total=r.total,
        ship_to=cpb.ShipTo(
            latitude=r.order.ship_to.latitude,
            longitude=r.order.ship_to.longitude,
            country=r.order.ship_to.country,
            postal_code=r.order.ship_to.postal_code,
        ),
        address=opb.Address(
            name=a.name, street=a.street, postal_code=a.postal_code, city=a.city, country=a.country
        ),
        delivery_mode=DELIVERY_MODES[r.order.delivery_mode],
        pickup_store_id=r.order.pickup_store_id or "",
        payment=opb.Payment(
            provider=p.provider,
            state=PAYMENT_STATES[p.state],
            amount=p.amount,
            authorized=p.authorized,
            captured=p.captured,
            refunded=p.refunded,
            credited=p.credited,
            reference=p.reference,
            client_secret=p.client_secret,
            failure=p.failure,
        ),
        reservation_id=r.reservation_id,
        returns=[
            opb.Return(
                id=t.id,
                state=RETURN_STATES[t.state],
                lines=[
                    opb.ReturnLine(
                        sku=x.sku,
                        requested=x.requested,
                        received=x.received,
                        restocked=x.restocked,
                        written_off=x.written_off,
                    )
                    for x in t.lines
                ],
                reason=t.reason,
                node_id=t.node_id,
                refund=t.refund,
                requested_at=timestamp(t.requested_at),
            )
            for t in r.returns
        ],
        version=r.version,
        created_at=timestamp(r.created_at),
        updated_at=timestamp(r.updated_at),
        reroutes=r.reroutes,
        cancelled=[apb.ShipmentLine(sku=x.sku, quantity=x.quantity) for x in r.cancelled],
    )
    if p.due_at is not None:
        view.payment.due_at.CopyFrom(timestamp(p.due_at))
    for s in r.shipments:
        shipment = view.shipments.add(
            id=s.id,
            node_id=s.node_id,
            lines=[apb.ShipmentLine(sku=x.sku, quantity=x.quantity) for x in s.lines],
            state=SHIPMENT_STATES[s.state],
            carrier=s.carrier,
            tracking_number=s.tracking_number,
            reservation_id=s.reservation_id,
            reason=s.reason,
            ready_on=s.ready_on,
        )
        if s.shipped_at is not None:
            shipment.shipped_at.CopyFrom(timestamp(s.shipped_at))
        if s.delivered_at is not None:
            shipment.delivered_at.CopyFrom(timestamp(s.delivered_at))
    return view


def customer_to_proto(c: Customer) -> opb.Customer:
    return opb.Customer(
        id=c.id,
        email=c.email,
        name=c.name,
        language=c.language,
        customer_type=CUSTOMER_TYPES[c.customer_type],
        created_at=timestamp(c.created_at),
    )


def event_to_proto(event: Event, delivery: str = "") -> opb.TimelineEvent:
    """A timeline entry; an e-mail's rendering context is left out (the template shows it)."""
    data: Mapping[str, Any] = {k: v for k, v in event.data.items() if k != "context"}
    struct = struct_pb2.Struct()
    struct.update(data)
    return opb.TimelineEvent(
        seq=event.seq, type=event.type, at=timestamp(event.at), data=struct, delivery=delivery
    )
