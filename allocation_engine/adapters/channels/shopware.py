"""Shopware 6: orders pushed by the app system's `checkout.order.placed` webhook, parcels
confirmed on the order's delivery through the Admin API.

Follows Shopware 6.6 / 6.7 (app system manifest 2.0+, Admin API `/api` without a version
prefix, the JSON format of `Accept: application/json`).

Inbound (`WebhookSource`): Shopware POSTs `{"data": {"event": ..., "payload": {"order": {...}}},
"source": {"url", "shopId", "appVersion", "eventId"}, "timestamp"}` to the URL the app's
manifest names for `checkout.order.placed`. Header `shopware-shop-signature` is the lower-case
hex HMAC-SHA256 of the raw body keyed with the shop secret (the `secret` our app returned in
the registration response; credential `webhook_secret`). The delivery id is
`X-Shopware-Event-Id` (the same on every retry), else `source.eventId`. The signed `timestamp`
is not held against a window: Shopware retries a failed delivery for hours with it, and a
replay places nothing twice (orders are placed once per external id). Other events are
acknowledged and ignored. An order entity without its `lineItems`, `deliveries`,
`orderCustomer` or `currency` (associations an app without read permission on them does not
get) is read again through the Admin API (`POST /api/search/order` with those associations).

Mapping of `data.payload.order` (the order entity with its associations): `external_id` = `id`
(the 32-hex UUID the Admin API takes; the customer-facing `orderNumber` is not used). A line
per `lineItems` entry of `type` "product" (promotions, credits and custom lines are not
mapped): sku = `payload.productNumber` (else `productId`, else `referencedId`), quantity =
`quantity`, unit price = `unitPrice` (gross or net as the order's `taxStatus` says; promotion
discounts are separate lines and not spread onto products) in minor units of
`currency.isoCode`, name = `label`. Ship-to = `deliveries[0].shippingOrderAddress`:
`firstName` + `lastName`, `company`, `street` (+ `additionalAddressLine1`), `zipcode`, `city`,
country = `country.iso`; when the payload carries only `countryId`, the country's `iso` is read
with `GET /api/country/{countryId}` (Shopware has no coordinates). Customer = `orderCustomer`
(`customerId`, `email`, `firstName` + `lastName`); company and tax id from `billingAddress` (or
the `addresses` entry of `billingAddressId`: `company`, `vatId`), else `orderCustomer.company` /
`orderCustomer.vatIds[0]`. `b2b` when there is a company and a VAT id. `paid` when a
`transactions` entry is in state (`stateMachineState.technicalName`) "paid". Language =
`language.locale.code` ("de-DE" -> "de").
Not mapped: customer groups, order-level promotions, several deliveries (the first is used).

Outbound (`ShipmentConfirmer`): the Admin API with an integration's OAuth client credentials
(credentials `client_id`, `client_secret`): `POST /api/oauth/token` `{"grant_type":
"client_credentials", "client_id", "client_secret"}` gives a bearer token, kept until shortly
before `expires_in` and fetched again on a 401. `POST /api/search/order` (ids = the order,
with its deliveries and their states and its line items) reads the delivery; `PATCH
/api/order-delivery/{id}` appends the tracking number to `trackingCodes` and records the parcel
(carrier, tracking number, lines by productNumber) under our shipment id in the delivery's
`customFields.allocation_engine_parcels` (Shopware has no per-line shipment record); then
`POST /api/_action/order_delivery/{id}/state/ship` when the recorded parcels cover every
product line, else `.../state/ship_partially`. Idempotent on the shipment id: a delivery that
already records the parcel and holds its tracking code is not patched again, and a delivery
already in the target state (or in `shipped`) is not transitioned again; a transition refused
because a lost answer's first try already moved the state is read back and accepted. The
delivery is read, then written (`trackingCodes` is replaced whole, our custom field too), so
two parcels of one order confirmed at the very same moment could lose one of the two records:
one order's confirmations are expected one after the other.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Mapping
from typing import Any

from allocation_engine.adapters.channels import Connection
from allocation_engine.adapters.channels.money import minor_units
from allocation_engine.adapters.channels.options import OptionReader
from allocation_engine.adapters.channels.payload import (
    api_json,
    api_object,
    country_code,
    dig,
    full_name,
    is_seconds,
    is_whole,
    json_body,
    json_field,
    obj,
    postal_code,
)
from allocation_engine.adapters.channels.token_cache import TokenCache
from allocation_engine.adapters.http_client import HttpClient, RetryPolicy
from allocation_engine.errors import (
    BadSignature,
    InvalidInput,
    PeerRefused,
    PeerUnavailable,
    ProblemCollector,
)
from allocation_engine.ports.channels import (
    ChannelAddress,
    ChannelLine,
    ChannelOrder,
    ChannelSettings,
    ParcelShipped,
)

CREDENTIALS: tuple[str, ...] = ("webhook_secret", "client_id", "client_secret")
OPTIONS: dict[str, bool] = {}

SIGNATURE_HEADER = "shopware-shop-signature"
ORDER_PLACED = "checkout.order.placed"
PARCELS_FIELD = "allocation_engine_parcels"
"""The delivery custom field our parcels are recorded under, keyed by our shipment id."""

ORDER_CRITERIA: dict[str, Any] = {
    "associations": {
        "lineItems": {},
        "deliveries": {
            "associations": {
                "shippingOrderAddress": {"associations": {"country": {}}},
                "stateMachineState": {},
            }
        },
        "orderCustomer": {},
        "billingAddress": {"associations": {"country": {}}},
        "currency": {},
        "language": {"associations": {"locale": {}}},
        "transactions": {"associations": {"stateMachineState": {}}},
    }
}
"""Search criteria for an order with everything `decode_order` and the confirmer read."""

COMPLETE = ("lineItems", "deliveries", "orderCustomer", "currency")
"""Associations a webhook's order must carry to be read as it is; else it is fetched."""

