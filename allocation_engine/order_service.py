"""`OrderService` at the gRPC edge, and the order workflow runtime the server starts.

The servicer is thin: it reads the request into a workflow command, calls `OrderFlow`, and
writes the order back; errors become status codes in the server's one mapping (`handled`).

`OrderRuntime.build` wires the workflow to the outside world from an `OrderConfig`: the order
store (memory, or Redis when the server has a Redis URL), the payment providers by kind, the
WMS hand-off, the e-mail notifier, and an outbox dispatcher thread that sends what the event log
asks for. Several server processes on one Redis each run a dispatcher; the consumer group shares
the work among them.
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass
from typing import Any

import grpc

from . import order_proto as op
from .adapters.memory_orders import MemoryOrders
from .adapters.notifier import FolderNotifier, MailRenderer, SmtpNotifier
from .adapters.outbox import Dispatcher, DispatcherThread, delivery_status
from .adapters.payments import CardProvider, InvoiceProvider
from .adapters.payments.fake_provider import FakeCardProvider
from .adapters.redis_orders import RedisOrders
from .adapters.wms import FolderWms, HttpWms
from .adapters.workflow_stock import InventoryStock
from .engine import InvalidInput
from .engine.ports import Clock
from .engine.workflow import (
    CancelOrder,
    Gateways,
    InspectReturn,
    OrderFlow,
    ProviderUnavailable,
    ReceiveReturn,
    RecordDelivery,
    RecordPayment,
    RecordShipment,
    RequestReturn,
    ResumeOrder,
    default_workflows,
    load_workflows,
)
from .engine.workflow.ports import Notifier, OrderStore, Outbox, PaymentProvider, Wms
from .proto.allocation.v1 import orders_pb2 as opb
from .proto.allocation.v1 import orders_pb2_grpc as opb_grpc
from .server import handled
from .service import Services

log = logging.getLogger("allocation_engine.orders")

SERVICE_NAME = opb.DESCRIPTOR.services_by_name["OrderService"].full_name


class NoCardProvider:
    """Stands where no card provider is configured: every card call fails UNAVAILABLE with a
    message saying what to configure, and invoice orders work as ever."""

    def _missing(self, *args: object) -> Any:
        raise ProviderUnavailable("no card provider configured: start serve with --card-url")

    open = capture = refund = cancel = parse_webhook = _missing


class OrderServicer(opb_grpc.OrderServiceServicer):
    def __init__(self, flow: OrderFlow, outbox: Outbox) -> None:
        self._flow = flow
        self._outbox = outbox

    def _view(self, record: Any) -> opb.OrderView:
        return op.order_to_proto(record, self._flow.workflows)

    @handled
    def PlaceOrder(self, request: opb.PlaceOrderRequest, context: grpc.ServicerContext) -> Any:
        placed = self._flow.place(op.place_from_proto(request))
        return opb.PlaceOrderResponse(order=self._view(placed.record), created=placed.created)

    @handled
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
            command = RecordPayment(
                order_id=request.order_id,
                idempotency_key=request.idempotency_key,
                event=op.payment_event_from_proto(request.event),
            )
        else:
            raise InvalidInput.one("source", None, "give an event or a webhook")
        record = self._flow.record_payment(command)
        if record is None:
            return opb.RecordPaymentResponse(ignored=True)
        return opb.RecordPaymentResponse(order=self._view(record))

    @handled
    def CancelOrder(self, request: opb.CancelOrderRequest, context: grpc.ServicerContext) -> Any:
        record = self._flow.cancel(
            CancelOrder(request.order_id, request.idempotency_key, request.reason)
        )
        return opb.CancelOrderResponse(order=self._view(record))

    @handled
    def RecordShipment(
        self, request: opb.RecordShipmentRequest, context: grpc.ServicerContext
    ) -> Any:
        record = self._flow.record_shipment(
            RecordShipment(
                request.order_id,
                request.shipment_id,
                request.carrier,
                request.tracking_number,
                request.idempotency_key,
            )
        )
        return opb.RecordShipmentResponse(order=self._view(record))

    @handled
    def RecordDelivery(
        self, request: opb.RecordDeliveryRequest, context: grpc.ServicerContext
    ) -> Any:
        record = self._flow.record_delivery(
            RecordDelivery(request.order_id, request.shipment_id, request.idempotency_key)
        )
        return opb.RecordDeliveryResponse(order=self._view(record))

    @handled
    def RequestReturn(
        self, request: opb.RequestReturnRequest, context: grpc.ServicerContext
    ) -> Any:
        record, return_id = self._flow.request_return(
            RequestReturn(
                request.order_id,
                op.return_items_from_proto(request.items),
                request.idempotency_key,
                request.reason,
            )
        )
        return opb.RequestReturnResponse(order=self._view(record), return_id=return_id)

    @handled
    def ReceiveReturn(
        self, request: opb.ReceiveReturnRequest, context: grpc.ServicerContext
    ) -> Any:
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

    @handled
    def InspectReturn(
        self, request: opb.InspectReturnRequest, context: grpc.ServicerContext
    ) -> Any:
        record = self._flow.inspect_return(
            InspectReturn(
                request.order_id,
                request.return_id,
                op.inspections_from_proto(request.inspections),
                request.idempotency_key,
            )
        )
        return opb.InspectReturnResponse(order=self._view(record))

    @handled
    def ResumeOrder(self, request: opb.ResumeOrderRequest, context: grpc.ServicerContext) -> Any:
        record = self._flow.resume(ResumeOrder(request.order_id, request.idempotency_key))
        return opb.ResumeOrderResponse(order=self._view(record))

    @handled
    def GetOrder(self, request: opb.GetOrderRequest, context: grpc.ServicerContext) -> Any:
        view = self._flow.get(request.order_id)
        return opb.GetOrderResponse(
            order=self._view(view.record),
            customer=op.customer_to_proto(view.customer),
            timeline=[
                op.event_to_proto(e, delivery_status(self._outbox, e)) for e in view.timeline
            ],
        )

    @handled
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
        return opb.ListOrdersResponse(
            orders=[self._view(r) for r in records],
            next_page_token=str(offset + size) if len(records) == size else "",
        )


@dataclass(frozen=True)
class OrderConfig:
    """Where the workflow reaches the outside world; see `allocation-engine serve --help`."""

    workflows: str | None = None  # a workflow TOML file; None = the shipped defaults
    redis_url: str | None = None  # orders in Redis (else in memory)
    smtp: str | None = None  # host:port of the mail server; None = .eml files in mail_dir
    mail_from: str = "shop@allocation-engine.local"
    mail_dir: str = "var/mail"
    wms_dir: str = "var/wms"
    wms_url: str | None = None  # POST pick lists here instead of writing them to wms_dir
    card_url: str | None = None  # the PaymentIntent-style API; None: the test peer in demo mode
    card_key: str = ""
    webhook_secret: str = ""
    demo: bool = False
    dispatch: bool = True  # run an outbox dispatcher in this process
    lease_seconds: float = 30.0  # unacknowledged outbox entries are handed out again after this


class OrderRuntime:
    """The order workflow of one server process: servicer, flow, outbox dispatcher."""

    def __init__(
        self,
        flow: OrderFlow,
        store: OrderStore,
        outbox: Outbox,
        dispatcher: Dispatcher,
        *,
        dispatch: bool = True,
        card_peer: FakeCardProvider | None = None,
        notes: tuple[str, ...] = (),
    ) -> None:
        self.flow, self.store, self.outbox, self.dispatcher = flow, store, outbox, dispatcher
        self.card_peer = card_peer
        self.notes = notes
        self._thread = DispatcherThread(dispatcher) if dispatch else None

    @classmethod
    def build(cls, services: Services, config: OrderConfig, clock: Clock) -> OrderRuntime:
        renderer = MailRenderer(config.mail_from)
        templates = renderer.templates()
        workflows = (
            load_workflows(config.workflows, templates)
            if config.workflows
            else default_workflows(templates)
        )
        store: MemoryOrders | RedisOrders = (
            RedisOrders.from_url(config.redis_url, config.lease_seconds)
            if config.redis_url
            else MemoryOrders(config.lease_seconds)
        )
        notes: list[str] = []
        peer = None
        card: PaymentProvider
        if config.card_url:
            card = CardProvider(
                config.card_url, config.card_key, config.webhook_secret, clock=clock
            )
        elif config.demo:
            peer = FakeCardProvider().start()
            card = CardProvider(peer.url, peer.api_key, peer.webhook_secret, clock=clock)
            notes.append(f"card payments go to the local test peer at {peer.url} (no money moves)")
        else:
            card = NoCardProvider()
            notes.append("no card provider (--card-url): card orders are refused as UNAVAILABLE")
        notifier: Notifier
        if config.smtp:
            host, _, port = config.smtp.rpartition(":")
            notifier = SmtpNotifier(host or "127.0.0.1", int(port), renderer)
            notes.append(f"e-mails go to SMTP {config.smtp}")
        else:
            notifier = FolderNotifier(config.mail_dir, renderer)
            notes.append(f"e-mails are written to {config.mail_dir}/ as .eml files")
        wms: Wms
        if config.wms_url:
            wms = HttpWms(config.wms_url)
            notes.append(f"pick lists are POSTed to {config.wms_url}")
        else:
            wms = FolderWms(config.wms_dir)
            notes.append(f"pick lists are written to {config.wms_dir}/<node>/")
        payments: dict[str, PaymentProvider] = {"card": card, "invoice": InvoiceProvider()}
        flow = OrderFlow(workflows, store, Gateways(InventoryStock(services), payments), clock)
        consumer = f"{socket.gethostname()}-{os.getpid()}"
        return cls(
            flow,
            store,
            store,
            Dispatcher(store, notifier, wms, consumer),
            dispatch=config.dispatch,
            card_peer=peer,
            notes=tuple(notes),
        )

    def register(self, server: grpc.Server) -> str:
        """Adds OrderService to `server`; returns its name (for health and reflection)."""
        opb_grpc.add_OrderServiceServicer_to_server(OrderServicer(self.flow, self.outbox), server)
        return SERVICE_NAME

    def start(self) -> OrderRuntime:
        """Starts the dispatcher and says where e-mails, pick lists and payments go."""
        if self._thread is not None:
            self._thread.start()
        for note in self.notes:
            print(f"Order workflows: {note}.")
        print("  allocation-engine order place examples/order-b2c.json")
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._thread.stop()
        if self.card_peer is not None:
            self.card_peer.stop()
