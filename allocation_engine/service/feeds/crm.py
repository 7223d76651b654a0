"""The CRM, both ways. In: a CRM creates and updates customer accounts (B2B or B2C, price
terms, delivery preferences) before their first order, and the order flow finds them by id or
e-mail (`Customers`). Out: every order event goes to the CRM through the outbox, with the
account of a customer an order created (`CrmEvents`).

An upsert is idempotent by nature: the customer's id names the account, the same request twice
leaves the same account (the second writes nothing and says so), and `created_at` is kept from
the first. The write is a compare-and-set on the account as read (`OrderStore.put_customer`),
so two CRMs updating one account, or an order creating it at the same moment, never lose the
e-mail index; a lost race is read again and retried.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from allocation_engine.engine.limits import MAX_EMAIL_CHARS, MAX_ID_CHARS, MAX_TEXT_CHARS
from allocation_engine.engine.order import DeliveryMode
from allocation_engine.errors import ConcurrentChange, InvalidInput, NotFound, ProblemCollector
from allocation_engine.orders.events import EventType
from allocation_engine.orders.model import LANGUAGES, Customer, Event
from allocation_engine.ports.clock import Clock
from allocation_engine.ports.crm import CrmSink
from allocation_engine.ports.orders import CustomerExists, OrderStore, StaleVersion
from allocation_engine.service.orders.placing import EMAIL

MAX_PAYMENT_TERMS_DAYS = 365
MAX_BASIS_POINTS = 10_000  # a discount of 100 %
RETRIES = 5


@dataclass(frozen=True)
class Upserted:
    customer: Customer
    created: bool  # the account did not exist before
    changed: bool  # False: the account was already exactly this (a repeated request)


class Customers:
    def __init__(self, store: OrderStore, clock: Clock) -> None:
        self._store, self._clock = store, clock

    def upsert(self, customer: Customer) -> Upserted:
        """Creates or replaces the account `customer.id` (see the module docstring)."""
        customer = dataclasses.replace(customer, email=customer.email.strip().lower())
        _check(customer)
        for _ in range(RETRIES):
            stored = self._store.customer(customer.id)
            wanted = dataclasses.replace(
                customer, created_at=stored.created_at if stored else self._clock.now()
            )
            if wanted == stored:
                return Upserted(wanted, created=False, changed=False)
            try:
                self._store.put_customer(wanted, None if stored is None else stored.email)
            except StaleVersion:
                continue
            except CustomerExists as taken:
                raise InvalidInput.one(
                    "customer.email",
                    customer.email,
                    f"is the e-mail of customer {taken.customer_id}",
                ) from None
            return Upserted(wanted, created=stored is None, changed=True)
        raise ConcurrentChange(customer.id)

    def get(self, customer_id: str = "", email: str = "") -> Customer:
        """The account by id, else by e-mail; NotFound when there is none."""
        if not customer_id and not email:
            raise InvalidInput.one("id", customer_id, "an id or an e-mail is required")
        found = (
            self._store.customer(customer_id)
            if customer_id
            else self._store.customer_by_email(email.strip().lower())
        )
        if found is None:
            raise NotFound("id" if customer_id else "email", customer_id or email)
        return found


def _check(c: Customer) -> None:
    """Every problem of an account at once, named under `customer.`."""
    problems = ProblemCollector()
    if not c.id.strip() or len(c.id) > MAX_ID_CHARS:
        problems.add("customer.id", c.id, f"must be 1..{MAX_ID_CHARS} characters")
    if not c.email or len(c.email) > MAX_EMAIL_CHARS or not EMAIL.match(c.email):
        problems.add("customer.email", c.email, "is not an e-mail address")
    if len(c.name) > MAX_TEXT_CHARS:
        problems.add("customer.name", c.name, f"must be at most {MAX_TEXT_CHARS} characters")
    if c.language not in LANGUAGES:
        problems.add("customer.language", c.language, f"must be one of {list(LANGUAGES)}")
    days, points = c.terms.payment_terms_days, c.terms.discount_basis_points
    if not 0 <= days <= MAX_PAYMENT_TERMS_DAYS:
        problems.add(
            "customer.price_terms.payment_terms_days", days, f"must be 0..{MAX_PAYMENT_TERMS_DAYS}"
        )
    if not 0 <= points <= MAX_BASIS_POINTS:
        problems.add(
            "customer.price_terms.discount_basis_points", points, f"must be 0..{MAX_BASIS_POINTS}"
        )
    store = c.delivery.pickup_store_id
    if c.delivery.mode is DeliveryMode.CLICK_AND_COLLECT and not store:
        problems.add("customer.delivery.pickup_store_id", store, "is required for click & collect")
    if len(store) > MAX_ID_CHARS:
        problems.add("customer.delivery.pickup_store_id", store, f"at most {MAX_ID_CHARS} chars")
    problems.raise_if_any()


def crm_key(event: Event) -> str:
    """The outbox's delivery key of an event's CRM message."""
    return f"crm:{event.order_id}/{event.seq}"


class CrmEvents:
    """What the CRM is told of an order event: the event (an e-mail's rendering context left
    out: the CRM gets the fact, not the mail), and with the `order.placed` that created a
    customer, that customer's account (`customer.created`)."""

    def __init__(self, sink: CrmSink, customers: Callable[[str], Customer | None]) -> None:
        self._sink, self._customers = sink, customers

    def message(self, event: Event) -> dict[str, Any]:
        data = {k: v for k, v in event.data.items() if k != "context"}
        message: dict[str, Any] = {
            "key": crm_key(event),
            "type": str(event.type),
            "order_id": event.order_id,
            "seq": event.seq,
            "at": event.at,
            "data": data,
        }
        if event.type is EventType.ORDER_PLACED and data.get("new_customer"):
            found = self._customers(str(data["customer_id"]))
            if found is not None:
                message["customer_created"] = customer_message(found)
        return message

    def send(self, event: Event) -> None:
        self._sink.send(crm_key(event), self.message(event))


def customer_message(c: Customer) -> dict[str, Any]:
    """An account as the CRM reads it (the fields of customers.proto's CustomerAccount)."""
    return {
        "id": c.id,
        "email": c.email,
        "name": c.name,
        "language": c.language,
        "customer_type": str(c.customer_type),
        "price_terms": {
            "payment_terms_days": c.terms.payment_terms_days,
            "discount_basis_points": c.terms.discount_basis_points,
        },
        "delivery": {
            "mode": None if c.delivery.mode is None else str(c.delivery.mode),
            "pickup_store_id": c.delivery.pickup_store_id,
        },
        "created_at": c.created_at,
    }
