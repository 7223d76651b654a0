"""BigCommerce: orders pushed by the `store/order/created` webhook and read back through the V2
Orders API, parcels confirmed as order shipments.

Follows the BigCommerce REST Management API V2 Orders (`https://api.bigcommerce.com/stores/
{store_hash}/v2`, header `X-Auth-Token`: the API account's or app's access token, credential
`access_token`; option `store_hash`, required) and the HTTPS webhooks of the V3 hooks API.

Inbound (`WebhookSource`): the hook POSTs a thin payload `{"scope", "store_id", "data": {"type":
"order", "id"}, "hash", "created_at", "producer": "stores/<store_hash>"}`. Two checks, both
required: the custom header the hook was created with (`headers` of `POST /v3/hooks`; its name
is the `webhook_header` option, default `X-Webhook-Secret`, its value the credential
`webhook_secret`), and the Standard Webhooks signature BigCommerce documents: `webhook-signature`
holds space-separated `v1,<base64 HMAC-SHA256>` of `<webhook-id>.<webhook-timestamp>.<raw body>`
keyed with the client secret (credential `client_secret`); `webhook-timestamp` more than 5
minutes from our clock is refused too. The delivery id is `webhook-id`, else the payload's
`hash` (the same on a repeat). `store/order/created` is read unless the order is still
Incomplete (status 0: BigCommerce fires the hook for abandoned payments too); such an order is
read when `store/order/statusUpdated` reports it leaving status 0. Other scopes bring nothing;
an order that is Cancelled (5) or Declined (6) by the time it is read is passed over. The
order is read with `GET /orders/{id}`, `GET /orders/{id}/products` and `GET
/orders/{id}/shipping_addresses` (pages of 250).

Mapping: `external_id` = the order `id`. A line per order product of `type` "physical"
(digital products and gift certificates do not ship): sku = `sku` (else `variant_id`, else
`product_id`), quantity = `quantity`, unit price = (`total_inc_tax` less the
`applied_discounts` whose `target` is "product") / quantity, rounded half up, in minor units of
`default_currency_code` (the currency the shopper paid in), name = `name`. Ship-to = the first
shipping address (`first_name` + `last_name`, `company`, `street_1` + `street_2`, `zip`,
`city`, `country_iso2`; BigCommerce has no coordinates; an order to several addresses keeps
the first). Customer: `customer_id` (0, a guest, gives ""), `billing_address.email`,
`customer_locale`. `b2b` when the billing address has a `company`: V2 orders have no VAT id
field, and customer groups carry no documented B2B flag, so the tax id is read only from the
billing address's custom `form_fields` entry named by the `vat_field` option. `paid` when
`payment_status` is "captured" or "paid".

Outbound (`ShipmentConfirmer`): `GET /orders/{id}/shipments` first: a shipment for the address
holding our tracking number, or our shipment id in its `comments`, means the parcel was
confirmed there and nothing is sent. Otherwise
the lines are matched by sku to order products with units left (`quantity` -
`quantity_shipped`), and one `POST /orders/{id}/shipments` per shipping address goes out with
`order_address_id`, `tracking_number`, `tracking_carrier` (the AfterShip slug of our carrier:
DHL -> `dhl-germany`, DPD -> `dpd-de`, Hermes -> `hermes-de`, GLS, UPS, FedEx, ...; else ""),
`shipping_provider` "" (none of BigCommerce's integrated providers), `shipping_method` = our
carrier name, a `comments` naming our shipment id, and `items` [{`order_product_id`,
`quantity`}]. BigCommerce does not deduplicate that POST, so it is sent once, never retried
by the client: an unanswered POST raises PeerUnavailable and the next confirm finds the
shipment if it was made. Rate limits: a 429 carries `X-Rate-Limit-Time-Reset-Ms` rather than
`Retry-After`; it is read as the wait before the client's retry.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Mapping
from typing import Any

import httpx

from allocation_engine.adapters.channels import Connection
from allocation_engine.adapters.channels.money import minor_units, unit_price
from allocation_engine.adapters.channels.options import OptionReader
from allocation_engine.adapters.channels.payload import (
    api_json,
    country_code,
    full_name,
    is_whole,
    json_body,
    json_field,
    obj,
    postal_code,
)
from allocation_engine.adapters.http_client import HttpClient, RetryPolicy, retry_after
from allocation_engine.errors import BadSignature, InvalidInput, ProblemCollector
from allocation_engine.ports.channels import (
    ChannelAddress,
    ChannelLine,
    ChannelOrder,
    ChannelSettings,
    ParcelShipped,
)

CREDENTIALS: tuple[str, ...] = ("access_token", "client_secret", "webhook_secret")
OPTIONS: dict[str, bool] = {"store_hash": True, "webhook_header": False, "vat_field": False}

API = "https://api.bigcommerce.com"
DEFAULT_WEBHOOK_HEADER = "X-Webhook-Secret"
SIGNATURE_HEADER = "webhook-signature"
TIMESTAMP_TOLERANCE = 300.0
"""Seconds a `webhook-timestamp` may be off our clock (the Standard Webhooks default)."""

PAGE = 250
INCOMPLETE, CANCELLED, DECLINED = 0, 5, 6
PAID_STATUSES = frozenset({"captured", "paid"})
TRACKING_CARRIERS = {
    "dhl": "dhl-germany",
    "dhl paket": "dhl-germany",
    "dhl express": "dhl",
    "deutsche post": "deutsch-post",
    "dpd": "dpd-de",
    "hermes": "hermes-de",
    "gls": "gls",
    "ups": "ups",
    "fedex": "fedex",
    "usps": "usps",
}
"""Our carrier name (lower-case) -> BigCommerce's `tracking_carrier` (AfterShip slugs)."""


