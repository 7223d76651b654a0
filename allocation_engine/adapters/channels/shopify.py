"""Shopify: orders pushed by the `orders/create` webhook, fulfillments with tracking sent back.

Follows the Admin REST API 2024-10 (`/admin/api/<api_version>/`, option `api_version`) and the
webhook delivery format Shopify documents for HTTPS subscriptions.

Inbound (`WebhookSource`): `POST /webhooks/<channel>` with the order as the body and the headers
`X-Shopify-Topic` (only `orders/create` places; any other topic is answered 200 and ignored),
`X-Shopify-Hmac-Sha256`: base64 of HMAC-SHA256 over the raw body keyed with the app's client
secret (credential `webhook_secret`), compared in constant time, and `X-Shopify-Webhook-Id`, the
delivery's id, which the intake keeps so a redelivery places nothing.

Mapping: `external_id` = the order's numeric `id` (the API's; `name` "#1001" is what the
customer sees). A line per `line_items` entry that `requires_shipping`: sku = `sku` (the
variant's; `variant_id` when empty), quantity, unit price = `price` less the line's
`discount_allocations` spread over its units, in minor units of `currency`. Ship-to =
`shipping_address` (`name`, `company`, `address1` + `address2`, `zip`, `city`, `country_code`,
and `latitude`/`longitude`, which Shopify geocodes itself). Customer: `customer.id` and
`email` (else `customer.email`), `customer.first_name` + `last_name`, language from
`customer_locale`. `b2b` when the order has a `company` (Shopify's B2B orders carry the
purchasing company); the REST order carries no VAT id, so `tax_id` stays empty. `paid` when
`financial_status` is `paid`. Not mapped: shipping lines and their price, gift cards, tips,
duties, local pickup (Shopify names no store node in the order; use a POS channel).

Outbound (`ShipmentConfirmer`): `GET orders/<id>.json` (line ids by sku), `GET
orders/<id>/fulfillments.json` (a fulfillment already carrying our tracking number means the
parcel was confirmed: nothing is sent), `GET orders/<id>/fulfillment_orders.json`, then `POST
fulfillments.json` with `line_items_by_fulfillment_order` (each open fulfillment order's line
items for our lines, up to what is still fulfillable), `tracking_info` {`number`, `company`}
and `notify_customer` (option, default false: our own e-mail tells the customer). Every call
carries `X-Shopify-Access-Token` (credential `access_token`). Shopify does not deduplicate the
POST, so it is sent once, never retried by the HTTP client (a 503 after the shop made the
fulfillment would make a second one): an unanswered POST raises PeerUnavailable, and the
tracking-number check of the outbox's next attempt finds it. A sku on several line items is
spread over all of them, up to each one's fulfillable quantity.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
from collections.abc import Mapping
from typing import Any

from allocation_engine.adapters.channels import Connection
from allocation_engine.adapters.channels.money import minor_units, unit_price
from allocation_engine.adapters.channels.payload import (
    api_list,
    api_object,
    is_whole,
    json_body,
    obj,
)
from allocation_engine.adapters.http_client import HttpClient, RetryPolicy
from allocation_engine.errors import BadSignature, InvalidInput, PeerRefused, ProblemCollector
from allocation_engine.ports.channels import (
    ChannelAddress,
    ChannelLine,
    ChannelOrder,
    ChannelSettings,
    ParcelShipped,
)

CREDENTIALS = ("webhook_secret", "access_token")
OPTIONS = {"api_version": False, "notify_customer": False}
API_VERSION = "2024-10"
SIGNATURE = "x-shopify-hmac-sha256"
ORDER_TOPICS = frozenset({"orders/create"})


def sign(body: bytes, secret: str) -> str:
    """Shopify's webhook signature of `body`: base64 HMAC-SHA256 keyed with the secret."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def read_order(data: Mapping[str, Any]) -> ChannelOrder:
    """An `orders/create` payload (a REST order) as a ChannelOrder; `InvalidInput` naming
    every field that cannot be read."""
    problems = ProblemCollector()
    currency = data.get("currency")
    if not isinstance(currency, str) or len(currency) != 3:
        problems.add("currency", data.get("currency"), "an ISO 4217 code")
        currency = "EUR"  # only to read the rest; the order is refused above
    order_id = data.get("id")
    if not is_whole(order_id):
        problems.add("id", order_id, "the order's numeric id")
    lines = []
    items = data.get("line_items")
    if items is not None and not isinstance(items, list):
        problems.add("line_items", items, "must be a list")
        items = []
    for i, item in enumerate(items or []):
        if not isinstance(item, dict):
            problems.add(f"line_items[{i}]", item, "must be an object")
            continue
        if item.get("requires_shipping") is False:
            continue
        line = _line(item, currency, f"line_items[{i}]", problems)
        if line is not None:
            lines.append(line)
    address = data.get("shipping_address")
    if not isinstance(address, dict):
        problems.add("shipping_address", address, "the order ships nowhere")
        address = {}
    customer = obj(data.get("customer"))
    problems.raise_if_any()
    name = " ".join(str(customer.get(k) or "") for k in ("first_name", "last_name")).strip()
    return ChannelOrder(
        external_id=str(order_id),
        lines=tuple(lines),
        ship_to=ChannelAddress(
            name=str(address.get("name") or ""),
            street=" ".join(str(address.get(k) or "") for k in ("address1", "address2")).strip(),
            postal_code=str(address.get("zip") or ""),
            city=str(address.get("city") or ""),
            country=str(address.get("country_code") or ""),
            company=str(address.get("company") or ""),
            latitude=_coordinate(address.get("latitude"), 90),
            longitude=_coordinate(address.get("longitude"), 180),
        ),
        currency=currency.upper(),
        customer_id=str(customer.get("id") or ""),
        email=str(data.get("email") or customer.get("email") or ""),
        customer_name=name,
        language=str(data.get("customer_locale") or "")[:2].lower(),
        company=str(address.get("company") or ""),
        b2b=bool(data.get("company")),
        paid=data.get("financial_status") == "paid",
    )


