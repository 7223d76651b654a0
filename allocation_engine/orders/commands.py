"""What callers ask of the workflow: one frozen dataclass per command.

Each mutating command carries an idempotency key; its fingerprint (`orders.fingerprint`, a
digest of the command's canonical encoding) tells a retry of the same request from a different
request that reuses the key. A field added to a command later needs a default, and then old
requests keep their fingerprints.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from allocation_engine.engine.order import CustomerType, DeliveryMode, ShipTo
from allocation_engine.orders.model import Address, Item, ShipmentItem
from allocation_engine.orders.payments import PaymentEvent


@dataclass(frozen=True)
class CustomerInfo:
    """Who orders: an existing account by id or e-mail, or the data to create one."""

    id: str = ""
    email: str = ""
    name: str = ""
    language: str = ""  # de or en; empty = from the ship-to country


@dataclass(frozen=True)
class PlaceOrder:
    """Idempotent on (channel, external_id): the same order again returns the first one."""

    channel: str
    external_id: str
    customer: CustomerInfo
    items: tuple[Item, ...]
    ship_to: ShipTo
    address: Address = field(default_factory=Address)
    currency: str = "EUR"
    customer_type: CustomerType = CustomerType.B2C
    delivery_mode: DeliveryMode = DeliveryMode.SHIP_TO_ADDRESS
    pickup_store_id: str | None = None
    payment_method: str = ""  # a card token that authorizes at once; empty = pay later


@dataclass(frozen=True)
class RecordPayment:
    """A payment event, either trusted (`event`) or a provider webhook to verify."""

    order_id: str = ""
    idempotency_key: str = ""
    event: PaymentEvent | None = None
    provider: str = ""
    payload: bytes = b""
    signature: str = ""


@dataclass(frozen=True)
class CancelOrder:
    order_id: str
    idempotency_key: str
    reason: str = ""


@dataclass(frozen=True)
class RecordShipment:
    """A parcel left its node. `lines` are the units that left, when fewer than planned (a
    short pick: the rest is rerouted); empty means exactly as planned."""

    order_id: str
    shipment_id: str
    carrier: str
    tracking_number: str
    idempotency_key: str
    lines: tuple[ShipmentItem, ...] = ()


REJECT_REASONS = ("no_stock", "no_capacity", "damaged", "other")
"""Why a node refuses a parcel. no_stock and damaged write the held units off at the node (they
are not on its shelf, or not sellable): the next order does not fall into the same hole.
no_capacity and other give them back to the node's availability."""


@dataclass(frozen=True)
class RejectShipment:
    """The parcel's node will not send it; what it held is rerouted to other nodes."""

    order_id: str
    shipment_id: str
    reason: str
    idempotency_key: str
    note: str = ""


@dataclass(frozen=True)
class AcceptShipment:
    """The node's WMS took the parcel's pick list on (a receipt; nothing else changes)."""

    order_id: str
    shipment_id: str
    idempotency_key: str


@dataclass(frozen=True)
class SupplyChanged:
    """Incoming supply that the reservation's parcels wait for arrived, or came late, or was
    cut (`broken`: the reservation no longer fits the lot): the order releases, re-promises or
    reroutes them."""

    order_id: str
    reservation_id: str
    idempotency_key: str
    broken: bool = False


@dataclass(frozen=True)
class RecordDelivery:
    order_id: str
    shipment_id: str
    idempotency_key: str


@dataclass(frozen=True)
class ReturnItem:
    sku: str
    quantity: int


@dataclass(frozen=True)
class RequestReturn:
    order_id: str
    items: tuple[ReturnItem, ...]
    idempotency_key: str
    reason: str = ""


@dataclass(frozen=True)
class ReceiveReturn:
    order_id: str
    return_id: str
    node_id: str
    items: tuple[ReturnItem, ...]
    idempotency_key: str


@dataclass(frozen=True)
class Inspection:
    """What became of the received units of one sku: back on the shelf, or written off.
    Restocked units are accepted and refunded; written-off units are not."""

    sku: str
    restock: int
    write_off: int


@dataclass(frozen=True)
class InspectReturn:
    order_id: str
    return_id: str
    inspections: tuple[Inspection, ...]
    idempotency_key: str


@dataclass(frozen=True)
class ResumeOrder:
    """Retries a blocked step (stock arrived, the provider is back)."""

    order_id: str
    idempotency_key: str
