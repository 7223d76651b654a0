"""eBay, through the Sell Fulfillment API v1 (spec v1.20) and eBay OAuth (refresh-token grant).

Auth: a User access token minted from the seller's long-lived refresh token,
`POST /identity/v1/oauth2/token` with `Authorization: Basic base64(client_id:client_secret)`,
form body `grant_type=refresh_token&refresh_token=...&scope=https://api.ebay.com/oauth/api_scope/
sell.fulfillment`; the answer's `access_token` goes on every call as `Authorization: Bearer ...`
and is kept until `expires_in` (less a minute) runs out, or until a call answers 401, when it is
minted once more. eBay signs nothing we receive here (eBay pushes no order webhooks to this
adapter), and eBay's Digital Signatures apply only to refunds and other financial calls, not
to the two used here.

Inbound (polled): `GET /sell/fulfillment/v1/order?filter=creationdate:[<created_after>..],
orderfulfillmentstatus:{NOT_STARTED|IN_PROGRESS}&limit=<page_size>&offset=<n>` (the brackets,
braces and bar percent-encoded as eBay requires), paged by `limit`/`offset` up to `total`. For
each order not seen before, `GET /sell/fulfillment/v1/order/{orderId}` reads the whole order,
because eBay returns `buyer.taxIdentifier` only there. Orders with `orderPaymentStatus` other
than PAID wait (they are imported once paid); orders whose `cancelStatus.cancelState` is
CANCELED are never imported.

The cursor is the open queue, not a timestamp: getOrders documents no sort order, and an order
can become ready after orders created later (pending payments appear late), so a creation-time
cursor could pass it for good. The cursor is a `QueueCursor` over the open queue (see
`queue_cursor`), so orders sharing a creation time are neither skipped nor doubled and an order
a page shift hid from one pass is not imported again. "" starts a pass from
`options.created_after`. A 429 is retried by the HTTP client (honouring Retry-After).

Mapped: `orderId` (the id the API takes back) -> external_id; each `lineItems[]` -> a line with
its `sku` (or `legacyItemId`, `legacyItemId:legacyVariationId` for a variation, when the
listing has no SKU), `quantity`, the unit price `(discountedLineItemCost or lineItemCost) /
quantity` in minor units (eBay's lineItemCost is unit price x quantity before discounts), and
`title`; `fulfillmentStartInstructions[0].shippingStep.shipTo` -> ship-to (`fullName`,
`companyName`, `contactAddress.addressLine1/2`, `postalCode`, `city`, `countryCode`) and e-mail
(`shipTo.email`, else `buyer.buyerRegistrationAddress.email`); `buyer.username` -> customer id;
`buyer.taxIdentifier.taxpayerId` -> tax id; b2b when its `taxIdentifierType` is VATIN or the
buyer gave a company with a tax id; paid always (eBay collects the money); currency from
`pricingSummary.total.currency`. Not mapped: coordinates (eBay sends none: the postal code is
geocoded), delivery cost, taxes, eBay-collected charges, buyer notes, Global Shipping Program
references.

Outbound: `POST /sell/fulfillment/v1/order/{orderId}/shipping_fulfillment` with
`{"lineItems": [{"lineItemId", "quantity"}], "shippedDate", "shippingCarrierCode",
"trackingNumber"}`; the line item ids come from `GET /order/{orderId}` by platform sku. eBay has
no idempotency key, but a fulfillment's id is its tracking number, so the confirmer first reads
`GET .../shipping_fulfillment` and sends nothing when a fulfillment with that tracking number
exists (and a 4xx answer to the POST is taken as success when the re-read then shows it, as
after a timed-out first try). The POST itself is sent once, never retried by the HTTP client:
an unanswered one raises PeerUnavailable and the outbox's next attempt checks first.
The tracking number is sent alphanumeric only, as eBay requires;
the carrier code is `options.carrier_codes[carrier]`, else the carrier upper-cased with every
other character turned into "_" (DB Schenker -> DB_SCHENKER).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from allocation_engine.adapters.channels import Connection
from allocation_engine.adapters.channels.money import unit_price
from allocation_engine.adapters.channels.options import OptionReader
from allocation_engine.adapters.channels.payload import (
    Reader,
    api_list,
    api_object,
    is_seconds,
    is_whole,
)
from allocation_engine.adapters.channels.queue_cursor import QueueCursor
from allocation_engine.adapters.channels.token_cache import TokenCache
from allocation_engine.adapters.http_client import HttpClient, RetryPolicy
from allocation_engine.errors import InvalidInput, PeerRefused, PeerUnavailable, ProblemCollector
from allocation_engine.ports.channels import (
    ChannelAddress,
    ChannelLine,
    ChannelOrder,
    ChannelSettings,
    ImportPage,
    ParcelShipped,
)

CREDENTIALS: tuple[str, ...] = ("client_id", "client_secret", "refresh_token")
OPTIONS: dict[str, bool] = {"created_after": True, "page_size": False, "carrier_codes": False}

TOKEN_PATH = "/identity/v1/oauth2/token"
ORDERS_PATH = "/sell/fulfillment/v1/order"
SCOPE = "https://api.ebay.com/oauth/api_scope/sell.fulfillment"
READY_FILTER = "orderfulfillmentstatus:{NOT_STARTED|IN_PROGRESS}"
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200  # eBay refuses a larger limit
TOKEN_MARGIN = 60.0  # seconds before expiry a token is minted anew


def line_sku(item: Mapping[str, Any]) -> str:
    """The seller's SKU of a line item, else its listing id (with the variation id)."""
    sku = str(item.get("sku") or "").strip()
    if sku:
        return sku
    listing = str(item.get("legacyItemId") or "").strip()
    variation = str(item.get("legacyVariationId") or "").strip()
    return f"{listing}:{variation}" if listing and variation else listing