def connect(
    settings: ChannelSettings, secrets: Mapping[str, str], *, retry: RetryPolicy | None = None
) -> Connection:
    """The webhook source and the confirmer of one BigCommerce store."""
    read = OptionReader(settings, secrets)
    keys = read.secrets(CREDENTIALS)
    store_hash = read.text("store_hash", required=True)
    read.done()
    api = StoreApi(settings.base_url or API, store_hash, keys, retry)
    source = BigCommerceWebhook(
        settings.name,
        api,
        header=read.text("webhook_header", DEFAULT_WEBHOOK_HEADER),
        header_secret=keys["webhook_secret"],
        client_secret=keys["client_secret"],
        vat_field=read.text("vat_field"),
    )
    return Connection(webhook=source, confirmer=BigCommerceConfirmer(api))


def quota_wait(response: httpx.Response) -> float | None:
    """BigCommerce's 429 names the wait in `X-Rate-Limit-Time-Reset-Ms` rather than
    `Retry-After` (which wins when both are sent)."""
    asked = retry_after(response)
    if asked is not None:
        return asked
    reset = response.headers.get("x-rate-limit-time-reset-ms", "")
    return int(reset) / 1000 if reset.isdigit() else None


class StoreApi:
    """The V2 Orders API of one store."""

    def __init__(
        self,
        base_url: str,
        store_hash: str,
        secrets: Mapping[str, str],
        retry: RetryPolicy | None,
    ) -> None:
        headers = {
            "X-Auth-Token": secrets["access_token"],
            "Accept": "application/json",
            "Content-Type": "application/json",
        }
        self.store_hash = store_hash
        self.prefix = f"/stores/{store_hash}/v2"
        self._http = HttpClient(base_url, headers=headers, retry=retry, wait_of=quota_wait)
        self._once = HttpClient(base_url, headers=headers, retry=RetryPolicy(attempts=1))

    def get(self, path: str, **params: Any) -> Any:
        """The JSON answer, None for BigCommerce's 204 "no such items"."""
        response = self._http.get(self.prefix + path, params=params or None)
        return api_json(response, path) if response.status_code != 204 else None

    def pages(self, path: str) -> list[Any]:
        """Every item of a V2 list, page after page."""
        items: list[Any] = []
        page = 1
        while True:
            got = self.get(path, page=page, limit=PAGE)
            chunk = got if isinstance(got, list) else []
            items.extend(chunk)
            if len(chunk) < PAGE:
                return items
            page += 1

    def post_once(self, path: str, body: Any) -> Any:
        """A POST the platform does not deduplicate: sent once, never retried."""
        return api_json(self._once.post(self.prefix + path, json=body), path)