TOKEN_MARGIN = 30.0
"""Seconds before `expires_in` at which a token is fetched anew (Shopware gives 600)."""


def connect(
    settings: ChannelSettings, secrets: Mapping[str, str], *, retry: RetryPolicy | None = None
) -> Connection:
    """The webhook source and the confirmer of one Shopware shop."""
    read = OptionReader(settings, secrets)
    keys = read.secrets(CREDENTIALS)
    read.done()
    admin = AdminApi(settings.base_url, keys["client_id"], keys["client_secret"], retry)
    return Connection(
        webhook=ShopwareWebhook(settings.name, keys["webhook_secret"], admin),
        confirmer=ShopwareConfirmer(admin),
    )


class AdminApi:
    """Admin API calls under a bearer token from the client-credentials grant."""

    def __init__(
        self, base_url: str, client_id: str, client_secret: str, retry: RetryPolicy | None
    ) -> None:
        self._http = HttpClient(
            base_url,
            headers={"Accept": "application/json", "Content-Type": "application/json"},
            retry=retry,
        )
        self._credentials = {
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": client_secret,
        }
        self._token = TokenCache(self._mint, TOKEN_MARGIN)

    def _mint(self) -> tuple[str, float]:
        """A bearer token from the client-credentials grant, and its lifetime in seconds."""
        response = self._http.post("/api/oauth/token", json=self._credentials)
        answer = api_object(response, "token answer")
        token, lifetime = answer.get("access_token"), answer.get("expires_in", 600)
        if not isinstance(token, str) or not token or not is_seconds(lifetime):
            raise PeerUnavailable(f"{response.request.url}: no access_token/expires_in")
        return token, float(lifetime)

    def call(self, method: str, path: str, body: Any = None) -> Any:
        """The JSON answer (None for 204) of one call; a 401 fetches a new token once."""
        return self._token.authorized(lambda token: self._send(method, path, body, token))

    def _send(self, method: str, path: str, body: Any, token: str) -> Any:
        headers = {"Authorization": f"Bearer {token}"}
        response = self._http.request(method, path, json=body, headers=headers)
        return api_json(response, f"{method} {path} answer")

    def order(self, order_id: str) -> dict[str, Any]:
        """The order with the associations the adapter reads (`POST /api/search/order`);
        PeerRefused 404 when the shop has no such order."""
        answer = self.call("POST", "/api/search/order", {"ids": [order_id], **ORDER_CRITERIA})
        found = answer.get("data") if isinstance(answer, dict) else None
        if not isinstance(found, list) or not found or not isinstance(found[0], dict):
            raise PeerRefused(404, f"/api/search/order ids={order_id}", "no such order")
        return dict(found[0])

    def country_iso(self, country_id: str) -> str:
        """The ISO 3166-1 alpha-2 code of a Shopware country id ("" when it has none)."""
        answer = self.call("GET", f"/api/country/{country_id}")
        data = answer.get("data", answer) if isinstance(answer, dict) else {}
        return str(data.get("iso") or "") if isinstance(data, dict) else ""


