"""The channel port: how a web shop, a marketplace, a POS or an app hands us orders and hears
back when a parcel left.

A platform adapter (`adapters/channels/<kind>.py`) reads the platform's own wire format into a
`ChannelOrder` (the order as the platform described it: its line skus or variant ids, its prices,
its address) and writes a `ParcelShipped` back in the platform's format. Everything between, the
SKU mapping, geocoding the ship-to, choosing the workflow, placing idempotently on (channel,
external id), is the same for every platform and lives in `service/channels/`.

An adapter implements whichever of the three roles its platform has:
- `WebhookSource`: the platform pushes (Shopify, Shopware, BigCommerce): verify the signature
  over the raw body, then read the orders (a thin payload may be fetched through the API);
- `OrderImporter`: we pull (Magento, Amazon, eBay, AliExpress): one page of orders after a
  cursor, and the cursor to continue from;
- `ShipmentConfirmer`: the shipment confirmation with carrier and tracking, sent by the outbox.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class ChannelSettings:
    """One connected shop or marketplace, as `channels.toml` names it (parsed and checked by
    `service.channels.config`). `credentials` maps each secret the adapter needs (its role,
    such as `webhook_secret`) to the NAME of the environment variable holding it; the values
    reach the adapter separately, never through the file."""

    name: str  # the channel on every order it places, e.g. "shopify-de"
    kind: str  # the platform: shopify, shopware, magento, bigcommerce, amazon, ebay, ...
    base_url: str = ""  # the platform's API (a shop's admin URL, a marketplace endpoint)
    workflow: str = ""  # the workflow its orders take; "" = chosen by the workflow file
    node_types: tuple[str, ...] = ()  # which node types may serve it; () = as the rules say
    skus: Mapping[str, str] = field(default_factory=dict)  # platform sku/variant id -> ours
    credentials: Mapping[str, str] = field(default_factory=dict)  # role -> env var name
    options: Mapping[str, Any] = field(default_factory=dict)  # platform-specific settings
    poll_seconds: float = 60.0  # how often an importer polls


@dataclass(frozen=True)
class ChannelLine:
    """One order line as the platform sent it. `sku` is the platform's sku (or variant id where
    the platform has no sku); the channel's mapping table turns it into ours. `unit_price` is in
    minor units (cents) of the order's currency, after line discounts."""

    sku: str
    quantity: int
    unit_price: int
    name: str = ""


@dataclass(frozen=True)
class ChannelAddress:
    """The ship-to as the platform sent it; `country` ISO 3166-1 alpha-2. Coordinates when the
    platform has them (Shopify does), else the postal code is geocoded."""

    name: str = ""
    street: str = ""
    postal_code: str = ""
    city: str = ""
    country: str = ""
    company: str = ""
    latitude: float | None = None
    longitude: float | None = None


@dataclass(frozen=True)
class ChannelOrder:
    """An order as one platform described it, before mapping.

    `external_id` is the platform's own order id, the one its API takes back (Shopify's numeric
    id, Amazon's AmazonOrderId). `b2b` when the payload says the buyer is a business (a
    company with a tax id, a B2B customer group). `paid` when the platform says it collected
    the money; it does not choose the workflow (the channel's setting does: `marketplace-paid`
    for a platform that collects, `b2b-invoice` for payment terms) and is kept for adapters
    and logs, not yet acted on. `pickup_store_id` for click & collect: the store node the
    customer collects from."""

    external_id: str
    lines: tuple[ChannelLine, ...]
    ship_to: ChannelAddress
    currency: str
    customer_id: str = ""
    email: str = ""
    customer_name: str = ""
    language: str = ""
    company: str = ""
    tax_id: str = ""
    b2b: bool = False
    paid: bool = False
    pickup_store_id: str = ""


@dataclass(frozen=True)
class ShippedLine:
    """Units of one line in a parcel, by the platform's sku (mapped back from ours)."""

    sku: str
    quantity: int


@dataclass(frozen=True)
class ParcelShipped:
    """A parcel of a channel's order that left its node: what the platform is told."""

    channel: str
    order_id: str  # ours
    external_id: str  # the platform's order id
    shipment_id: str  # ours: unique per parcel, the idempotency key of the confirmation
    node_id: str
    carrier: str
    tracking_number: str
    lines: tuple[ShippedLine, ...]
    shipped_at: float


@dataclass(frozen=True)
class ImportPage:
    """One page of a poll: the orders, the cursor to continue after them, and whether more
    pages are waiting now. `cursor` may only move forward past orders in `orders`."""

    orders: tuple[ChannelOrder, ...]
    cursor: str
    more: bool = False


class WebhookSource(Protocol):
    """A platform that pushes orders to `POST /webhooks/<channel>`."""

    def verify(self, headers: Mapping[str, str], body: bytes) -> None:
        """Checks the platform's signature over the raw body (headers keyed lower-case);
        `BadSignature` when it is missing or wrong. Calls nobody."""
        ...

    def delivery_id(self, headers: Mapping[str, str], body: bytes) -> str:
        """The platform's id of this delivery (Shopify's X-Shopify-Webhook-Id), so a redelivery
        is recognised; "" when the platform sends none."""
        ...

    def orders(self, headers: Mapping[str, str], body: bytes) -> list[ChannelOrder]:
        """The orders a verified delivery brings; [] for a topic we do not act on. May call the
        platform's API for the order itself when the payload is thin (BigCommerce).
        `InvalidInput` naming the field for a payload that cannot be read."""
        ...


class OrderImporter(Protocol):
    """A platform we poll for new orders."""

    def fetch(self, cursor: str) -> ImportPage:
        """The next page of orders after `cursor` ("" = from the start the channel's settings
        name). Honours the platform's rate limits (backs off and retries); `PeerUnavailable`
        when it cannot get an answer."""
        ...


class ShipmentConfirmer(Protocol):
    """Tells the platform that a parcel left, in its own format (a fulfillment, a shipment, a
    delivery state transition, a shipping confirmation)."""

    def confirm(self, parcel: ParcelShipped) -> None:
        """Sends the confirmation. Idempotent: sending the same parcel again leaves one
        confirmation at the platform. `PeerUnavailable` to retry later; `PeerRefused` when the
        platform will never take it."""
        ...


class ChannelCursors(Protocol):
    """Where each polling channel's cursor is kept, so a restart neither skips nor repeats."""

    def cursor(self, channel: str) -> str:
        """The stored cursor, "" before the first poll."""
        ...

    def advance(self, channel: str, cursor: str) -> None:
        """Stores the cursor after the orders before it were placed."""
        ...


class PostalCentroids(Protocol):
    """Coordinates for a postal code, for ship-tos that come without any."""

    def locate(self, country: str, postal_code: str) -> tuple[float, float] | None:
        """(latitude, longitude) of the code's centroid (or of a coarser prefix's), None when
        the country or the code is unknown."""
        ...