class BigCommerceWebhook:
    """Verifies the hook's custom header and signature, then reads the order it names."""

    def __init__(
        self,
        channel: str,
        api: StoreApi,
        *,
        header: str,
        header_secret: str,
        client_secret: str,
        vat_field: str,
    ) -> None:
        self._channel = channel
        self._api = api
        self._header = header
        self._header_secret = header_secret.encode()
        self._key = client_secret.encode()
        self._vat_field = vat_field

    def verify(self, headers: Mapping[str, str], body: bytes) -> None:
        # Bytes as Starlette decoded them (latin-1): a non-ASCII header is only a wrong one.
        given = headers.get(self._header.lower(), "").encode("latin-1", "replace")
        if not given or not hmac.compare_digest(given, self._header_secret):
            raise BadSignature(self._channel, self._header)
        webhook_id = headers.get("webhook-id", "")
        stamp = headers.get("webhook-timestamp", "")
        try:
            fresh = abs(time.time() - int(stamp)) <= TIMESTAMP_TOLERANCE
        except (ValueError, OverflowError):
            fresh = False
        if not webhook_id or not fresh:
            raise BadSignature(self._channel, SIGNATURE_HEADER)
        signed = f"{webhook_id}.{stamp}.".encode("latin-1", "replace") + body
        expected = base64.b64encode(hmac.new(self._key, signed, hashlib.sha256).digest())
        offered = [
            part.partition(",")[2].encode("latin-1", "replace")
            for part in headers.get(SIGNATURE_HEADER, "").split()
            if part.startswith("v1,")
        ]
        if not any(hmac.compare_digest(expected, signature) for signature in offered):
            raise BadSignature(self._channel, SIGNATURE_HEADER)

    def delivery_id(self, headers: Mapping[str, str], body: bytes) -> str:
        return headers.get("webhook-id") or json_field(body, "hash")

    def orders(self, headers: Mapping[str, str], body: bytes) -> list[ChannelOrder]:
        payload = json_body(body)
        if not isinstance(payload, dict):
            raise InvalidInput.one("body", payload, "expected the webhook object")
        scope = payload.get("scope")
        data = obj(payload.get("data"))
        status = obj(data.get("status"))
        created = scope == "store/order/created"
        completed = scope == "store/order/statusUpdated" and (
            status.get("previous_status_id") == INCOMPLETE
        )
        if not (created or completed):
            return []
        if payload.get("producer") != f"stores/{self._api.store_hash}":
            raise InvalidInput.one(
                "producer", payload.get("producer"), f"not stores/{self._api.store_hash}"
            )
        order_id = data.get("id")
        if not is_whole(order_id):
            raise InvalidInput.one("data.id", order_id, "expected the order id")
        order = self._api.get(f"/orders/{order_id}")
        if not isinstance(order, dict):
            raise InvalidInput.one(f"orders/{order_id}", order, "expected the order")
        if order.get("status_id") in (INCOMPLETE, CANCELLED, DECLINED):
            return []
        products = self._api.pages(f"/orders/{order_id}/products")
        addresses = self._api.pages(f"/orders/{order_id}/shipping_addresses")
        return [decode_order(order, products, addresses, vat_field=self._vat_field)]


def decode_order(
    order: Mapping[str, Any],
    products: list[Any],
    addresses: list[Any],
    *,
    vat_field: str = "",
) -> ChannelOrder:
    """The three V2 answers as a `ChannelOrder`; `InvalidInput` names every bad field by the
    answer it is in (`order.`, `products[i].`, `shipping_addresses[0].`)."""
    problems = ProblemCollector()
    order_id = order.get("id")
    if isinstance(order_id, bool) or not isinstance(order_id, int):
        problems.add("order.id", order_id, "expected the order id")
    currency = order.get("default_currency_code") or order.get("currency_code")
    if not isinstance(currency, str) or len(currency) != 3:
        problems.add("order.default_currency_code", currency, "expected an ISO 4217 code")
        currency = "USD"
    lines = []
    for i, product in enumerate(products):
        line = _line(product, f"products[{i}]", currency, problems)
        if line is not None:
            lines.append(line)
    if not lines and not any(_physical(p) for p in products):
        problems.add("products", len(products), "no physical product to ship")
    address = addresses[0] if addresses and isinstance(addresses[0], dict) else None
    if address is None:
        problems.add("shipping_addresses", addresses, "expected a shipping address")
        address = {}
    ship_to = _address(address, problems)
    billing = obj(order.get("billing_address"))
    company = str(billing.get("company") or "").strip()
    customer = order.get("customer_id")
    problems.raise_if_any()
    return ChannelOrder(
        external_id=str(order_id),
        lines=tuple(lines),
        ship_to=ship_to,
        currency=currency.upper(),
        customer_id=str(customer) if isinstance(customer, int) and customer > 0 else "",
        email=str(billing.get("email") or address.get("email") or ""),
        customer_name=full_name(billing, "first_name", "last_name"),
        language=str(order.get("customer_locale") or ""),
        company=company,
        tax_id=_form_field(billing, vat_field),
        b2b=bool(company),
        paid=str(order.get("payment_status") or "").lower() in PAID_STATUSES,
    )


def _physical(product: Any) -> bool:
    return isinstance(product, dict) and product.get("type") == "physical"


def product_sku(product: Mapping[str, Any]) -> str:
    """An order product's sku: `sku`, else the variant id, else the product id."""
    for key in ("sku", "variant_id", "product_id"):
        value = product.get(key)
        if value not in (None, "", 0):
            return str(value)
    return ""


