"""The order store port: orders, customers and their event log in one atomic write, and the
outbox that hands those events to the dispatcher.

A store commits an `OrderChange` whole or not at all (compare-and-set on the order's version),
so a state change and the events it caused can never be seen apart. `CommitRefused` and its
subclasses say why nothing was written; the order flow reloads and tries again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from allocation_engine.orders.change import OrderChange
from allocation_engine.orders.machines import OrderState
from allocation_engine.orders.model import Customer, Event, OrderRecord


class CommitRefused(Exception):
    """The store refused a change and wrote nothing."""


class StaleVersion(CommitRefused):
    """Another change to the order was stored first."""


class ExternalIdTaken(CommitRefused):
    """An order with this channel and external id exists already."""

    def __init__(self, order_id: str) -> None:
        self.order_id = order_id
        super().__init__(order_id)


class CustomerExists(CommitRefused):
    """The new customer's id or e-mail was taken meanwhile by another call."""

    def __init__(self, customer_id: str) -> None:
        self.customer_id = customer_id
        super().__init__(customer_id)


class OrderStore(Protocol):
    """Orders, customers and their events. `commit` stores the order, appends its events to
    the order's timeline and to the log the outbox reads, in one atomic step."""

    def new_order_id(self) -> str: ...

    def load(self, order_id: str) -> OrderRecord:
        """The order; NotFound when there is none."""
        ...

    def find_external(self, channel: str, external_id: str) -> str | None: ...

    def customer(self, customer_id: str) -> Customer | None: ...

    def customer_by_email(self, email: str) -> Customer | None: ...

    def put_customer(self, customer: Customer, read_email: str | None) -> None:
        """Creates (`read_email` None) or replaces the customer and its e-mail index in one
        step, as a compare-and-set on what the caller read: StaleVersion when the customer was
        created, or its e-mail changed, meanwhile; CustomerExists(owner) when another customer
        has the e-mail. Nothing is written on either."""
        ...

    def commit(self, change: OrderChange) -> None:
        """Writes the change or raises a CommitRefused subclass and writes nothing."""
        ...

    def timeline(self, order_id: str) -> list[Event]: ...

    def list_orders(
        self, customer_id: str | None, state: OrderState | None, offset: int, limit: int
    ) -> list[OrderRecord]:
        """Newest first."""
        ...


@dataclass(frozen=True)
class Delivery:
    """An event handed to an outbox consumer; `entry_id` acknowledges it."""

    entry_id: str
    event: Event


class Outbox(Protocol):
    """The event log seen by the dispatcher: at-least-once, with receipts for idempotence."""

    def claim(self, consumer: str, count: int, wait_seconds: float) -> Sequence[Delivery]:
        """Events not yet acknowledged: new ones, and ones a crashed consumer left behind."""
        ...

    def ack(self, entry_id: str) -> None: ...

    def delivered(self, key: str) -> bool:
        """Whether a receiver confirmed the delivery `key`."""
        ...

    def mark_delivered(self, key: str) -> None: ...
