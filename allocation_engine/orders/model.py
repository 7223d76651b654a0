"""The order as the workflow keeps it: customer, priced items, payment, shipments, returns.

Records are frozen; every change makes a new one (`dataclasses.replace`), so a command that
fails half-way leaves the stored order exactly as it was. Money is in minor units (cents) of
the order's currency; times are seconds since the Unix epoch, from the injected clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from allocation_engine.engine.order import CustomerType, DeliveryMode, Order
from allocation_engine.orders.events import EventType
from allocation_engine.orders.machines import (
    LIVE_SHIPMENTS,
    OrderState,
    PaymentState,
    ReturnState,
    ShipmentState,
)

LANGUAGES = ("de", "en")


@dataclass(frozen=True)
class PriceTerms:
    """What a (B2B) customer agreed with sales: days to pay an invoice, and a discount on list
    prices in basis points (250 = 2.5 %)."""

    payment_terms_days: int = 0
    discount_basis_points: int = 0


@dataclass(frozen=True)
class DeliveryPreferences:
    """How a customer likes to receive orders: a delivery mode (None = no preference) and the
    store they collect from."""

    mode: DeliveryMode | None = None
    pickup_store_id: str = ""


@dataclass(frozen=True)
class Customer:
    """A customer account, found again by id or by e-mail (lower-cased). A CRM keeps its terms
    and preferences up to date (`service/feeds/crm.py`), so they exist before a first order."""

    id: str
    email: str
    name: str = ""
    language: str = "en"
    customer_type: CustomerType = CustomerType.B2C
    created_at: float = 0.0
    terms: PriceTerms = PriceTerms()
    delivery: DeliveryPreferences = DeliveryPreferences()


@dataclass(frozen=True)
class Address:
    """Where the parcel goes, as a carrier label needs it."""

    name: str = ""
    street: str = ""
    postal_code: str = ""
    city: str = ""
    country: str = ""


@dataclass(frozen=True)
class Item:
    """One order line with its price: what the customer pays and what a refund gives back."""

    sku: str
    quantity: int
    unit_price: int
    name: str = ""

    @property
    def total(self) -> int:
        return self.quantity * self.unit_price


@dataclass(frozen=True)
class Payment:
    """The payment of one order at one provider.

    `amount` is what the customer owes: the order total less credit notes. `captured` is what
    was collected, `refunded` what went back; refunded <= captured always holds.

    `opened` is False from the moment the order is stored until the provider was asked to open
    the payment (the workflow does that first, under the order's own key, so a retry or a
    restarted process opens the same payment again); `method` is the card token to open it
    with, kept only until then.
    """

    provider: str
    amount: int
    state: PaymentState = PaymentState.PENDING
    reference: str = ""  # the provider's id (a PaymentIntent id, an invoice number)
    client_secret: str = ""  # handed to the shop front end so the customer can pay
    authorized: int = 0
    captured: int = 0
    refunded: int = 0
    credited: int = 0
    due_at: float | None = None  # when an invoice is due
    failure: str = ""  # the provider's reason for the last failure
    opened: bool = True  # False: stored, the provider not asked yet (old records: asked)
    method: str = ""  # the payment method to open with (a card token); cleared once opened


@dataclass(frozen=True)
class ShipmentItem:
    sku: str
    quantity: int


@dataclass(frozen=True)
class Shipment:
    """One parcel from one node, as the allocation planned it (once shipped: as it left).

    `reservation_id` names the stock reservation holding its units when that is not the
    order's own (a parcel from a reroute is held by a reservation of its own); `reason` is why
    its node rejected it. A backordered parcel (some of its units come from a purchase order or
    transfer on its way) stays PENDING until they arrive: `ready_on` is the day it was promised
    to leave.
    """

    id: str
    node_id: str
    lines: tuple[ShipmentItem, ...]
    state: ShipmentState = ShipmentState.PENDING
    carrier: str = ""
    tracking_number: str = ""
    shipped_at: float | None = None
    delivered_at: float | None = None
    reservation_id: str = ""
    reason: str = ""
    ready_on: str = ""  # ISO date promised while it waits for incoming supply; "" = from stock

    @property
    def units(self) -> int:
        return sum(line.quantity for line in self.lines)


@dataclass(frozen=True)
class ReturnLine:
    """Units of one sku in a return: asked for, arrived, and what inspection made of them."""

    sku: str
    requested: int
    received: int = 0
    restocked: int = 0
    written_off: int = 0


@dataclass(frozen=True)
class Return:
    id: str
    lines: tuple[ReturnLine, ...]
    state: ReturnState = ReturnState.REQUESTED
    reason: str = ""
    node_id: str = ""  # where it was received
    refund: int = 0  # the accepted amount: restocked units at their unit price
    requested_at: float = 0.0
    key: str = ""  # the idempotency key of the RequestReturn that opened it

    def line(self, sku: str) -> ReturnLine | None:
        return next((line for line in self.lines if line.sku == sku), None)


class FlowStatus(StrEnum):
    """Where the order stands in its workflow."""

    WAITING = "WAITING"  # for an outside event: a payment, a shipment, a delivery
    BLOCKED = "BLOCKED"  # a step failed (no stock, capture refused); ResumeOrder retries it
    DONE = "DONE"  # every step ran
    CANCELLED = "CANCELLED"


@dataclass(frozen=True)
class OrderRecord:
    """One order and everything the workflow knows about it.

    `order` is the engine's view (what to allocate, where to); `items` add prices and names.
    `step` indexes the workflow's steps: the one running or waiting. `version` counts stored
    changes and guards every write (compare-and-set). `keys` maps each idempotency key seen to
    the fingerprint of its request.
    """

    id: str
    channel: str
    external_id: str
    customer_id: str
    workflow: str
    order: Order
    items: tuple[Item, ...]
    currency: str
    payment: Payment
    address: Address = Address()
    state: OrderState = OrderState.PLACED
    status: FlowStatus = FlowStatus.WAITING
    step: int = 0
    blocked_reason: str = ""
    reservation_id: str = ""
    reserve_attempt: int = 0  # failed reserve attempts: each retry holds under a new key
    capture_attempt: int = 0  # captures the provider refused: each retry under a new key
    shipments: tuple[Shipment, ...] = ()
    returns: tuple[Return, ...] = ()
    reroutes: int = 0  # times units a node did not send were allocated again
    reroute_attempt: int = 0  # refused tries of the next reroute: each retry under a new key
    extra_reroutes: int = 0  # reroutes an operator allowed past the workflow's cap (ResumeOrder)
    cancelled: tuple[ShipmentItem, ...] = ()  # units given up (no node could take them over)
    version: int = 0
    events: int = 0  # events appended so far; the next one gets this number
    created_at: float = 0.0
    updated_at: float = 0.0
    fingerprint: str = ""  # of the PlaceOrder request, for idempotent retries
    keys: Mapping[str, str] = field(default_factory=dict)
    nonce: str = ""  # random at creation, then stored: order ids may repeat across stores

    @property
    def total(self) -> int:
        return sum(item.total for item in self.items)

    def key(self, action: str) -> str:
        """The idempotency key of one outside call this order makes (opening the payment, a
        capture, a refund...): built from the stored record only (its id and nonce, both fixed
        by the write that created it), so every racer, retry or restarted process that repeats
        the call sends the same key; unique to this order everywhere."""
        return f"order:{self.id}:{self.nonce}:{action}"

    @property
    def units(self) -> int:
        return sum(item.quantity for item in self.items)

    def item(self, sku: str) -> Item | None:
        return next((item for item in self.items if item.sku == sku), None)

    def shipment(self, shipment_id: str) -> Shipment | None:
        return next((s for s in self.shipments if s.id == shipment_id), None)

    def return_(self, return_id: str) -> Return | None:
        return next((r for r in self.returns if r.id == return_id), None)

    def reservation_of(self, shipment: Shipment) -> str:
        """The reservation holding a parcel's units."""
        return shipment.reservation_id or self.reservation_id

    @property
    def reservations(self) -> frozenset[str]:
        """Every stock reservation this order holds or held."""
        ids = {self.reservation_id} | {s.reservation_id for s in self.shipments}
        return frozenset(ids - {""})

    @property
    def live_shipments(self) -> tuple[Shipment, ...]:
        return tuple(s for s in self.shipments if s.state in LIVE_SHIPMENTS)

    def unrouted(self) -> tuple[ShipmentItem, ...]:
        """Units of the allocated order that no live parcel carries and that were not
        cancelled: what a node rejected or picked short, still to be rerouted."""
        if not self.shipments:
            return ()
        out = []
        for line in self.order.lines:
            carried = self.units_in(line.sku, LIVE_SHIPMENTS)
            given_up = sum(x.quantity for x in self.cancelled if x.sku == line.sku)
            if line.quantity > carried + given_up:
                out.append(ShipmentItem(line.sku, line.quantity - carried - given_up))
        return tuple(out)

    def units_in(self, sku: str, states: frozenset[ShipmentState]) -> int:
        """Units of `sku` in shipments that are in one of `states`."""
        return sum(
            line.quantity
            for s in self.shipments
            if s.state in states
            for line in s.lines
            if line.sku == sku
        )


@dataclass(frozen=True)
class Event:
    """One entry of an order's timeline and of the event log the outbox reads.

    `seq` numbers the order's events from 0, so `id` is unique and stable: the outbox uses it
    as the idempotency key of every delivery made from this event. `type` is stored as its
    string value; a store that reads it back as a plain string gets the member again here.
    """

    order_id: str
    seq: int
    type: EventType
    at: float
    data: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.type, EventType):
            object.__setattr__(self, "type", EventType(self.type))

    @property
    def id(self) -> str:
        return f"{self.order_id}/{self.seq}"