def line_sku(item: Mapping[str, Any]) -> str:
    """The platform sku of a line item: its `sku`, else its `variant_id` ("" when neither)."""
    for key in ("sku", "variant_id"):
        value = item.get(key)
        if isinstance(value, str | int) and not isinstance(value, bool) and str(value).strip():
            return str(value).strip()
    return ""


def _line(
    item: Mapping[str, Any], currency: str, where: str, problems: ProblemCollector
) -> ChannelLine | None:
    quantity = item.get("quantity")
    if not is_whole(quantity):
        problems.add(f"{where}.quantity", quantity, "a whole number of units >= 1")
        return None
    sku = line_sku(item)
    if not sku:
        problems.add(f"{where}.sku", item.get("sku"), "no sku and no variant_id")
        return None
    allocations = item.get("discount_allocations")
    if allocations is not None and not isinstance(allocations, list):
        problems.add(f"{where}.discount_allocations", allocations, "must be a list")
        return None
    try:
        price = minor_units(item.get("price", ""), currency, f"{where}.price")
        discount = sum(
            minor_units(d.get("amount", ""), currency, f"{where}.discount_allocations")
            for d in allocations or []
            if isinstance(d, dict)
        )
    except InvalidInput as bad:
        problems.extend(bad.problems)
        return None
    unit = max(0, unit_price(price * quantity - discount, quantity))
    return ChannelLine(sku, quantity, unit, str(item.get("title") or ""))