def read_order(order: Mapping[str, Any]) -> ChannelOrder:
    """One eBay `Order` (as getOrder returns it) as a ChannelOrder; `InvalidInput` naming
    every unreadable field."""
    read = Reader()
    order_id = read.text(order, "orderId", "order")
    summary = read.obj(order.get("pricingSummary"), "order.pricingSummary")
    total_path = "order.pricingSummary.total"
    currency = read.text(read.obj(summary.get("total"), total_path), "currency", total_path)
    currency = currency.upper()
    lines = []
    for n, raw in enumerate(read.items(order.get("lineItems"), "order.lineItems")):
        path = f"order.lineItems[{n}]"
        item = read.obj(raw, path)
        sku = line_sku(item)
        if not sku:
            read.problems.add(f"{path}.sku", item.get("sku"), "no sku and no legacyItemId")
        quantity = read.quantity(item, "quantity", path)
        discounted = item.get("discountedLineItemCost")
        cost_key = "discountedLineItemCost" if discounted else "lineItemCost"
        cost = read.obj(item.get(cost_key), f"{path}.{cost_key}")
        total = read.money(cost.get("value"), currency, f"{path}.{cost_key}.value")
        lines.append(
            ChannelLine(sku, quantity, unit_price(total, quantity), str(item.get("title") or ""))
        )
    instructions = order.get("fulfillmentStartInstructions")
    first = instructions[0] if isinstance(instructions, list) and instructions else None
    start = read.obj(first, "order.fulfillmentStartInstructions[0]")
    step_path = "order.fulfillmentStartInstructions[0].shippingStep"
    ship_to = read.obj(
        read.obj(start.get("shippingStep"), step_path).get("shipTo"), f"{step_path}.shipTo"
    )
    address = read.obj(ship_to.get("contactAddress"), f"{step_path}.shipTo.contactAddress")
    address_path = f"{step_path}.shipTo.contactAddress"
    street = " ".join(
        part
        for part in (
            read.text(address, "addressLine1", address_path),
            read.text(address, "addressLine2", address_path, required=False),
        )
        if part
    )
    buyer = read.obj(order.get("buyer"), "order.buyer")
    registration = read.obj(
        buyer.get("buyerRegistrationAddress"), "order.buyer.buyerRegistrationAddress", False
    )
    tax = read.obj(buyer.get("taxIdentifier"), "order.buyer.taxIdentifier", required=False)
    company = str(ship_to.get("companyName") or registration.get("companyName") or "").strip()
    tax_id = str(tax.get("taxpayerId") or "").strip()
    result = ChannelOrder(
        external_id=order_id,
        lines=tuple(lines),
        ship_to=ChannelAddress(
            name=str(ship_to.get("fullName") or "").strip(),
            street=street,
            postal_code=read.text(address, "postalCode", address_path),
            city=read.text(address, "city", address_path),
            country=read.country(address, "countryCode", address_path),
            company=company,
        ),
        currency=currency,
        customer_id=str(buyer.get("username") or ""),
        email=str(ship_to.get("email") or registration.get("email") or ""),
        customer_name=str(registration.get("fullName") or ship_to.get("fullName") or ""),
        company=company,
        tax_id=tax_id,
        b2b=tax.get("taxIdentifierType") == "VATIN" or bool(company and tax_id),
        paid=True,
    )
    read.done()
    return result