class ShopwareWebhook:
    """Verifies and reads the app system's webhooks."""

    def __init__(self, channel: str, secret: str, admin: AdminApi) -> None:
        self._channel = channel
        self._secret = secret.encode()
        self._admin = admin

    def verify(self, headers: Mapping[str, str], body: bytes) -> None:
        # Compared as bytes: a non-ASCII header (Starlette decodes headers as latin-1) is only a
        # wrong signature, where compare_digest would refuse non-ASCII str with a TypeError.
        given = headers.get(SIGNATURE_HEADER, "").strip().lower().encode("latin-1", "replace")
        expected = hmac.new(self._secret, body, hashlib.sha256).hexdigest().encode("ascii")
        if not given or not hmac.compare_digest(given, expected):
            raise BadSignature(self._channel, SIGNATURE_HEADER)

    def delivery_id(self, headers: Mapping[str, str], body: bytes) -> str:
        return headers.get("x-shopware-event-id") or json_field(body, "source", "eventId")

    def orders(self, headers: Mapping[str, str], body: bytes) -> list[ChannelOrder]:
        event = json_body(body)
        data = event.get("data") if isinstance(event, dict) else None
        if not isinstance(data, dict):
            raise InvalidInput.one("data", data, "expected the event object")
        if data.get("event") != ORDER_PLACED:
            return []
        payload = data.get("payload")
        order = payload.get("order") if isinstance(payload, dict) else None
        if not isinstance(order, dict):
            raise InvalidInput.one("data.payload.order", order, "expected the order entity")
        if isinstance(order.get("id"), str) and not all(k in order for k in COMPLETE):
            order = self._admin.order(order["id"])  # associations the app may not read
        try:
            return [decode_order(order, self._admin.country_iso)]
        except InvalidInput as bad:
            raise bad.under("data.payload.order.") from None


def decode_order(order: Mapping[str, Any], country_iso: Callable[[str], str]) -> ChannelOrder:
    """The order entity as a `ChannelOrder`; `country_iso` resolves a `countryId` when the
    address carries no `country` association. `InvalidInput` names every bad field."""
    problems = ProblemCollector()
    order_id = order.get("id")
    if not isinstance(order_id, str) or not order_id:
        problems.add("id", order_id, "expected the order's id")
    currency = dig(order, "currency", "isoCode")
    if not isinstance(currency, str) or len(currency) != 3:
        problems.add("currency.isoCode", currency, "expected an ISO 4217 code")
        currency = "EUR"
    lines = _lines(order.get("lineItems"), currency, problems)
    deliveries = order.get("deliveries")
    address = dig(order, "deliveries", 0, "shippingOrderAddress")
    if not isinstance(address, dict):
        problems.add("deliveries[0].shippingOrderAddress", deliveries, "expected a ship-to")
        address = {}
    ship_to = _address(address, "deliveries[0].shippingOrderAddress", country_iso, problems)
    customer = obj(order.get("orderCustomer"))
    billing = obj(order.get("billingAddress")) or next(
        (
            a
            for a in _list(order.get("addresses"))
            if obj(a).get("id") == order.get("billingAddressId")
        ),
        {},
    )
    vat_ids = _list(customer.get("vatIds"))
    company = str(billing.get("company") or customer.get("company") or "")
    tax_id = str(billing.get("vatId") or next((v for v in vat_ids if v), "") or "")
    transactions = _list(order.get("transactions"))
    locale = dig(order, "language", "locale", "code")
    problems.raise_if_any()
    return ChannelOrder(
        external_id=str(order_id),
        lines=tuple(lines),
        ship_to=ship_to,
        currency=currency.upper(),
        customer_id=str(customer.get("customerId") or ""),
        email=str(customer.get("email") or ""),
        customer_name=full_name(customer, "firstName", "lastName"),
        language=locale.split("-")[0].lower() if isinstance(locale, str) else "",
        company=company,
        tax_id=tax_id,
        b2b=bool(company and tax_id),
        paid=any(dig(t, "stateMachineState", "technicalName") == "paid" for t in transactions),
    )