def _line(
    product: Any, where: str, currency: str, problems: ProblemCollector
) -> ChannelLine | None:
    if not isinstance(product, dict):
        problems.add(where, product, "expected an order product")
        return None
    if not _physical(product):
        return None
    sku = product_sku(product)
    if not sku:
        problems.add(f"{where}.sku", product.get("sku"), "no sku, variant id or product id")
    quantity = product.get("quantity")
    if not is_whole(quantity):
        problems.add(f"{where}.quantity", quantity, "expected a whole number of at least 1")
        return None
    try:
        total = minor_units(product.get("total_inc_tax", ""), currency, f"{where}.total_inc_tax")
        discounts = product.get("applied_discounts") or []
        for j, discount in enumerate(discounts if isinstance(discounts, list) else []):
            if isinstance(discount, dict) and discount.get("target") == "product":
                field = f"{where}.applied_discounts[{j}].amount"
                total -= minor_units(discount.get("amount", ""), currency, field)
    except InvalidInput as bad:
        problems.extend(bad.problems)
        return None
    unit = max(0, unit_price(total, quantity))
    return ChannelLine(sku, quantity, unit, str(product.get("name") or "")) if sku else None


def _address(address: Mapping[str, Any], problems: ProblemCollector) -> ChannelAddress:
    where = "shipping_addresses[0]"
    country = country_code(address.get("country_iso2"), f"{where}.country_iso2", problems)
    postal = postal_code(address.get("zip"), f"{where}.zip", problems)
    street = ", ".join(
        str(address.get(k)).strip() for k in ("street_1", "street_2") if address.get(k)
    )
    return ChannelAddress(
        name=full_name(address, "first_name", "last_name"),
        street=street,
        postal_code=postal,
        city=str(address.get("city") or ""),
        country=country,
        company=str(address.get("company") or ""),
    )


def _form_field(address: Mapping[str, Any], name: str) -> str:
    """The value of the address's custom form field `name` ("" when absent or unnamed)."""
    fields = address.get("form_fields")
    for field in fields if name and isinstance(fields, list) else []:
        if isinstance(field, dict) and field.get("name") == name:
            return str(field.get("value") or "").strip()
    return ""


class BigCommerceConfirmer:
    """Creates the order shipments of a parcel, one per shipping address it covers."""

    def __init__(self, api: StoreApi) -> None:
        self._api = api

    def confirm(self, parcel: ParcelShipped) -> None:
        order = f"/orders/{parcel.external_id}"
        mark = f"allocation engine shipment {parcel.shipment_id}"
        ours = [
            s
            for s in self._api.pages(f"{order}/shipments")
            if isinstance(s, dict)
            and (s.get("tracking_number") == parcel.tracking_number or s.get("comments") == mark)
        ]
        products = [p for p in self._api.pages(f"{order}/products") if isinstance(p, dict)]
        carrier = parcel.carrier.strip()
        done = {s.get("order_address_id") for s in ours}
        for address_id, items in _items(parcel, products, ours).items():
            if address_id in done:
                continue
            self._api.post_once(
                f"{order}/shipments",
                {
                    "order_address_id": address_id,
                    "tracking_number": parcel.tracking_number,
                    "tracking_carrier": TRACKING_CARRIERS.get(carrier.lower(), ""),
                    "shipping_provider": "",
                    "shipping_method": carrier,
                    "comments": mark,
                    "items": items,
                },
            )


def _items(
    parcel: ParcelShipped, products: list[dict[str, Any]], ours: list[dict[str, Any]]
) -> dict[int, list[Any]]:
    """The parcel's lines as shipment items by shipping address: each line's units go to the
    order products of its sku that still have units to ship, in the order's own order. Units
    in `ours` (shipments already made for this parcel) count as still to ship, so a parcel
    whose first address was confirmed before a crash is split the same way again."""
    left = {
        p["id"]: int(p.get("quantity") or 0) - int(p.get("quantity_shipped") or 0) for p in products
    }
    for shipment in ours:
        for item in shipment.get("items") or []:
            if item.get("order_product_id") in left:
                left[item["order_product_id"]] += int(item.get("quantity") or 0)
    groups: dict[int, list[Any]] = {}
    problems = ProblemCollector()
    for i, line in enumerate(parcel.lines):
        wanted = line.quantity
        for product in (p for p in products if product_sku(p) == line.sku):
            take = min(wanted, left[product["id"]])
            if take > 0:
                groups.setdefault(int(product["order_address_id"]), []).append(
                    {"order_product_id": product["id"], "quantity": take}
                )
                left[product["id"]] -= take
                wanted -= take
        if wanted:
            problems.add(
                f"lines[{i}].quantity",
                line.quantity,
                f"{line.sku}: {wanted} more than BigCommerce order {parcel.external_id} has "
                "left to ship",
            )
    problems.raise_if_any()
    return groups
