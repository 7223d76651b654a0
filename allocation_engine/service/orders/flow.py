"""`OrderFlow`: carries orders through their workflow, one atomic change per command.

Every command loads the order, checks the request, makes the change on a `Draft` (state
machines first, so an illegal transition raises before anything moved), runs the workflow on
until a step waits, and stores order and events in one compare-and-set write. When another
call wrote first, the command runs again on the fresh order; calls to the outside world inside
a command carry idempotency keys derived from the order, so a rerun repeats none of them.

A retry with an idempotency key already seen returns the order as it stands; the same key with
a different request is `KeyReused`.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace

from allocation_engine.engine.order import Order, OrderLine
from allocation_engine.errors import (
    ConcurrentChange,
    InvalidInput,
    KeyReused,
    NotFound,
    ProblemCollector,
)
from allocation_engine.orders.commands import (
    CancelOrder,
    InspectReturn,
    PlaceOrder,
    ReceiveReturn,
    RecordDelivery,
    RecordPayment,
    RecordShipment,
    RequestReturn,
    ResumeOrder,
    ReturnItem,
    fingerprint,
)
from allocation_engine.orders.definition import Workflows
from allocation_engine.orders.draft import SHIPPED, Draft
from allocation_engine.orders.events import EventType
from allocation_engine.orders.machines import (
    RETURN,
    OrderState,
    PaymentState,
    ReturnState,
    ShipmentState,
)
from allocation_engine.orders.model import (
    LANGUAGES,
    Customer,
    Event,
    FlowStatus,
    OrderRecord,
    Payment,
    Return,
    ReturnLine,
    Shipment,
)
from allocation_engine.orders.payments import PaymentEvent, PaymentEventKind
from allocation_engine.ports.clock import Clock
from allocation_engine.ports.orders import CustomerExists, ExternalIdTaken, OrderStore, StaleVersion
from allocation_engine.ports.payments import PaymentOpened, PaymentRequest
from allocation_engine.service.orders.steps import Gateways, advance

GERMAN_SPEAKING = frozenset({"DE", "AT", "CH", "LI"})
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
CURRENCY = re.compile(r"^[A-Z]{3}$")
DELIVERED = frozenset({ShipmentState.DELIVERED})


@dataclass(frozen=True)
class Placed:
    record: OrderRecord
    created: bool  # False when the same order was placed before


@dataclass(frozen=True)
class OrderView:
    """An order as customer service sees it: the record, its customer and its timeline."""

    record: OrderRecord
    customer: Customer
    timeline: tuple[Event, ...]


class OrderFlow:
    def __init__(
        self,
        workflows: Workflows,
        store: OrderStore,
        gateways: Gateways,
        clock: Clock,
        *,
        retries: int = 8,
    ) -> None:
        self.workflows = workflows
        self.store = store
        self.gateways = gateways
        self.clock = clock
        self.retries = retries

    # placing

    def place(self, command: PlaceOrder) -> Placed:
        """Creates the order (or returns the one placed before with the same external id)."""
        _check_place(command)
        fp = fingerprint(command)
        for _ in range(self.retries):
            existing = self.store.find_external(command.channel, command.external_id)
            if existing is not None:
                record = self.store.load(existing)
                if record.fingerprint != fp:
                    raise KeyReused("external_order_id", f"{command.channel}/{command.external_id}")
                return Placed(record, created=False)
            customer, new_customer = self._customer(command)
            try:
                record = self._place(command, fp, customer, new_customer)
            except (ExternalIdTaken, CustomerExists):
                continue  # a concurrent call won; the next round finds its result
            return Placed(record, created=True)
        raise ConcurrentChange(command.external_id)

    def _place(
        self, command: PlaceOrder, fp: str, customer: Customer, new_customer: Customer | None
    ) -> OrderRecord:
        now = self.clock.now()
        total = sum(item.total for item in command.items)
        workflow = self.workflows.select(command.channel, command.customer_type, total)
        order_id = self.store.new_order_id()
        nonce = uuid.uuid4().hex[:12]
        order = _engine_order(command, order_id)
        provider = self.gateways.payments[workflow.payment]
        opened = provider.open(
            PaymentRequest(
                order_id=order_id,
                amount=total,
                currency=command.currency,
                email=customer.email,
                idempotency_key=f"order:{order_id}:{nonce}:open",
                payment_method=command.payment_method,
                description=f"{command.channel} order {command.external_id}",
            )
        )
        record = OrderRecord(
            id=order_id,
            channel=command.channel,
            external_id=command.external_id,
            customer_id=customer.id,
            workflow=workflow.name,
            order=order,
            items=command.items,
            currency=command.currency,
            payment=Payment(
                workflow.payment,
                total,
                reference=opened.reference,
                client_secret=opened.client_secret,
            ),
            address=command.address,
            created_at=now,
            updated_at=now,
            fingerprint=fp,
            nonce=nonce,
        )
        d = Draft(record, customer, workflow, now, new_customer)
        d.emit(
            EventType.ORDER_PLACED,
            channel=command.channel,
            external_id=command.external_id,
            customer_id=customer.id,
            workflow=workflow.name,
            total=total,
            currency=command.currency,
            new_customer=new_customer is not None,
        )
        advance(self.gateways, d)  # up to the first wait: the order is received as such
        if _apply_opening(d, opened):  # then the provider's answer, when it came at once
            advance(self.gateways, d)
        self.store.commit(d.change("", fp))
        return d.record

    def _customer(self, command: PlaceOrder) -> tuple[Customer, Customer | None]:
        """The existing account (by id, then by e-mail), or a new one to create with the order."""
        info = command.customer
        email = info.email.strip().lower()
        found = self.store.customer(info.id) if info.id else None
        if found is None and email:
            found = self.store.customer_by_email(email)
        if found is not None:
            return found, None
        language = info.language or (
            "de" if command.ship_to.country.upper() in GERMAN_SPEAKING else "en"
        )
        new = Customer(
            id=info.id or f"C-{uuid.uuid4().hex[:12]}",
            email=email,
            name=info.name or command.address.name,
            language=language,
            customer_type=command.customer_type,
            created_at=self.clock.now(),
        )
        return new, new

    # payment

    def record_payment(self, command: RecordPayment) -> OrderRecord | None:
        """Applies a payment event; None when a webhook carries an event type we ignore."""
        event, key = command.event, command.idempotency_key
        if command.payload:
            provider = self.gateways.payments.get(command.provider)
            if provider is None:
                raise InvalidInput.one(
                    "webhook.provider", command.provider, f"one of {sorted(self.gateways.payments)}"
                )
            event = provider.parse_webhook(command.payload, command.signature)
            if event is None:
                return None
            key = key or f"webhook:{command.provider}:{event.event_id}"
        if event is None:
            raise InvalidInput.one("event", None, "give a payment event or a webhook")
        order_id = command.order_id or event.order_id
        if event.order_id and command.order_id and event.order_id != command.order_id:
            raise InvalidInput.one(
                "order_id", command.order_id, f"the event is for {event.order_id}"
            )
        if not order_id:
            raise InvalidInput.one("order_id", order_id, "is required")
        paid = event
        return self._change(order_id, key, (command.order_id, paid), lambda d: _pay(d, paid))

    # cancelling

    def cancel(self, command: CancelOrder) -> OrderRecord:
        """Cancels an order whose goods have not gone to the WMS: holds released, money back."""
        return self._change(
            command.order_id, command.idempotency_key, command, lambda d: self._cancel(d, command)
        )

    def _cancel(self, d: Draft, command: CancelOrder) -> None:
        d.order_to("cancel")
        for shipment in d.record.shipments:
            d.shipment_to(shipment, "cancel")
        payment = d.record.payment
        provider = self.gateways.payment(d)
        key = d.record.key("cancel")
        if payment.state in (PaymentState.CAPTURED, PaymentState.PARTIALLY_REFUNDED):
            amount = payment.captured - payment.refunded
            refund_id = provider.refund(payment.reference, amount, key)
            d.payment_to("refund_rest", refunded=payment.captured)
            d.emit(
                EventType.REFUND_ISSUED,
                amount=amount,
                refund_id=refund_id,
                reason="order cancelled",
            )
        elif payment.state is not PaymentState.VOIDED:
            if payment.reference:
                provider.cancel(payment.reference, key)
            d.payment_to("void")
            d.emit(EventType.PAYMENT_VOIDED, reference=payment.reference)
        if d.record.reservation_id:
            self.gateways.stock.release(d.record.reservation_id, key)
        d.update(status=FlowStatus.CANCELLED, blocked_reason="")
        d.emit(EventType.ORDER_CANCELLED, reason=command.reason)

    # fulfilment

    def record_shipment(self, command: RecordShipment) -> OrderRecord:
        problems = ProblemCollector()
        if not command.carrier.strip():
            problems.add("carrier", command.carrier, "must be given")
        if not command.tracking_number.strip():
            problems.add("tracking_number", command.tracking_number, "must be given")
        problems.raise_if_any()

        def ship(d: Draft) -> None:
            shipment = _shipment(d.record, command.shipment_id)
            moved = d.shipment_to(
                shipment,
                "ship",
                carrier=command.carrier,
                tracking_number=command.tracking_number,
                shipped_at=d.now,
            )
            everything = all(s.state in SHIPPED for s in d.record.shipments)
            d.order_to("ship_rest" if everything else "ship_some")
            self.gateways.stock.ship(d.record.reservation_id, moved.node_id, everything)
            d.emit(
                EventType.SHIPMENT_SHIPPED,
                shipment_id=moved.id,
                node_id=moved.node_id,
                carrier=moved.carrier,
                tracking_number=moved.tracking_number,
                lines=[{"sku": x.sku, "quantity": x.quantity} for x in moved.lines],
            )

        return self._change(command.order_id, command.idempotency_key, command, ship)

    def record_delivery(self, command: RecordDelivery) -> OrderRecord:
        def deliver(d: Draft) -> None:
            shipment = _shipment(d.record, command.shipment_id)
            moved = d.shipment_to(shipment, "deliver", delivered_at=d.now)
            everything = all(s.state in DELIVERED for s in d.record.shipments)
            d.order_to("deliver_rest" if everything else "deliver_some")
            d.emit(EventType.SHIPMENT_DELIVERED, shipment_id=moved.id, carrier=moved.carrier)

        return self._change(command.order_id, command.idempotency_key, command, deliver)

    # returns

    def request_return(self, command: RequestReturn) -> tuple[OrderRecord, str]:
        """Opens a return for delivered units; answers with the order and the return's id
        (R<n> within the order), the same id again when the request is retried."""

        def request(d: Draft) -> None:
            record = d.record
            _check_items(command.items, lambda sku: _returnable(record, sku), "delivered")
            ret = Return(
                id=f"R{len(record.returns) + 1}",
                lines=tuple(ReturnLine(i.sku, i.quantity) for i in command.items),
                reason=command.reason,
                requested_at=d.now,
                key=command.idempotency_key,
            )
            d.update(returns=(*record.returns, ret))
            d.emit(
                EventType.RETURN_REQUESTED,
                return_id=ret.id,
                reason=ret.reason,
                lines=[{"sku": i.sku, "quantity": i.quantity} for i in command.items],
            )

        record = self._change(command.order_id, command.idempotency_key, command, request)
        return record, next(r.id for r in record.returns if r.key == command.idempotency_key)

    def receive_return(self, command: ReceiveReturn) -> OrderRecord:
        """Returned goods arrived at a node (every unit goes there for inspection)."""
        if not self.gateways.stock.has_node(command.node_id):
            raise InvalidInput.one("node_id", command.node_id, "unknown node")

        def receive(d: Draft) -> None:
            ret = _return(d.record, command.return_id)
            if ret.node_id and ret.node_id != command.node_id:
                raise InvalidInput.one(
                    "node_id", command.node_id, f"return {ret.id} is received at {ret.node_id}"
                )

            def open_units(sku: str) -> int:
                line = ret.line(sku)
                return line.requested - line.received if line else 0

            _check_items(command.items, open_units, f"expected in return {ret.id}")
            got = {i.sku: i.quantity for i in command.items}
            lines = tuple(
                replace(line, received=line.received + got.get(line.sku, 0)) for line in ret.lines
            )
            complete = all(line.received == line.requested for line in lines)
            d.return_to(
                ret,
                "receive_rest" if complete else "receive_some",
                lines=lines,
                node_id=command.node_id,
            )
            back = sum(line.received for r in d.record.returns for line in r.lines)
            d.order_to("return_rest" if back == d.record.units else "return_some")
            d.emit(
                EventType.RETURN_RECEIVED,
                return_id=ret.id,
                node_id=command.node_id,
                lines=[{"sku": i.sku, "quantity": i.quantity} for i in command.items],
            )

        return self._change(command.order_id, command.idempotency_key, command, receive)

    def inspect_return(self, command: InspectReturn) -> OrderRecord:
        """Each received unit is restocked (accepted, refunded) or written off (not refunded)."""
        return self._change(
            command.order_id,
            command.idempotency_key,
            command,
            lambda d: self._inspect(d, command),
        )

    def _inspect(self, d: Draft, command: InspectReturn) -> None:
        ret = _return(d.record, command.return_id)
        RETURN.next(ret.state, "inspect", ret.id)  # legal at all? (before any money moves)
        _check_inspections(ret, command)
        verdict = {i.sku: i for i in command.inspections}
        lines = tuple(
            replace(
                line,
                restocked=verdict[line.sku].restock if line.received else 0,
                written_off=verdict[line.sku].write_off if line.received else 0,
            )
            for line in ret.lines
        )
        refund = sum(
            line.restocked * item.unit_price
            for line in lines
            if (item := d.record.item(line.sku)) is not None
        )
        d.return_to(ret, "inspect", lines=lines, refund=refund)
        d.emit(
            EventType.RETURN_INSPECTED,
            return_id=ret.id,
            node_id=ret.node_id,
            refund=refund,
            lines=[
                {"sku": x.sku, "restocked": x.restocked, "written_off": x.written_off}
                for x in lines
                if x.received
            ],
        )
        key = d.record.key(ret.id)
        self._refund(d, ret.id, refund, key)  # money before stock: if it fails, nothing moved
        for line in lines:
            if line.restocked:
                self.gateways.stock.restock(
                    ret.node_id, line.sku, line.restocked, f"{key}:restock:{line.sku}"
                )

    def _refund(self, d: Draft, return_id: str, amount: int, key: str) -> None:
        """Pays back what was collected; what was not collected yet is credited instead."""
        payment = d.record.payment
        cash = min(amount, payment.captured - payment.refunded)
        credit = amount - cash
        if cash > 0:
            refund_id = self.gateways.payment(d).refund(payment.reference, cash, f"{key}:refund")
            refunded = payment.refunded + cash
            d.payment_to(
                "refund_rest" if refunded == payment.captured else "refund_some", refunded=refunded
            )
            d.emit(EventType.REFUND_ISSUED, return_id=return_id, amount=cash, refund_id=refund_id)
        if credit > 0:
            payment = d.record.payment
            d.payment_to(
                "credit", amount=payment.amount - credit, credited=payment.credited + credit
            )
            d.emit(EventType.CREDIT_ISSUED, return_id=return_id, amount=credit)

    def resume(self, command: ResumeOrder) -> OrderRecord:
        """Runs a blocked (or waiting) workflow again from its current step."""
        return self._change(command.order_id, command.idempotency_key, command, lambda d: None)

    # reading

    def get(self, order_id: str) -> OrderView:
        record = self.store.load(order_id)
        return OrderView(record, self._customer_of(record), tuple(self.store.timeline(order_id)))

    def list_orders(
        self,
        customer_id: str | None = None,
        email: str | None = None,
        state: OrderState | None = None,
        offset: int = 0,
        limit: int = 50,
    ) -> list[OrderRecord]:
        if email:
            customer = self.store.customer_by_email(email.strip().lower())
            if customer is None:
                return []
            customer_id = customer.id
        if not 1 <= limit <= 500:
            raise InvalidInput.one("page_size", limit, "must be between 1 and 500")
        return self.store.list_orders(customer_id, state, offset, limit)

    # the change loop

    def _change(
        self, order_id: str, key: str, command: object, apply: Callable[[Draft], None]
    ) -> OrderRecord:
        if not key:
            raise InvalidInput.one("idempotency_key", key, "is required")
        fp = fingerprint(command)
        for _ in range(self.retries):
            record = self.store.load(order_id)
            seen = record.keys.get(key)
            if seen is not None:
                if seen != fp:
                    raise KeyReused("idempotency_key", key)
                return record
            d = Draft(
                record,
                self._customer_of(record),
                self.workflows.get(record.workflow),
                self.clock.now(),
            )
            apply(d)
            advance(self.gateways, d)
            try:
                self.store.commit(d.change(key, fp))
            except StaleVersion:
                continue
            return d.record
        raise ConcurrentChange(order_id)

    def _customer_of(self, record: OrderRecord) -> Customer:
        customer = self.store.customer(record.customer_id)
        if customer is None:
            raise NotFound("customer_id", record.customer_id)
        return customer


# the pieces of the commands


def _apply_opening(d: Draft, opened: PaymentOpened) -> bool:
    """Records an authorization or failure that came with the opening; False if neither."""
    if opened.authorized:
        _pay(d, PaymentEvent(PaymentEventKind.AUTHORIZED, opened.authorized, opened.reference))
    elif opened.failure:
        _pay(d, PaymentEvent(PaymentEventKind.FAILED, 0, opened.reference, reason=opened.failure))
    else:
        return False
    return True


def _pay(d: Draft, event: PaymentEvent) -> None:
    """Moves the payment by a provider event. A report of the state the payment is already in
    (a webhook echoing our own capture, say) changes nothing."""
    payment = d.record.payment
    if event.reference and payment.reference and event.reference != payment.reference:
        raise InvalidInput.one(
            "event.reference", event.reference, f"the order's payment is {payment.reference}"
        )
    if event.amount < 0:
        raise InvalidInput.one("event.amount", event.amount, "must be >= 0")
    match event.kind:
        case PaymentEventKind.AUTHORIZED:
            if payment.state is PaymentState.AUTHORIZED and payment.authorized == event.amount:
                return
            if event.amount < payment.amount:
                raise InvalidInput.one(
                    "event.amount", event.amount, f"authorizes less than the {payment.amount} due"
                )
            d.payment_to("authorize", authorized=event.amount, failure="")
            d.emit(EventType.PAYMENT_AUTHORIZED, amount=event.amount, reference=payment.reference)
        case PaymentEventKind.CAPTURED:
            if payment.state is not PaymentState.PENDING and payment.captured == event.amount:
                return
            if event.amount != payment.amount:
                raise InvalidInput.one(
                    "event.amount", event.amount, f"must be the {payment.amount} due"
                )
            d.payment_to("capture", captured=event.amount, failure="")
            d.emit(EventType.PAYMENT_CAPTURED, amount=event.amount, reference=payment.reference)
        case PaymentEventKind.FAILED:
            d.payment_to("fail", failure=event.reason)
            d.emit(EventType.PAYMENT_FAILED, reason=event.reason, reference=payment.reference)


def _shipment(record: OrderRecord, shipment_id: str) -> Shipment:
    shipment = record.shipment(shipment_id)
    if shipment is None:
        raise NotFound("shipment_id", shipment_id)
    return shipment


def _return(record: OrderRecord, return_id: str) -> Return:
    ret = record.return_(return_id)
    if ret is None:
        raise NotFound("return_id", return_id)
    return ret


def _returnable(record: OrderRecord, sku: str) -> int:
    """Delivered units of `sku` not yet claimed by a return (inspected returns claim only what
    arrived; the rest may be asked for again)."""
    claimed = 0
    for ret in record.returns:
        line = ret.line(sku)
        if line is not None:
            claimed += line.received if ret.state is ReturnState.INSPECTED else line.requested
    return record.units_in(sku, DELIVERED) - claimed


def _check_items(items: tuple[ReturnItem, ...], limit: Callable[[str], int], what: str) -> None:
    problems = ProblemCollector()
    if not items:
        problems.add("items", [], "needs at least one item")
    seen: set[str] = set()
    for i, item in enumerate(items):
        if item.sku in seen:
            problems.add(f"items[{i}].sku", item.sku, "repeats an earlier item; merge them")
            continue
        seen.add(item.sku)
        most = limit(item.sku)
        if not isinstance(item.quantity, int) or item.quantity <= 0:
            problems.add(f"items[{i}].quantity", item.quantity, "must be an integer > 0")
        elif item.quantity > most:
            problems.add(
                f"items[{i}].quantity", item.quantity, f"only {max(most, 0)} of {item.sku} {what}"
            )
    problems.raise_if_any()


def _check_inspections(ret: Return, command: InspectReturn) -> None:
    """Every received unit gets exactly one verdict."""
    problems = ProblemCollector()
    given = {}
    for i, inspection in enumerate(command.inspections):
        where = f"inspections[{i}]"
        line = ret.line(inspection.sku)
        if line is None or line.received == 0:
            problems.add(f"{where}.sku", inspection.sku, f"nothing of it arrived in {ret.id}")
        elif inspection.sku in given:
            problems.add(f"{where}.sku", inspection.sku, "repeats an earlier inspection")
        elif min(inspection.restock, inspection.write_off) < 0:
            problems.add(where, inspection, "restock and write_off must be >= 0")
        elif inspection.restock + inspection.write_off != line.received:
            problems.add(
                where,
                inspection,
                f"restock + write_off must be the {line.received} units received",
            )
        given[inspection.sku] = inspection
    for line in ret.lines:
        if line.received and line.sku not in given:
            problems.add("inspections", line.sku, f"{line.received} received units not inspected")
    problems.raise_if_any()


def _check_place(command: PlaceOrder) -> None:
    problems = ProblemCollector()
    if not command.channel.strip():
        problems.add("channel", command.channel, "must be given")
    if not command.external_id.strip():
        problems.add("external_order_id", command.external_id, "must be given")
    email = command.customer.email.strip()
    if not command.customer.id and not email:
        problems.add("customer", command.customer, "needs an id or an e-mail")
    if email and not EMAIL.match(email):
        problems.add("customer.email", command.customer.email, "is not an e-mail address")
    if command.customer.language and command.customer.language not in LANGUAGES:
        problems.add("customer.language", command.customer.language, f"one of {list(LANGUAGES)}")
    if not CURRENCY.match(command.currency):
        problems.add("currency", command.currency, "must be an ISO 4217 code such as EUR")
    for i, item in enumerate(command.items):
        if not isinstance(item.unit_price, int) or item.unit_price < 0:
            problems.add(f"lines[{i}].unit_price", item.unit_price, "must be an integer >= 0")
    try:
        _engine_order(command, "check")
    except InvalidInput as bad:
        problems.extend(bad.problems)
    problems.raise_if_any()


def _engine_order(command: PlaceOrder, order_id: str) -> Order:
    return Order(
        id=order_id,
        lines=tuple(OrderLine(i.sku, i.quantity) for i in command.items),
        ship_to=command.ship_to,
        channel=command.channel,
        customer_type=command.customer_type,
        delivery_mode=command.delivery_mode,
        pickup_store_id=command.pickup_store_id,
    )