def _lines(items: object, currency: str, problems: ProblemCollector) -> list[ChannelLine]:
    if not isinstance(items, list):
        problems.add("lineItems", items, "expected the order's line items")
        return []
    lines = []
    for i, item in enumerate(items):
        where = f"lineItems[{i}]"
        if not isinstance(item, dict):
            problems.add(where, item, "expected a line item")
            continue
        if item.get("type") != "product":
            continue
        sku = _line_sku(item)
        if not sku:
            problems.add(f"{where}.payload.productNumber", item.get("payload"), "no product number")
        quantity = item.get("quantity")
        if not is_whole(quantity):
            problems.add(f"{where}.quantity", quantity, "expected a whole number of at least 1")
        try:
            price = minor_units(item.get("unitPrice", ""), currency, f"{where}.unitPrice")
        except InvalidInput as bad:
            problems.extend(bad.problems)
            continue
        if sku and is_whole(quantity):
            lines.append(ChannelLine(sku, quantity, price, str(item.get("label") or "")))
    if not any(isinstance(i, dict) and i.get("type") == "product" for i in items):
        problems.add("lineItems", len(items), "no line of type product")
    return lines


def _line_sku(item: Mapping[str, Any]) -> str:
    """The line's sku: the product number, else the product id, else the referenced id."""
    for value in (dig(item, "payload", "productNumber"), item.get("productId")):
        if isinstance(value, str) and value:
            return value
    referenced = item.get("referencedId")
    return referenced if isinstance(referenced, str) else ""


def _address(
    address: Mapping[str, Any],
    where: str,
    country_iso: Callable[[str], str],
    problems: ProblemCollector,
) -> ChannelAddress:
    country = dig(address, "country", "iso")
    if not country and isinstance(address.get("countryId"), str) and address["countryId"]:
        country = country_iso(address["countryId"])
    iso = country_code(country, f"{where}.country.iso", problems)
    postal = postal_code(address.get("zipcode"), f"{where}.zipcode", problems)
    street = " ".join(
        str(part).strip()
        for part in (address.get("street"), address.get("additionalAddressLine1"))
        if part
    )
    return ChannelAddress(
        name=full_name(address, "firstName", "lastName"),
        street=street,
        postal_code=postal,
        city=str(address.get("city") or ""),
        country=iso,
        company=str(address.get("company") or ""),
    )


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


class ShopwareConfirmer:
    """Records a parcel on the order's delivery and moves the delivery's state."""

    def __init__(self, admin: AdminApi) -> None:
        self._admin = admin

    def confirm(self, parcel: ParcelShipped) -> None:
        order = self._admin.order(parcel.external_id)
        delivery = dig(order, "deliveries", 0)
        if not isinstance(delivery, dict):
            raise PeerRefused(409, f"order {parcel.external_id}", "the order has no delivery")
        codes = [str(c) for c in _list(delivery.get("trackingCodes"))]
        parcels = dict(obj(obj(delivery.get("customFields")).get(PARCELS_FIELD)))
        if parcel.shipment_id not in parcels or parcel.tracking_number not in codes:
            parcels[parcel.shipment_id] = {
                "carrier": parcel.carrier,
                "trackingNumber": parcel.tracking_number,
                "lines": {line.sku: line.quantity for line in parcel.lines},
            }
            if parcel.tracking_number not in codes:
                codes.append(parcel.tracking_number)
            self._admin.call(
                "PATCH",
                f"/api/order-delivery/{delivery['id']}",
                {"trackingCodes": codes, "customFields": {PARCELS_FIELD: parcels}},
            )
        transition = "ship" if _covers(order.get("lineItems"), parcels) else "ship_partially"
        self._move(parcel.external_id, str(delivery["id"]), _state(delivery), transition)

    def _move(self, order_id: str, delivery_id: str, state: str, transition: str) -> None:
        target = REACHES[transition]
        if state in (target, "shipped"):
            return
        try:
            self._admin.call(
                "POST", f"/api/_action/order_delivery/{delivery_id}/state/{transition}", {}
            )
        except PeerRefused:
            now = _state(dig(self._admin.order(order_id), "deliveries", 0))
            if now not in (target, "shipped"):
                raise


REACHES = {"ship": "shipped", "ship_partially": "shipped_partially"}
"""Delivery transition -> the state it reaches (Shopware's order_delivery state machine)."""


def _state(delivery: Any) -> str:
    return str(dig(delivery, "stateMachineState", "technicalName") or "")


def _covers(items: object, parcels: Mapping[str, Any]) -> bool:
    """Whether the recorded parcels hold every unit of the order's product lines."""
    ordered: dict[str, int] = {}
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict) and item.get("type") == "product":
            sku = _line_sku(item)
            ordered[sku] = ordered.get(sku, 0) + int(item.get("quantity") or 0)
    shipped: dict[str, int] = {}
    for record in parcels.values():
        for sku, quantity in (record.get("lines") or {}).items():
            shipped[sku] = shipped.get(sku, 0) + int(quantity)
    return bool(ordered) and all(shipped.get(s, 0) >= q for s, q in ordered.items())
