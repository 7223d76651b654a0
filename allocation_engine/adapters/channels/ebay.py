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
cursor could pass it for good. The cursor (JSON) holds the page reached in the current pass over
the queue, the ids already imported that were still open at the last pass, and the ids listed
so far in this pass; an id is forgotten only once it has been missing from two whole passes
(it was shipped or cancelled), so an order that page shifts hid from one pass is not imported
again. Orders sharing a creation time are therefore neither skipped nor doubled. "" starts a
pass from `options.created_after`. A 429 is retried by the HTTP client (honouring Retry-After).

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
after a timed-out first try). The tracking number is sent alphanumeric only, as eBay requires;
the carrier code is `options.carrier_codes[carrier]`, else the carrier upper-cased with every
other character turned into "_" (DB Schenker -> DB_SCHENKER).

Also home of what the AliExpress adapter shares with this one: the open-queue cursor
(`QueueCursor`), the payload reader (`Reader`) and `unit_price`.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import httpx

from allocation_engine.adapters.channels import Connection
from allocation_engine.adapters.channels.money import minor_units
from allocation_engine.adapters.http_client import HttpClient, RetryPolicy
from allocation_engine.errors import InvalidInput, PeerRefused, ProblemCollector
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


# --- shared with the AliExpress adapter ------------------------------------------------------


def unit_price(total: int, quantity: int) -> int:
    """The price of one unit, in minor units, of a line that costs `total` for `quantity`
    units (rounded half up: a platform's line total need not divide evenly)."""
    return int((Decimal(total) / quantity).quantize(Decimal(1), rounding=ROUND_HALF_UP))


@dataclass(frozen=True)
class QueueCursor:
    """Where a poll over a platform's queue of orders awaiting shipment stands.

    `page` is the next page of the current pass (0 = first); `imported` the ids already
    imported that were open at the last look; `listed` the ids listed so far in this pass;
    `absent` the imported ids that the last whole pass did not list. At the end of a pass an
    imported id missing from it twice in a row is forgotten (it left the queue), so the cursor
    stays as small as the queue."""

    page: int = 0
    imported: frozenset[str] = frozenset()
    listed: frozenset[str] = frozenset()
    absent: frozenset[str] = frozenset()

    @classmethod
    def decode(cls, cursor: str) -> QueueCursor:
        """The cursor `encode` wrote; "" is the start. `InvalidInput` for anything else."""
        if not cursor:
            return cls()
        try:
            data = json.loads(cursor)
            return cls(
                page=int(data["page"]),
                imported=frozenset(str(i) for i in data["imported"]),
                listed=frozenset(str(i) for i in data["listed"]),
                absent=frozenset(str(i) for i in data["absent"]),
            )
        except (ValueError, TypeError, KeyError):
            raise InvalidInput.one("cursor", cursor, "not a cursor of this adapter") from None

    def encode(self) -> str:
        return json.dumps(
            {
                "page": self.page,
                "imported": sorted(self.imported),
                "listed": sorted(self.listed),
                "absent": sorted(self.absent),
            },
            separators=(",", ":"),
        )

    def is_new(self, order_id: str) -> bool:
        return order_id not in self.imported

    def after(self, listed: Iterable[str], imported: Iterable[str], last: bool) -> QueueCursor:
        """The cursor past one page that listed `listed` and imported `imported`; `last` when
        it was the last page of the pass."""
        seen = self.listed | frozenset(listed)
        kept = self.imported | frozenset(imported)
        if not last:
            return QueueCursor(self.page + 1, kept, seen, self.absent)
        missing = kept - seen
        gone = missing & self.absent
        return QueueCursor(0, kept - gone, frozenset(), missing - gone)


class Reader:
    """Reads a platform payload field by field, collecting every problem (dotted path, value
    quoted) for one `InvalidInput` at the end."""

    def __init__(self) -> None:
        self.problems = ProblemCollector()

    def obj(self, value: object, path: str, required: bool = True) -> Mapping[str, Any]:
        if isinstance(value, Mapping):
            return value
        if value is not None or required:
            self.problems.add(path, value, "expected an object")
        return {}

    def items(self, value: object, path: str) -> list[Any]:
        if isinstance(value, list) and value:
            return value
        self.problems.add(path, value, "expected a non-empty list")
        return []

    def text(self, parent: Mapping[str, Any], key: str, path: str, required: bool = True) -> str:
        value = parent.get(key)
        if isinstance(value, str | int) and not isinstance(value, bool) and str(value).strip():
            return str(value).strip()
        if value is not None or required:
            self.problems.add(f"{path}.{key}", value, "expected a non-empty string")
        return ""

    def quantity(self, parent: Mapping[str, Any], key: str, path: str) -> int:
        value = parent.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
        self.problems.add(f"{path}.{key}", value, "expected a positive whole number")
        return 1

    def money(self, amount: object, currency: str, path: str) -> int:
        try:
            return minor_units(amount, currency, path)  # type: ignore[arg-type]
        except InvalidInput as bad:
            self.problems.extend(bad.problems)
            return 0

    def country(self, parent: Mapping[str, Any], key: str, path: str) -> str:
        code = self.text(parent, key, path).upper()
        if code and not re.fullmatch(r"[A-Z]{2}", code):
            self.problems.add(f"{path}.{key}", parent.get(key), "expected an ISO 3166-1 code")
        return code

    def done(self) -> None:
        self.problems.raise_if_any()


