"""A local BigCommerce store: sends the thin `store/order/created` webhook with the hook's custom
header and its Standard Webhooks signature, and serves the V2 Orders API routes the adapter
reads and writes.

Routes, under `/stores/{store_hash}/v2` and behind `X-Auth-Token` (401 when it is wrong, 404
for another store hash): `GET /orders/{id}`, `GET /orders/{id}/products` and `GET
/orders/{id}/shipping_addresses` (`page`, `limit`), `GET /orders/{id}/shipments` (204 when
there are none, as BigCommerce answers) and `POST /orders/{id}/shipments` (201; 400 for an
item of another address or more units than are left to ship; it does not deduplicate, like
BigCommerce). A throttled call answers 429 with BigCommerce's `X-Rate-Limit-*` headers.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import secrets
import time
from typing import Any

import httpx

from allocation_engine.testing.http_peer import Answer, HttpPeer, PeerRequest

WEBHOOK_HEADER = "X-Webhook-Secret"
"""The custom header the peer's hook was "created" with."""


def _error(status: int, message: str) -> list[dict[str, Any]]:
    """BigCommerce V2's error body."""
    return [{"status": status, "message": message}]


class BigCommercePeer(HttpPeer):
    """One store holding the sample's order. `sample` = {"webhook": the hook's payload,
    "order": GET /orders/{id}, "products": [...], "shipping_addresses": [...]}."""

    kind = "bigcommerce"

    def __init__(self, sample: dict[str, Any]) -> None:
        super().__init__()
        self.sample = copy.deepcopy(sample)
        self.store_hash: str = sample["webhook"]["producer"].split("/", 1)[1]
        self.order_id: int = int(sample["order"]["id"])
        self._orders = {self.order_id: copy.deepcopy(sample["order"])}
        self._products = {self.order_id: copy.deepcopy(sample["products"])}
        self._addresses = {self.order_id: copy.deepcopy(sample["shipping_addresses"])}
        self._shipments: dict[int, list[dict[str, Any]]] = {self.order_id: []}
        self._posted: dict[int, dict[str, Any]] = {}  # shipment id -> the body that made it
        self._secrets = {
            "access_token": secrets.token_hex(16),
            "client_secret": secrets.token_hex(24),
            "webhook_secret": secrets.token_urlsafe(24),
        }
        base = "/stores/{store_hash}/v2/orders/{id}"
        self.route("GET", base, self._authorized(self._order))
        self.route("GET", base + "/products", self._authorized(self._list(self._products)))
        self.route(
            "GET", base + "/shipping_addresses", self._authorized(self._list(self._addresses))
        )
        self.route("GET", base + "/shipments", self._authorized(self._shipment_list))
        self.route("POST", base + "/shipments", self._authorized(self._create_shipment))

    # --- PlatformPeer ----------------------------------------------------------------------

    def secrets(self) -> dict[str, str]:
        return dict(self._secrets)

    def options(self) -> dict[str, Any]:
        return {"store_hash": self.store_hash, "vat_field": "USt-IdNr."}

    def skus(self) -> dict[str, str]:
        skus = [p["sku"] for p in self._products[self.order_id] if p.get("type") == "physical"]
        return {sku: f"SKU-{i + 11:04d}" for i, sku in enumerate(dict.fromkeys(skus))}

    def new_order(self, edge_url: str, channel: str) -> str:
        body = json.dumps(self.sample["webhook"]).encode()
        response = httpx.post(
            f"{edge_url}/webhooks/{channel}", content=body, headers=self.signed(body), timeout=10
        )
        response.raise_for_status()
        return str(self.order_id)

    def confirmations(self, external_id: str) -> list[dict[str, Any]]:
        order_id = int(external_id)
        skus = {p["id"]: p["sku"] for p in self._products.get(order_id, [])}
        found = []
        for shipment in self._shipments.get(order_id, []):
            lines: dict[str, int] = {}
            for item in shipment["items"]:
                sku = skus[item["order_product_id"]]
                lines[sku] = lines.get(sku, 0) + item["quantity"]
            found.append(
                {
                    "carrier": shipment["shipping_method"],
                    "tracking_number": shipment["tracking_number"],
                    "lines": lines,
                    "raw": self._posted[shipment["id"]],
                }
            )
        return found

    # --- helpers for tests -----------------------------------------------------------------

    def signed(
        self, body: bytes, *, client_secret: str | None = None, at: float | None = None
    ) -> dict[str, str]:
        """The headers BigCommerce sends with a hook's body: the custom header and the
        Standard Webhooks id, timestamp and signature (keyed with the client secret)."""
        webhook_id = "msg_" + secrets.token_hex(12)
        stamp = str(int(time.time() if at is None else at))
        key = (client_secret or self._secrets["client_secret"]).encode()
        digest = hmac.new(key, f"{webhook_id}.{stamp}.".encode() + body, hashlib.sha256)
        return {
            "Content-Type": "application/json",
            WEBHOOK_HEADER: self._secrets["webhook_secret"],
            "webhook-id": webhook_id,
            "webhook-timestamp": stamp,
            "webhook-signature": "v1," + base64.b64encode(digest.digest()).decode(),
        }

    def product(self, order_id: int, sku: str) -> dict[str, Any]:
        """The order product of `sku` as the store holds it now."""
        return dict(next(p for p in self._products[order_id] if p["sku"] == sku))

    # --- routes ----------------------------------------------------------------------------

    def _dispatch(self, request: PeerRequest) -> Answer:
        """BigCommerce's 429 carries its quota headers, not Retry-After."""
        answer = super()._dispatch(request)
        if answer[0] != 429:
            return answer
        return (
            429,
            _error(429, "Too many requests"),
            {
                "X-Rate-Limit-Time-Window-Ms": "30000",
                "X-Rate-Limit-Time-Reset-Ms": "50",
                "X-Rate-Limit-Requests-Quota": "150",
                "X-Rate-Limit-Requests-Left": "0",
            },
        )

    def _authorized(self, handler: Any) -> Any:
        def guarded(request: PeerRequest) -> Answer:
            if not hmac.compare_digest(
                request.headers.get("x-auth-token", ""), self._secrets["access_token"]
            ):
                return 401, _error(401, "You have not been authenticated")
            if request.params["store_hash"] != self.store_hash:
                return 404, _error(404, "Store not found")
            if not request.params["id"].isdigit() or int(request.params["id"]) not in self._orders:
                return 404, _error(404, "The requested resource was not found.")
            answer: Answer = handler(request, int(request.params["id"]))
            return answer

        return guarded

    def _order(self, request: PeerRequest, order_id: int) -> Answer:
        return 200, self._orders[order_id]

    def _list(self, table: dict[int, list[dict[str, Any]]]) -> Any:
        def listed(request: PeerRequest, order_id: int) -> Answer:
            page, limit = int(request.arg("page", "1")), int(request.arg("limit", "50"))
            with self._lock:
                items = copy.deepcopy(table[order_id][(page - 1) * limit : page * limit])
            return (200, items) if items else (204, b"")

        return listed

    def _shipment_list(self, request: PeerRequest, order_id: int) -> Answer:
        listed: Answer = self._list(self._shipments)(request, order_id)
        return listed

    def _create_shipment(self, request: PeerRequest, order_id: int) -> Answer:
        body = request.json() or {}
        address_id = body.get("order_address_id")
        items = body.get("items") or []
        with self._lock:
            if address_id not in {a["id"] for a in self._addresses[order_id]}:
                return 400, _error(400, "The field 'order_address_id' is invalid.")
            if not items:
                return 400, _error(400, "The field 'items' cannot be empty.")
            products = {p["id"]: p for p in self._products[order_id]}
            for item in items:
                product = products.get(item.get("order_product_id"))
                if product is None or product["order_address_id"] != address_id:
                    return 400, _error(400, "The order product does not belong to the address.")
                if item.get("quantity", 0) > product["quantity"] - product["quantity_shipped"]:
                    return 400, _error(400, "Quantity is greater than the quantity left to ship.")
            for item in items:
                products[item["order_product_id"]]["quantity_shipped"] += item["quantity"]
            shipment_id = sum(len(s) for s in self._shipments.values()) + 1
            shipment = {
                "id": shipment_id,
                "order_id": order_id,
                "customer_id": self._orders[order_id]["customer_id"],
                "order_address_id": address_id,
                "date_created": time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime()),
                "tracking_number": body.get("tracking_number", ""),
                "merchant_shipping_cost": "0.0000",
                "shipping_method": body.get("shipping_method", ""),
                "comments": body.get("comments", ""),
                "shipping_provider": body.get("shipping_provider", ""),
                "tracking_carrier": body.get("tracking_carrier", ""),
                "tracking_link": "",
                "billing_address": self._orders[order_id]["billing_address"],
                "items": [
                    {
                        "order_product_id": i["order_product_id"],
                        "product_id": 0,
                        "quantity": i["quantity"],
                    }
                    for i in items
                ],
            }
            self._shipments[order_id].append(shipment)
            self._posted[shipment_id] = body
            shipped = sum(p["quantity_shipped"] for p in products.values())
            total = sum(p["quantity"] for p in products.values())
            self._orders[order_id].update(
                {"status_id": 2, "status": "Shipped"}
                if shipped >= total
                else {"status_id": 3, "status": "Partially Shipped"},
                items_shipped=shipped,
            )
        return 201, shipment