def is_ready(order: Mapping[str, Any]) -> bool:
    """Paid and not cancelled: an order to ship now."""
    cancel = order.get("cancelStatus")
    cancelled = isinstance(cancel, Mapping) and cancel.get("cancelState") == "CANCELED"
    return order.get("orderPaymentStatus") == "PAID" and not cancelled


def carrier_code(carrier: str, codes: Mapping[str, str]) -> str:
    """eBay's shipping carrier code for our carrier name."""
    return codes.get(carrier) or re.sub(r"[^A-Z0-9]+", "_", carrier.upper()).strip("_")


def shipped_date(epoch: float) -> str:
    """eBay's timestamp format, UTC with milliseconds: 2026-11-30T08:25:43.511Z."""
    return (
        datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )


@dataclass
class EbayChannel:
    """One eBay seller account: polled for orders, told of shipments."""

    settings: ChannelSettings
    http: HttpClient
    secrets: Mapping[str, str]
    created_after: str
    page_size: int
    carrier_codes: Mapping[str, str]
    once: HttpClient | None = None
    """The client the shipping_fulfillment POST goes through, never retried (eBay does not
    deduplicate it); `http` when not given."""
    _token: TokenCache = field(init=False)

    def __post_init__(self) -> None:
        self._token = TokenCache(self._mint, TOKEN_MARGIN)

    # --- auth -------------------------------------------------------------------------------

    def _mint(self) -> tuple[str, float]:
        """A User access token from the refresh token, and its lifetime in seconds."""
        basic = base64.b64encode(
            f"{self.secrets['client_id']}:{self.secrets['client_secret']}".encode()
        ).decode()
        response = self.http.post(
            TOKEN_PATH,
            data={
                "grant_type": "refresh_token",
                "refresh_token": self.secrets["refresh_token"],
                "scope": SCOPE,
            },
            headers={"Authorization": f"Basic {basic}"},
        )
        answer = api_object(response, "token answer")
        token, lifetime = answer.get("access_token"), answer.get("expires_in") or 0
        if not isinstance(token, str) or not token or not is_seconds(lifetime):
            raise PeerUnavailable(f"{self.http.base_url}{TOKEN_PATH}: no access_token/expires_in")
        return token, float(lifetime)

    def _call(
        self, method: str, path: str, *, client: HttpClient | None = None, **kwargs: Any
    ) -> httpx.Response:
        """An API call with the bearer token (through `client`, else the retrying one); a 401
        mints a new token once and retries."""
        http = client or self.http
        return self._token.authorized(
            lambda token: http.request(
                method, path, headers={"Authorization": f"Bearer {token}"}, **kwargs
            )
        )

    # --- importer ---------------------------------------------------------------------------

    def fetch(self, cursor: str) -> ImportPage:
        """One page of the open queue (paid, unshipped orders) after `cursor`."""
        state = QueueCursor.decode(cursor)
        offset = state.page * self.page_size
        response = self._call(
            "GET",
            ORDERS_PATH,
            params={
                "filter": f"creationdate:[{self.created_after}..],{READY_FILTER}",
                "limit": str(self.page_size),
                "offset": str(offset),
            },
        )
        page = api_object(response, "getOrders answer")
        listed = api_list(page.get("orders"), self.http.base_url + ORDERS_PATH, "orders")
        total = page.get("total") or 0
        if not is_whole(total, 0):
            raise PeerUnavailable(f"{self.http.base_url}{ORDERS_PATH}: total {total!r}")
        ids, ready = [], set()
        for n, summary in enumerate(listed):
            order_id = str(summary.get("orderId") or "") if isinstance(summary, Mapping) else ""
            if not order_id:
                raise InvalidInput.one(f"orders[{n}].orderId", summary, "missing order id")
            ids.append(order_id)
            if is_ready(summary):
                ready.add(order_id)
        last = not listed or offset + len(listed) >= total
        return state.import_page(ids, ready, self._order, last)

    def _order(self, order_id: str) -> ChannelOrder:
        """The whole order (getOrder: the buyer's tax id is only there)."""
        return read_order(api_object(self._call("GET", f"{ORDERS_PATH}/{order_id}"), "order"))

    # --- confirmer --------------------------------------------------------------------------

    def _fulfillments(self, order_id: str) -> list[Mapping[str, Any]]:
        path = f"{ORDERS_PATH}/{order_id}/shipping_fulfillment"
        answer = api_object(self._call("GET", path), "shipping fulfillments")
        listed = api_list(answer.get("fulfillments"), self.http.base_url + path, "fulfillments")
        return [f for f in listed if isinstance(f, Mapping)]

    def _has(self, order_id: str, tracking: str) -> bool:
        return any(
            str(f.get("shipmentTrackingNumber") or f.get("fulfillmentId")) == tracking
            for f in self._fulfillments(order_id)
        )

    def confirm(self, parcel: ParcelShipped) -> None:
        """Creates the parcel's shipping fulfillment unless one with its tracking number
        exists."""
        tracking = re.sub(r"[^A-Za-z0-9]", "", parcel.tracking_number)
        if not tracking:
            raise InvalidInput.one(
                "parcel.tracking_number",
                parcel.tracking_number,
                "eBay needs an alphanumeric tracking number",
            )
        if self._has(parcel.external_id, tracking):
            return
        order = api_object(self._call("GET", f"{ORDERS_PATH}/{parcel.external_id}"), "order")
        body = {
            "lineItems": self._line_items(order, parcel),
            "shippedDate": shipped_date(parcel.shipped_at),
            "shippingCarrierCode": carrier_code(parcel.carrier, self.carrier_codes),
            "trackingNumber": tracking,
        }
        try:
            # Sent once: a POST eBay made but answered 503 for would, retried, make a second
            # fulfillment; the outbox tries again later, and `_has` runs first then.
            self._call(
                "POST",
                f"{ORDERS_PATH}/{parcel.external_id}/shipping_fulfillment",
                client=self.once,
                json=body,
            )
        except PeerRefused:
            if not self._has(parcel.external_id, tracking):
                raise

    @staticmethod
    def _line_items(order: Mapping[str, Any], parcel: ParcelShipped) -> list[dict[str, Any]]:
        """The parcel's lines as eBay line item ids and quantities (a sku on several line
        items fills them in order)."""
        items = [i for i in order.get("lineItems") or [] if isinstance(i, Mapping)]
        picked: dict[str, int] = {}
        problems = ProblemCollector()
        for n, line in enumerate(parcel.lines):
            left = line.quantity
            for item in items:
                if line_sku(item) != line.sku or left <= 0:
                    continue
                item_id = str(item.get("lineItemId"))
                ordered = item.get("quantity")
                room = (ordered if is_whole(ordered, 0) else 0) - picked.get(item_id, 0)
                take = min(room, left)
                if take > 0:
                    picked[item_id] = picked.get(item_id, 0) + take
                    left -= take
            if left > 0:
                problems.add(
                    f"parcel.lines[{n}]",
                    line.sku,
                    f"{left} unit(s) not on any line item of eBay order",
                )
        problems.raise_if_any()
        return [{"lineItemId": i, "quantity": q} for i, q in picked.items()]


def connect(
    settings: ChannelSettings, secrets: Mapping[str, str], *, retry: RetryPolicy | None = None
) -> Connection:
    """The eBay channel: an importer and a confirmer over one HTTP client."""
    if not settings.base_url:
        raise InvalidInput.one(f"{settings.name}.base_url", "", "eBay needs the API base URL")
    read = OptionReader(settings, secrets)
    since = read.time("created_after")
    channel_secrets = read.secrets(CREDENTIALS, under=f"{settings.name}.")
    page_size = read.count("page_size", DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
    carrier_codes = read.table("carrier_codes")
    read.done()
    channel = EbayChannel(
        settings=settings,
        http=HttpClient(settings.base_url, headers={"Accept": "application/json"}, retry=retry),
        once=HttpClient(
            settings.base_url, headers={"Accept": "application/json"}, retry=RetryPolicy(attempts=1)
        ),
        secrets=channel_secrets,
        created_after=since.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        page_size=page_size,
        carrier_codes=carrier_codes,
    )
    return Connection(importer=channel, confirmer=channel)