def option_time(settings: ChannelSettings, name: str) -> datetime:
    """A timestamp option (ISO 8601; without an offset it is UTC), as an aware datetime."""
    raw = settings.options.get(name)
    try:
        when = datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput.one(f"options.{name}", raw, "expected an ISO 8601 time") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def option_int(settings: ChannelSettings, name: str, default: int, maximum: int) -> int:
    raw = settings.options.get(name, default)
    if not isinstance(raw, int) or isinstance(raw, bool) or not 1 <= raw <= maximum:
        raise InvalidInput.one(f"options.{name}", raw, f"expected a whole number 1..{maximum}")
    return raw


def required_secrets(
    settings: ChannelSettings, secrets: Mapping[str, str], roles: Sequence[str]
) -> dict[str, str]:
    """The secret of each role; `InvalidInput` naming every missing one."""
    problems = ProblemCollector()
    for role in roles:
        if not secrets.get(role):
            problems.add(f"{settings.name}.credentials.{role}", "", "missing secret")
    problems.raise_if_any()
    return {role: secrets[role] for role in roles}


# --- eBay ------------------------------------------------------------------------------------


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
class _Token:
    value: str = ""
    expires: float = 0.0


@dataclass
class EbayChannel:
    """One eBay seller account: polled for orders, told of shipments."""

    settings: ChannelSettings
    http: HttpClient
    secrets: Mapping[str, str]
    created_after: str
    page_size: int
    carrier_codes: Mapping[str, str]
    clock: Any = time.monotonic
    _token: _Token = field(default_factory=_Token)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # --- auth -------------------------------------------------------------------------------

    def _bearer(self, renew: bool = False) -> str:
        """A valid User access token, minted from the refresh token when needed."""
        with self._lock:
            if renew or not self._token.value or self.clock() >= self._token.expires:
                basic = base64.b64encode(
                    f"{self.secrets['client_id']}:{self.secrets['client_secret']}".encode()
                ).decode()
                answer = self.http.post(
                    TOKEN_PATH,
                    data={
                        "grant_type": "refresh_token",
                        "refresh_token": self.secrets["refresh_token"],
                        "scope": SCOPE,
                    },
                    headers={"Authorization": f"Basic {basic}"},
                ).json()
                lifetime = float(answer.get("expires_in") or 0)
                self._token = _Token(
                    str(answer["access_token"]), self.clock() + lifetime - TOKEN_MARGIN
                )
            return self._token.value

    def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """An API call with the bearer token; a 401 mints a new token once and retries."""
        try:
            return self.http.request(
                method, path, headers={"Authorization": f"Bearer {self._bearer()}"}, **kwargs
            )
        except PeerRefused as refused:
            if refused.status != 401:
                raise
        token = self._bearer(renew=True)
        return self.http.request(
            method, path, headers={"Authorization": f"Bearer {token}"}, **kwargs
        )

    # --- importer ---------------------------------------------------------------------------

    def fetch(self, cursor: str) -> ImportPage:
        """One page of the open queue (paid, unshipped orders) after `cursor`."""
        state = QueueCursor.decode(cursor)
        offset = state.page * self.page_size
        page = self._call(
            "GET",
            ORDERS_PATH,
            params={
                "filter": f"creationdate:[{self.created_after}..],{READY_FILTER}",
                "limit": str(self.page_size),
                "offset": str(offset),
            },
        ).json()
        listed = page.get("orders") or []
        total = int(page.get("total") or 0)
        ids, imported, orders = [], [], []
        for n, summary in enumerate(listed):
            order_id = str(summary.get("orderId") or "") if isinstance(summary, Mapping) else ""
            if not order_id:
                raise InvalidInput.one(f"orders[{n}].orderId", summary, "missing order id")
            ids.append(order_id)
            if order_id in imported or not state.is_new(order_id) or not is_ready(summary):
                continue
            detail = self._call("GET", f"{ORDERS_PATH}/{order_id}").json()
            try:
                orders.append(read_order(detail))
            except InvalidInput as bad:
                raise bad.under(f"{order_id}:") from None
            imported.append(order_id)
        last = not listed or offset + len(listed) >= total
        following = state.after(ids, imported, last)
        return ImportPage(tuple(orders), following.encode(), more=not last)

    # --- confirmer --------------------------------------------------------------------------

    def _fulfillments(self, order_id: str) -> list[Mapping[str, Any]]:
        answer = self._call("GET", f"{ORDERS_PATH}/{order_id}/shipping_fulfillment").json()
        return [f for f in answer.get("fulfillments") or [] if isinstance(f, Mapping)]

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
        order = self._call("GET", f"{ORDERS_PATH}/{parcel.external_id}").json()
        body = {
            "lineItems": self._line_items(order, parcel),
            "shippedDate": shipped_date(parcel.shipped_at),
            "shippingCarrierCode": carrier_code(parcel.carrier, self.carrier_codes),
            "trackingNumber": tracking,
        }
        try:
            self._call(
                "POST", f"{ORDERS_PATH}/{parcel.external_id}/shipping_fulfillment", json=body
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
                room = int(item.get("quantity") or 0) - picked.get(item_id, 0)
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
    since = option_time(settings, "created_after").astimezone(UTC)
    codes = settings.options.get("carrier_codes", {})
    if not isinstance(codes, Mapping):
        raise InvalidInput.one("options.carrier_codes", codes, "expected a table")
    channel = EbayChannel(
        settings=settings,
        http=HttpClient(settings.base_url, headers={"Accept": "application/json"}, retry=retry),
        secrets=required_secrets(settings, secrets, CREDENTIALS),
        created_after=since.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        page_size=option_int(settings, "page_size", DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE),
        carrier_codes={str(k): str(v) for k, v in codes.items()},
    )
    return Connection(importer=channel, confirmer=channel)
