"""Placing an order: checking the request, finding or creating the customer, storing the
order, and only then opening the payment and running the workflow up to its first wait.

Placing is idempotent on (channel, external id) rather than on an idempotency key: a shop that
sends the same order again gets the first one back, and the same external id with a different
order is `KeyReused`. The order and a new customer are created in one write, so two concurrent
placements of one order (or of two orders by one new customer) cannot both win.

Nothing outside is called before that write. The write that creates the order fixes its id
(the store refuses a second order for the same channel and external id, so every racer ends up
with the winner's id) and its nonce, and every outside call after it (opening the payment, the
stock hold, the capture) is keyed by that stored record and the step (`OrderRecord.key`). So
the racer that lost the write, a retry, or a process restarted after SIGKILL repeats nothing:
one PaymentIntent opened and captured per order, one stock reservation held.

The order is stored with its payment not opened yet (`Payment.opened` False) and its workflow
at step 0. A call that dies (or whose provider cannot be reached) between that write and the
next leaves the order in exactly that state, and it is finished by a retry of PlaceOrder with
the same request (which answers created=False with the finished order) or by ResumeOrder:
both open the payment under the same key and run the workflow on (`FlowCore.finish_placing`,
`steps.advance`).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

from allocation_engine.engine.limits import MAX_EMAIL_CHARS, MAX_ID_CHARS, MAX_MONEY, MAX_TEXT_CHARS
from allocation_engine.engine.order import Order, OrderLine
from allocation_engine.errors import ConcurrentChange, InvalidInput, KeyReused, ProblemCollector
from allocation_engine.orders.commands import PlaceOrder
from allocation_engine.orders.definition import Workflow
from allocation_engine.orders.draft import Draft
from allocation_engine.orders.events import EventType
from allocation_engine.orders.fingerprint import fingerprint, same_request
from allocation_engine.orders.model import LANGUAGES, Customer, OrderRecord, Payment
from allocation_engine.ports.orders import CustomerExists, ExternalIdTaken
from allocation_engine.service.orders.core import FlowCore

GERMAN_SPEAKING = frozenset({"DE", "AT", "CH", "LI"})
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
CURRENCY = re.compile(r"^[A-Z]{3}$")


@dataclass(frozen=True)
class Placed:
    """The placed order, and whether this call created it."""

    record: OrderRecord
    created: bool  # False when the same order was placed before


def place(core: FlowCore, command: PlaceOrder) -> Placed:
    """Creates the order (or returns the one placed before with the same external id), then
    opens its payment and runs its workflow to the first wait; see the module docstring for
    what a crash in between leaves and what finishes it."""
    _check(core, command)
    fp = fingerprint(command)
    for _ in range(core.retries):
        existing = core.store.find_external(command.channel, command.external_id)
        if existing is not None:
            record = core.store.load(existing)
            if not same_request(record.fingerprint, command):
                raise KeyReused("external_order_id", f"{command.channel}/{command.external_id}")
            return Placed(core.finish_placing(record.id), created=False)
        customer, new_customer = _customer(core, command)
        try:
            record = _create(core, command, fp, customer, new_customer)
        except (ExternalIdTaken, CustomerExists):
            continue  # a concurrent call won; the next round finds its order and finishes it
        return Placed(core.finish_placing(record.id), created=True)
    raise ConcurrentChange(command.external_id)


def _create(
    core: FlowCore,
    command: PlaceOrder,
    fp: str,
    customer: Customer,
    new_customer: Customer | None,
) -> OrderRecord:
    """Stores the new order (and a new customer) in one write, calling nobody: its payment
    is still to be opened and its workflow still to run (`finish_placing` does both)."""
    now = core.clock.now()
    total = sum(item.total for item in command.items)
    workflow = _workflow(core, command, total)
    order_id = core.store.new_order_id()
    record = OrderRecord(
        id=order_id,
        channel=command.channel,
        external_id=command.external_id,
        customer_id=customer.id,
        workflow=workflow.name,
        order=_engine_order(command, order_id),
        items=command.items,
        currency=command.currency,
        payment=Payment(workflow.payment, total, opened=False, method=command.payment_method),
        address=command.address,
        created_at=now,
        updated_at=now,
        fingerprint=fp,
        nonce=uuid.uuid4().hex[:12],  # random, but only the stored winner's is ever used
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
    core.store.commit(d.change("", fp))
    return d.record


def _customer(core: FlowCore, command: PlaceOrder) -> tuple[Customer, Customer | None]:
    """The existing account (by id, then by e-mail), or a new one to create with the order;
    a new account speaks German when the parcel goes to a German-speaking country."""
    info = command.customer
    email = info.email.strip().lower()
    found = core.store.customer(info.id) if info.id else None
    if found is None and email:
        found = core.store.customer_by_email(email)
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
        created_at=core.clock.now(),
    )
    return new, new


def _check(core: FlowCore, command: PlaceOrder) -> None:
    """Every problem with the request at once, before anything is stored or opened; and a
    payment the workflow's provider can never open (a card token on an invoice, no card
    provider configured) is refused here too, so a refused request stores no order."""
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
        if not isinstance(item.unit_price, int) or not 0 <= item.unit_price <= MAX_MONEY:
            problems.add(
                f"lines[{i}].unit_price", item.unit_price, f"must be an integer in [0, {MAX_MONEY}]"
            )
    _check_texts(command, problems)
    if not problems.problems and sum(item.total for item in command.items) > MAX_MONEY:
        problems.add("lines", len(command.items), f"the order total exceeds {MAX_MONEY}")
    try:
        _engine_order(command, "check")  # the engine's own checks of lines and ship-to
    except InvalidInput as bad:
        problems.extend(bad.problems)
    problems.raise_if_any()
    total = sum(item.total for item in command.items)
    workflow = _workflow(core, command, total)
    core.gateways.payments[workflow.payment].check(command.payment_method)


def _check_texts(command: PlaceOrder, problems: ProblemCollector) -> None:
    """Every text of the request within the contract's length and valid Unicode (no lone
    surrogates, which a JSON edge can carry and no store can write). The gRPC edge checks the
    lengths already (`api.bounds`); orders from a sales channel's payload come only through
    here."""
    c, a = command.customer, command.address
    texts: list[tuple[str, str, int]] = [
        ("channel", command.channel, MAX_ID_CHARS),
        ("external_order_id", command.external_id, MAX_ID_CHARS),
        ("currency", command.currency, MAX_ID_CHARS),
        ("pickup_store_id", command.pickup_store_id or "", MAX_ID_CHARS),
        ("payment_method", command.payment_method, MAX_ID_CHARS),
        ("customer.id", c.id, MAX_ID_CHARS),
        ("customer.email", c.email, MAX_EMAIL_CHARS),
        ("customer.name", c.name, MAX_TEXT_CHARS),
        ("customer.language", c.language, MAX_ID_CHARS),
        ("address.name", a.name, MAX_TEXT_CHARS),
        ("address.street", a.street, MAX_TEXT_CHARS),
        ("address.postal_code", a.postal_code, MAX_ID_CHARS),
        ("address.city", a.city, MAX_TEXT_CHARS),
        ("address.country", a.country, MAX_ID_CHARS),
    ]
    for i, item in enumerate(command.items):
        texts += [(f"lines[{i}].sku", item.sku, MAX_ID_CHARS)]
        texts += [(f"lines[{i}].name", item.name, MAX_TEXT_CHARS)]
    for field, text, longest in texts:
        if len(text) > longest:
            problems.add(field, text, f"has {len(text)} characters; at most {longest}")
        elif not text.isascii():
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:
                problems.add(field, text, "is not valid Unicode text (a lone surrogate)")


def _workflow(core: FlowCore, command: PlaceOrder, total: int) -> Workflow:
    """The workflow the order's sales channel names in channels.toml, else the file's choice."""
    named = core.channel_workflows.get(command.channel)
    if named:
        return core.workflows.get(named)
    return core.workflows.select(command.channel, command.customer_type, total)


def _engine_order(command: PlaceOrder, order_id: str) -> Order:
    """The order as the allocation engine sees it: what to source, and where to."""
    return Order(
        id=order_id,
        lines=tuple(OrderLine(i.sku, i.quantity) for i in command.items),
        ship_to=command.ship_to,
        channel=command.channel,
        customer_type=command.customer_type,
        delivery_mode=command.delivery_mode,
        pickup_store_id=command.pickup_store_id,
    )
