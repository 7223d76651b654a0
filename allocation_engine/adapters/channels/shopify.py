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
POST, so a lost answer is found by the tracking-number check on the next attempt.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from allocation_engine.adapters.channels import Connection
from allocation_engine.adapters.channels.money import minor_units
from allocation_engine.adapters.channels.payload import is_whole, obj
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
    currency = str(data.get("currency") or "")
    if len(currency) != 3:
        problems.add("currency", data.get("currency"), "an ISO 4217 code")
    order_id = data.get("id")
    if not is_whole(order_id):
        problems.add("id", order_id, "the order's numeric id")
    lines = []
    for i, item in enumerate(data.get("line_items") or []):
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
            latitude=_coordinate(address.get("latitude")),
            longitude=_coordinate(address.get("longitude")),
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


def _line(
    item: Mapping[str, Any], currency: str, where: str, problems: ProblemCollector
) -> ChannelLine | None:
    quantity = item.get("quantity")
    if not is_whole(quantity):
        problems.add(f"{where}.quantity", quantity, "a whole number of units >= 1")
        return None
    sku = str(item.get("sku") or item.get("variant_id") or "")
    if not sku:
        problems.add(f"{where}.sku", item.get("sku"), "no sku and no variant_id")
        return None
    try:
        price = Decimal(minor_units(item.get("price", ""), currency, f"{where}.price"))
        discount = sum(
            (
                Decimal(minor_units(d.get("amount", ""), currency, f"{where}.discount_allocations"))
                for d in item.get("discount_allocations") or []
                if isinstance(d, dict)
            ),
            Decimal(0),
        )
    except InvalidInput as bad:
        problems.extend(bad.problems)
        return None
    unit = max(0, int((price - discount / quantity).to_integral_value()))
    return ChannelLine(sku, quantity, unit, str(item.get("title") or ""))


def _coordinate(value: object) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


class ShopifyWebhooks:
    def __init__(self, channel: str, secret: str) -> None:
        self._channel, self._secret = channel, secret

    def verify(self, headers: Mapping[str, str], body: bytes) -> None:
        given = headers.get(SIGNATURE, "")
        if not given or not hmac.compare_digest(given, sign(body, self._secret)):
            raise BadSignature(self._channel, "X-Shopify-Hmac-Sha256")

    def delivery_id(self, headers: Mapping[str, str], body: bytes) -> str:
        return headers.get("x-shopify-webhook-id", "")

    def orders(self, headers: Mapping[str, str], body: bytes) -> list[ChannelOrder]:
        if headers.get("x-shopify-topic", "") not in ORDER_TOPICS:
            return []
        try:
            data = json.loads(body)
        except ValueError:
            raise InvalidInput.one("body", body[:40], "is not JSON") from None
        if not isinstance(data, dict):
            raise InvalidInput.one("body", data, "must be an order object")
        return [read_order(data)]


class ShopifyFulfillments:
    """Creates one fulfillment per parcel, with its tracking number."""

    def __init__(self, http: HttpClient, api_version: str, notify_customer: bool) -> None:
        self._http = http
        self._base = f"/admin/api/{api_version}"
        self._notify = notify_customer

    def confirm(self, parcel: ParcelShipped) -> None:
        order = self._http.get(f"{self._base}/orders/{parcel.external_id}.json").json()["order"]
        done = self._http.get(f"{self._base}/orders/{parcel.external_id}/fulfillments.json")
        for fulfillment in done.json().get("fulfillments", []):
            if parcel.tracking_number in (fulfillment.get("tracking_numbers") or []):
                return  # confirmed before (an answer lost on the way back)
        item_of: dict[str, int] = {}
        for item in order.get("line_items", []):
            item_of.setdefault(str(item.get("sku") or item.get("variant_id")), item["id"])
        wanted = {item_of[x.sku]: x.quantity for x in parcel.lines if x.sku in item_of}
        if not wanted:
            raise PeerRefused(404, self._http.base_url, f"no lines of {parcel.lines} in the order")
        listing = self._http.get(
            f"{self._base}/orders/{parcel.external_id}/fulfillment_orders.json"
        )
        by_order = []
        for fo in listing.json().get("fulfillment_orders", []):
            if fo.get("status") not in ("open", "in_progress"):
                continue
            items = []
            for li in fo.get("line_items", []):
                take = min(wanted.get(li["line_item_id"], 0), li.get("fulfillable_quantity", 0))
                if take > 0:
                    items.append({"id": li["id"], "quantity": take})
                    wanted[li["line_item_id"]] -= take
            if items:
                by_order.append(
                    {"fulfillment_order_id": fo["id"], "fulfillment_order_line_items": items}
                )
        if not by_order:
            raise PeerRefused(422, self._http.base_url, "nothing of the parcel is fulfillable")
        self._http.post(
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
    http = HttpClient(
        settings.base_url,
        headers={"X-Shopify-Access-Token": secrets["access_token"]},
        retry=retry,
    )
    options = settings.options
    return Connection(
        webhook=ShopifyWebhooks(settings.name, secrets["webhook_secret"]),
        confirmer=ShopifyFulfillments(
            http,
            str(options.get("api_version", API_VERSION)),
            bool(options.get("notify_customer", False)),
        ),
    )