def _coordinate(value: object, bound: float) -> float | None:
    """A latitude (`bound` 90) or longitude (180) Shopify geocoded; None for anything else."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            number = float(value)
        except OverflowError:
            return None
        return number if math.isfinite(number) and abs(number) <= bound else None
    return None


class ShopifyWebhooks:
    def __init__(self, channel: str, secret: str) -> None:
        self._channel, self._secret = channel, secret

    def verify(self, headers: Mapping[str, str], body: bytes) -> None:
        # Starlette decodes header bytes as latin-1: compared as bytes, a non-ASCII header is
        # only a wrong signature (compare_digest refuses non-ASCII str with a TypeError).
        given = headers.get(SIGNATURE, "").encode("latin-1", "replace")
        expected = sign(body, self._secret).encode("ascii")
        if not given or not hmac.compare_digest(given, expected):
            raise BadSignature(self._channel, "X-Shopify-Hmac-Sha256")

    def delivery_id(self, headers: Mapping[str, str], body: bytes) -> str:
        return headers.get("x-shopify-webhook-id", "")

    def orders(self, headers: Mapping[str, str], body: bytes) -> list[ChannelOrder]:
        if headers.get("x-shopify-topic", "") not in ORDER_TOPICS:
            return []
        data = json_body(body)
        if not isinstance(data, dict):
            raise InvalidInput.one("body", data, "must be an order object")
        return [read_order(data)]


class ShopifyFulfillments:
    """Creates one fulfillment per parcel, with its tracking number."""

    def __init__(
        self,
        http: HttpClient,
        api_version: str,
        notify_customer: bool,
        once: HttpClient | None = None,
    ) -> None:
        """`once`: the client the fulfillment POST goes through, never retried (Shopify does
        not deduplicate it); `http` when not given."""
        self._http = http
        self._once = once or http
        self._base = f"/admin/api/{api_version}"
        self._notify = notify_customer

    def _get(self, path: str, key: str) -> Any:
        """`key` of the JSON object a GET answers; `PeerUnavailable` naming it when the shop
        answers something else."""
        return api_object(self._http.get(f"{self._base}/{path}"), key).get(key)

    def confirm(self, parcel: ParcelShipped) -> None:
        order = obj(self._get(f"orders/{parcel.external_id}.json", "order"))
        where = self._http.base_url
        done = self._get(f"orders/{parcel.external_id}/fulfillments.json", "fulfillments")
        for fulfillment in api_list(done, where, "fulfillments"):
            numbers = obj(fulfillment).get("tracking_numbers")
            if isinstance(numbers, list) and parcel.tracking_number in numbers:
                return  # confirmed before (an answer lost on the way back)
        sku_of: dict[Any, str] = {}  # order line item id -> its platform sku
        for item in api_list(order.get("line_items"), where, "order.line_items"):
            item_id = obj(item).get("id")
            if is_whole(item_id):
                sku_of[item_id] = line_sku(obj(item))
        wanted: dict[str, int] = {}
        for x in parcel.lines:
            if x.sku in sku_of.values():
                wanted[x.sku] = wanted.get(x.sku, 0) + x.quantity
        if not wanted:
            raise PeerRefused(404, where, f"no lines of {parcel.lines} in the order")
        listing = self._get(
            f"orders/{parcel.external_id}/fulfillment_orders.json", "fulfillment_orders"
        )
        by_order = []
        for fo in (obj(x) for x in api_list(listing, where, "fulfillment_orders")):
            if fo.get("status") not in ("open", "in_progress"):
                continue
            items = []
            for li in (obj(x) for x in api_list(fo.get("line_items"), where, "line_items")):
                sku = sku_of.get(li.get("line_item_id")) if is_whole(li.get("line_item_id")) else ""
                room = li.get("fulfillable_quantity")
                if not sku or not is_whole(room) or not is_whole(li.get("id")):
                    continue
                take = min(wanted.get(sku, 0), room)  # a sku on several line items fills each
                if take > 0:
                    items.append({"id": li["id"], "quantity": take})
                    wanted[sku] -= take
            if items and is_whole(fo.get("id")):
                by_order.append(
                    {"fulfillment_order_id": fo["id"], "fulfillment_order_line_items": items}
                )
        if not by_order:
            raise PeerRefused(422, where, "nothing of the parcel is fulfillable")
        # Not retried: a POST the shop made but answered 503 for would make a second
        # fulfillment; the outbox tries again, and the tracking-number check runs first.
        self._once.post(
            f"{self._base}/fulfillments.json",
            json={
                "fulfillment": {
                    "line_items_by_fulfillment_order": by_order,
                    "tracking_info": {
                        "number": parcel.tracking_number,
                        "company": parcel.carrier,
                    },
                    "notify_customer": self._notify,
                }
            },
        )


def connect(
    settings: ChannelSettings, secrets: Mapping[str, str], *, retry: RetryPolicy | None = None
) -> Connection:
    headers = {"X-Shopify-Access-Token": secrets["access_token"]}
    http = HttpClient(settings.base_url, headers=headers, retry=retry)
    once = HttpClient(settings.base_url, headers=headers, retry=RetryPolicy(attempts=1))
    options = settings.options
    return Connection(
        webhook=ShopifyWebhooks(settings.name, secrets["webhook_secret"]),
        confirmer=ShopifyFulfillments(
            http,
            str(options.get("api_version", API_VERSION)),
            bool(options.get("notify_customer", False)),
            once,
        ),
    )
