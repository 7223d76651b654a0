"""`OrderService` over gRPC: place an order and drive it through payment, shipment, delivery
and returns, and read orders with their timeline.

Thin by design: each method decodes the request into a workflow command (`convert.orders`),
calls one `OrderFlow` use case and encodes the order view back. Validation lives in the flow,
which names the request's own fields; errors are raised typed and mapped to statuses by
`api.errors.ErrorInterceptor`.

The resource checks of access control happen here, on the caller the access interceptor set
(`service.access.current_caller`; None without one, which checks nothing): a caller bound to
channels places orders only for them and finds no other channel's order (NOT_FOUND, so it does
not learn the id exists; lists leave those out, so a page may hold fewer than page_size); a
caller bound to nodes records shipments, deliveries and received returns only for its nodes
(PERMISSION_DENIED).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import grpc

from allocation_engine.api.convert import orders as op
from allocation_engine.api.request import fields_under
from allocation_engine.engine import InvalidInput
from allocation_engine.orders.commands import (
    AcceptShipment,
    CancelOrder,
    InspectReturn,
    ReceiveReturn,
    RecordDelivery,
    RecordPayment,
    RecordShipment,
    RejectShipment,
    RequestReturn,
    ResumeOrder,
)
from allocation_engine.orders.model import OrderRecord
from allocation_engine.ports.orders import Outbox
from allocation_engine.proto.allocation.v1 import orders_pb2 as opb
from allocation_engine.proto.allocation.v1 import orders_pb2_grpc as opb_grpc
from allocation_engine.service import access
from allocation_engine.service.orders.flow import OrderFlow
from allocation_engine.service.outbox import delivery_status

SERVICE_NAME = opb.DESCRIPTOR.services_by_name["OrderService"].full_name


class OrderServicer(opb_grpc.OrderServiceServicer):
    def __init__(
        self,
        flow: OrderFlow,
        outbox: Outbox,
        confirmed: Collection[str] = (),
        platform_channels: Collection[str] = (),
    ) -> None:
        """`confirmed`: the sales channels whose platforms are told of shipments (the timeline
        shows whether each confirmation was sent). `platform_channels`: channels whose orders
        come from their platform (webhook or poll) and never through PlaceOrder, so no caller
        can place an order there that the platform never took (or was never paid)."""
        self._flow = flow
        self._outbox = outbox
        self._confirmed = frozenset(confirmed)
        self._platform_channels = frozenset(platform_channels)

    def _view(self, record: Any) -> opb.OrderView:
        return op.order_view_to_proto(record, self._flow.workflows)

    def _guard(self, order_id: str, shipment_id: str | None = None) -> None:
        """The caller's resource checks on an order it addresses (nothing for an unbound caller
        or an id the flow will answer NOT_FOUND itself)."""
        caller = access.current_caller()
        if caller is None or not (caller.channels or caller.nodes) or not order_id:
            return
        record: OrderRecord = self._flow.store.load(order_id)
        access.check_visible(caller, record)
        if shipment_id is not None:
            access.check_shipment(caller, record, shipment_id)

    def PlaceOrder(self, request: opb.PlaceOrderRequest, context: grpc.ServicerContext) -> Any:
        access.check_channel(access.current_caller(), request.channel)
        if request.channel in self._platform_channels:
            raise InvalidInput.one(
                "channel", request.channel, "takes its orders from its platform, not PlaceOrder"
            )
        placed = self._flow.place(op.place_from_proto(request))
        return opb.PlaceOrderResponse(order=self._view(placed.record), created=placed.created)

    def RecordPayment(
        self, request: opb.RecordPaymentRequest, context: grpc.ServicerContext
    ) -> Any:
        source = request.WhichOneof("source")
        if source == "webhook":
            command = RecordPayment(
                order_id=request.order_id,
                idempotency_key=request.idempotency_key,
                provider=request.webhook.provider,
                payload=request.webhook.payload,
                signature=request.webhook.signature,
            )
        elif source == "event":
            with fields_under("event."):
                event = op.payment_event_from_proto(request.event)
            command = RecordPayment(
                order_id=request.order_id,
                idempotency_key=request.idempotency_key,
                event=event,
            )
        else:
            raise InvalidInput.one("source", None, "give an event or a webhook")
        self._guard(request.order_id)
        record = self._flow.record_payment(command)
        if record is None:
            return opb.RecordPaymentResponse(ignored=True)
        return opb.RecordPaymentResponse(order=self._view(record))

    def CancelOrder(self, request: opb.CancelOrderRequest, context: grpc.ServicerContext) -> Any:
        self._guard(request.order_id)
        record = self._flow.cancel(
            CancelOrder(request.order_id, request.idempotency_key, request.reason)
        )
        return opb.CancelOrderResponse(order=self._view(record))

    def RecordShipment(
        self, request: opb.RecordShipmentRequest, context: grpc.ServicerContext
    ) -> Any:
        self._guard(request.order_id, request.shipment_id)
        record = self._flow.record_shipment(
            RecordShipment(
                request.order_id,
                request.shipment_id,
                request.carrier,
                request.tracking_number,
                request.idempotency_key,
                op.shipment_items_from_proto(request.lines),
            )
        )
        return opb.RecordShipmentResponse(order=self._view(record))

    def RejectShipment(
        self, request: opb.RejectShipmentRequest, context: grpc.ServicerContext
    ) -> Any:
        self._guard(request.order_id, request.shipment_id)
        record = self._flow.reject_shipment(
            RejectShipment(
                request.order_id,
                request.shipment_id,
                op.reject_reason_from_proto(request.reason),
                request.idempotency_key,
                request.note,
            )
        )
        return opb.RejectShipmentResponse(order=self._view(record))

    def AcceptShipment(
        self, request: opb.AcceptShipmentRequest, context: grpc.ServicerContext
    ) -> Any:
        self._guard(request.order_id, request.shipment_id)
        record = self._flow.accept_shipment(
            AcceptShipment(request.order_id, request.shipment_id, request.idempotency_key)
        )
        return opb.AcceptShipmentResponse(order=self._view(record))

    def RecordDelivery(
        self, request: opb.RecordDeliveryRequest, context: grpc.ServicerContext
    ) -> Any:
        self._guard(request.order_id, request.shipment_id)
        record = self._flow.record_delivery(
            RecordDelivery(request.order_id, request.shipment_id, request.idempotency_key)
        )
        return opb.RecordDeliveryResponse(order=self._view(record))

    def RequestReturn(
        self, request: opb.RequestReturnRequest, context: grpc.ServicerContext
    ) -> Any:
        self._guard(request.order_id)
        record, return_id = self._flow.request_return(
            RequestReturn(
                request.order_id,
                op.return_items_from_proto(request.items),
                request.idempotency_key,
                request.reason,
            )
        )
        return opb.RequestReturnResponse(order=self._view(record), return_id=return_id)

    def ReceiveReturn(
        self, request: opb.ReceiveReturnRequest, context: grpc.ServicerContext
    ) -> Any:
        access.check_node(access.current_caller(), request.node_id)
        self._guard(request.order_id)
        record = self._flow.receive_return(
            ReceiveReturn(
                request.order_id,
                request.return_id,
                request.node_id,
                op.return_items_from_proto(request.items),
                request.idempotency_key,
            )
        )
        return opb.ReceiveReturnResponse(order=self._view(record))

    def InspectReturn(
        self, request: opb.InspectReturnRequest, context: grpc.ServicerContext
    ) -> Any:
        self._guard(request.order_id)
        record = self._flow.inspect_return(
            InspectReturn(
                request.order_id,
                request.return_id,
                op.inspections_from_proto(request.inspections),
                request.idempotency_key,
            )
        )
        return opb.InspectReturnResponse(order=self._view(record))

    def ResumeOrder(self, request: opb.ResumeOrderRequest, context: grpc.ServicerContext) -> Any:
        self._guard(request.order_id)
        record = self._flow.resume(ResumeOrder(request.order_id, request.idempotency_key))
        return opb.ResumeOrderResponse(order=self._view(record))

    def GetOrder(self, request: opb.GetOrderRequest, context: grpc.ServicerContext) -> Any:
        view = self._flow.get(request.order_id)
        access.check_visible(access.current_caller(), view.record)
        return opb.GetOrderResponse(
            order=self._view(view.record),
            customer=op.customer_to_proto(view.customer),
            timeline=[
                op.event_to_proto(e, delivery_status(self._outbox, e, self._confirmed))
                for e in view.timeline
            ],
        )

    def ListOrders(self, request: opb.ListOrdersRequest, context: grpc.ServicerContext) -> Any:
        offset = op.page_from_token(request.page_token)
        size = request.page_size or 50
        records = self._flow.list_orders(
            customer_id=request.customer_id or None,
            email=request.email or None,
            state=op.order_state_from_proto(request.state),
            offset=offset,
            limit=size,
        )
        caller = access.current_caller()
        shown = [r for r in records if access.sees(caller, r)]
        return opb.ListOrdersResponse(
            orders=[self._view(r) for r in shown],
            next_page_token=str(offset + size) if len(records) == size else "",
        )
