"""What the order workflow needs from the outside world, as `typing.Protocol`s.

Adapters implement them: payment providers (card, invoice), the WMS hand-off, the e-mail
notifier, the stock keeper over the inventory store, and the order store with its event log
and outbox (in memory and in Redis). The clock is the engine's `Clock`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from ..order import Order
from ..ports import Clock
from .machines import OrderState
from .model import Address, Customer, Event, OrderRecord, ShipmentItem

__all__ = [
    "Clock",
    "CommitRefused",
    "CustomerExists",
    "Delivery",
    "ExternalIdTaken",
    "Notification",
    "Notifier",
    "OrderChange",
    "OrderStore",
    "Outbox",
    "PaymentEvent",
    "PaymentEventKind",
    "PaymentOpened",
    "PaymentProvider",
    "PaymentRequest",
    "PickLine",
    "PickList",
    "StaleVersion",
    "Stock",
    "StockHold",
    "Undeliverable",
    "Wms",
]


# payments


@dataclass(frozen=True)
class PaymentRequest:
    """Opens the payment of one order. `payment_method` (a card token) authorizes at once."""

    order_id: str
    amount: int
    currency: str
    email: str
    idempotency_key: str
    payment_method: str = ""
    description: str = ""


@dataclass(frozen=True)
class PaymentOpened:
    """The provider's answer: its reference, and an authorization or a failure when a payment
    method came with the request. `client_secret` lets the shop's front end finish payment."""

    reference: str
    client_secret: str = ""
    authorized: int = 0
    failure: str = ""


class PaymentEventKind(StrEnum):
    AUTHORIZED = "authorized"
    CAPTURED = "captured"
    FAILED = "failed"


@dataclass(frozen=True)
class PaymentEvent:
    """A provider's report about a payment (from a verified webhook or a trusted system)."""

    kind: PaymentEventKind
    amount: int
    reference: str = ""
    order_id: str = ""
    event_id: str = ""
    reason: str = ""


class PaymentProvider(Protocol):
    """A payment provider. Every call that moves money takes an idempotency key, so a retry
    after a timeout never charges or refunds twice. Declines raise `PaymentRefused`; a provider
    that cannot be reached raises `ProviderUnavailable`."""

    def open(self, request: PaymentRequest) -> PaymentOpened: ...

    def capture(self, reference: str, amount: int, idempotency_key: str) -> None: ...

    def refund(self, reference: str, amount: int, idempotency_key: str) -> str:
        """Returns the provider's refund (or credit note) id."""
        ...

    def cancel(self, reference: str, idempotency_key: str) -> None:
        """Voids an authorization or an unpaid invoice."""
        ...

    def parse_webhook(self, payload: bytes, signature: str) -> PaymentEvent | None:
        """Verifies the signature (InvalidInput when it fails) and reads the event; None for
        event types the workflow does not act on."""
        ...


# stock


@dataclass(frozen=True)
class StockHold:
    """Stock held for a whole order until it ships: one parcel per node."""

    reservation_id: str
    shipments: tuple[tuple[str, tuple[ShipmentItem, ...]], ...]


class Stock(Protocol):
    """The inventory as the workflow uses it; every call is idempotent on its key."""

    def reserve(self, order: Order, idempotency_key: str) -> StockHold:
        """Allocates and holds the order's stock with no expiry; InsufficientStock when short."""
        ...

    def release(self, reservation_id: str, idempotency_key: str) -> None: ...

    def ship(self, reservation_id: str, node_id: str, last: bool) -> None:
        """The parcel from `node_id` left: its held units leave on_hand and reserved. `last`
        says every parcel of the reservation has now left."""
        ...

    def restock(self, node_id: str, sku: str, quantity: int, idempotency_key: str) -> None:
        """Returned units go back on the shelf at `node_id`."""
        ...

    def has_node(self, node_id: str) -> bool: ...


# warehouse hand-off


@dataclass(frozen=True)
class PickLine:
    sku: str
    quantity: int
    name: str = ""


@dataclass(frozen=True)
class PickList:
    """What one node picks and packs for one parcel."""

    shipment_id: str
    order_id: str
    external_order_id: str
    node_id: str
    lines: tuple[PickLine, ...]
    ship_to: Address
    delivery_mode: str
    created_at: float


class Wms(Protocol):
    def release(self, pick_list: PickList) -> None:
        """Hands the pick list to the node's WMS; sending one twice leaves one pick list."""
        ...


# notifications


@dataclass(frozen=True)
class Notification:
    """One e-mail to a customer. `key` is unique per e-mail and stable across retries (it
    becomes the Message-ID), so a receiver can drop a second copy."""

    key: str
    to: str
    name: str
    language: str
    template: str
    context: Mapping[str, Any] = field(default_factory=dict)


class Notifier(Protocol):
    def send(self, notification: Notification) -> None:
        """Sends the e-mail; `Undeliverable` when no retry could ever send it."""
        ...


class Undeliverable(Exception):
    """A message no retry can deliver (its template cannot render it, say). The outbox records
    it as failed instead of retrying it forever; any other error is retried."""


# orders, customers and the event log


@dataclass(frozen=True)
class OrderChange:
    """One atomic write: the order at its new version, the events it appended, and a new
    customer when the change created one. `expected_version` 0 creates the order;
    `previous_state` is the state at that version (stores index orders by state)."""

    record: OrderRecord
    expected_version: int
    previous_state: OrderState
    events: tuple[Event, ...]
    new_customer: Customer | None = None


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
