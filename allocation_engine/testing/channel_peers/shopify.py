"""A local peer that plays one Shopify shop: signs `orders/create` webhooks the way Shopify does
and serves the Admin REST routes the adapter calls (order, fulfillment orders, fulfillments),
checking the `X-Shopify-Access-Token` on each. A fulfillment it accepts moves the fulfillment
order's quantities, as Shopify does, so a second fulfillment for the same items is refused 422.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import itertools
import json
import secrets
import threading
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx

from allocation_engine.testing.http_peer import Answer, HttpPeer, PeerRequest

API_VERSION = "2024-10"
BASE = f"/admin/api/{API_VERSION}"
SKUS = {
    "MUG-WHT-350": "SKU-0001",
    "TPOT-STONE-1L": "SKU-0002",
    "44109917487219": "SKU-0003",  # a variant without a sku: mapped by its variant id
}


class ShopifyPeer(HttpPeer):
    kind = "shopify"

    def __init__(
        self,
        sample: dict[str, Any],
        *,
        client_secret: str | None = None,
        access_token: str | None = None,
    ) -> None:
        super().__init__()
        self.sample = sample
        self.client_secret = client_secret or secrets.token_hex(16)
        self.access_token = access_token or "shpat_" + secrets.token_hex(16)
        self.orders: dict[str, dict[str, Any]] = {}
        self.fulfillment_orders: dict[str, list[dict[str, Any]]] = {}
        self.fulfillments: dict[str, list[dict[str, Any]]] = {}
        self._ids = itertools.count(9_100_000_000)
        self._state = threading.Lock()
        self.route("GET", f"{BASE}/orders/{{id}}.json", self._order)
        self.route("GET", f"{BASE}/orders/{{id}}/fulfillment_orders.json", self._fo)
        self.route("GET", f"{BASE}/orders/{{id}}/fulfillments.json", self._fulfillments)
        self.route("POST", f"{BASE}/fulfillments.json", self._fulfill)

    # --- PlatformPeer ----------------------------------------------------------------------

    def secrets(self) -> dict[str, str]:
        return {"webhook_secret": self.client_secret, "access_token": self.access_token}

    def options(self) -> dict[str, Any]:
        return {}

    def skus(self) -> dict[str, str]:
        return dict(SKUS)

    def new_order(self, edge_url: str, channel: str) -> str:
        order = self.take(self.sample)
        response = self.deliver(edge_url, channel, json.dumps(order).encode())
        response.raise_for_status()
        return str(order["id"])

    def confirmations(self, external_id: str) -> list[dict[str, Any]]:
        with self._state:
            lines_of = {li["id"]: li for li in self.orders[external_id]["line_items"]}
            out = []
            for f in self.fulfillments.get(external_id, []):
                lines: dict[str, int] = {}
                for li in f["line_items"]:
                    item = lines_of[li["id"]]
                    sku = str(item.get("sku") or item["variant_id"])
                    lines[sku] = lines.get(sku, 0) + li["quantity"]
                out.append(
                    {
                        "carrier": f["tracking_company"],
                        "tracking_number": f["tracking_number"],
                        "lines": lines,
                        "raw": f["request"],
                    }
                )
            return out

    # --- the shop's side -----------------------------------------------------------------

    def take(self, order: dict[str, Any]) -> dict[str, Any]:
        """The shop takes `order` (Shopify creates its fulfillment order with it)."""
        order = copy.deepcopy(order)
        with self._state:
            key = str(order["id"])
            self.orders[key] = order
            self.fulfillment_orders[key] = [
                {
                    "id": next(self._ids),
                    "order_id": order["id"],
                    "status": "open",
                    "line_items": [
                        {
                            "id": next(self._ids),
                            "line_item_id": li["id"],
                            "variant_id": li.get("variant_id"),
                            "quantity": li["quantity"],
                            "fulfillable_quantity": li["quantity"],
                        }
                        for li in order["line_items"]
                        if li.get("requires_shipping", True)
                    ],
                }
            ]
        return order

    def deliver(
        self,
        edge_url: str,
        channel: str,
        body: bytes,
        *,
        topic: str = "orders/create",
        webhook_id: str | None = None,
        signature: str | None = None,
    ) -> httpx.Response:
        """POSTs a webhook as Shopify does (its headers, its signature unless one is given)."""
        headers = {
            "Content-Type": "application/json",
            "X-Shopify-Topic": topic,
            "X-Shopify-Hmac-Sha256": self.sign(body) if signature is None else signature,
            "X-Shopify-Shop-Domain": "acme-de.myshopify.com",
            "X-Shopify-API-Version": API_VERSION,
            "X-Shopify-Webhook-Id": webhook_id or str(uuid.uuid4()),
            "X-Shopify-Event-Id": str(uuid.uuid4()),
            "X-Shopify-Triggered-At": datetime.now(UTC).isoformat(),
        }
        return httpx.post(f"{edge_url}/webhooks/{channel}", content=body, headers=headers)

    def sign(self, body: bytes) -> str:
        """What Shopify puts in X-Shopify-Hmac-Sha256: base64 HMAC-SHA256 of the raw body,
        keyed with the app's client secret (written here apart from the adapter's check, so
        each tests the other)."""
        digest = hmac.new(self.client_secret.encode(), body, hashlib.sha256).digest()
        return base64.b64encode(digest).decode()

    # --- Admin REST routes -----------------------------------------------------------------

    def _authorized(self, request: PeerRequest) -> bool:
        return request.headers.get("x-shopify-access-token") == self.access_token

    def _denied(self) -> Answer:
        return 401, {"errors": "[API] Invalid API key or access token (unrecognized login)"}

    def _order(self, request: PeerRequest) -> Answer:
        if not self._authorized(request):
            return self._denied()
        with self._state:
            order = self.orders.get(request.params["id"])
            return (
                (200, {"order": copy.deepcopy(order)}) if order else (404, {"errors": "Not Found"})
            )

    def _fo(self, request: PeerRequest) -> Answer:
        if not self._authorized(request):
            return self._denied()
        with self._state:
            found = self.fulfillment_orders.get(request.params["id"])
            if found is None:
                return 404, {"errors": "Not Found"}
            return 200, {"fulfillment_orders": copy.deepcopy(found)}

    def _fulfillments(self, request: PeerRequest) -> Answer:
        if not self._authorized(request):
            return self._denied()
        with self._state:
            listed = [
                {k: v for k, v in f.items() if k != "request"}
                for f in self.fulfillments.get(request.params["id"], [])
            ]
            return 200, {"fulfillments": listed}

    def _fulfill(self, request: PeerRequest) -> Answer:
        if not self._authorized(request):
            return self._denied()
        body = request.json()
        f = body.get("fulfillment") or {}
        with self._state:
            moved: list[tuple[dict[str, Any], int]] = []
            order_id = None
            for group in f.get("line_items_by_fulfillment_order", []):
                fo = next(
                    (
                        x
                        for xs in self.fulfillment_orders.values()
                        for x in xs
                        if x["id"] == group.get("fulfillment_order_id")
                    ),
                    None,
                )
                if fo is None:
                    return 404, {"errors": "Fulfillment order not found"}
                order_id = str(fo["order_id"])
                for want in group.get("fulfillment_order_line_items", []):
                    li = next((x for x in fo["line_items"] if x["id"] == want.get("id")), None)
                    if li is None or not 0 < want.get("quantity", 0) <= li["fulfillable_quantity"]:
                        return 422, {"errors": ["Invalid fulfillment order line item quantity."]}
                    moved.append((li, want["quantity"]))
            if order_id is None or not moved:
                return 422, {"errors": ["line_items_by_fulfillment_order is required"]}
            for li, quantity in moved:
                li["fulfillable_quantity"] -= quantity
            tracking = f.get("tracking_info") or {}
            fulfillment = {
                "id": next(self._ids),
                "order_id": int(order_id),
                "status": "success",
                "tracking_company": tracking.get("company"),
                "tracking_number": tracking.get("number"),
                "tracking_numbers": [tracking.get("number")],
                "line_items": [
                    {"id": li["line_item_id"], "quantity": quantity} for li, quantity in moved
                ],
                "request": body,
            }
            self.fulfillments.setdefault(order_id, []).append(fulfillment)
            shown = {k: v for k, v in fulfillment.items() if k != "request"}
            return 201, {"fulfillment": shown}
