"""A local eBay: the OAuth token endpoint and the Sell Fulfillment API v1 routes our adapter
calls, with eBay's field names, filters, paging and error shapes.

- `POST /identity/v1/oauth2/token`: the refresh-token grant; checks `Authorization: Basic
  base64(client_id:client_secret)` (401 `invalid_client`), the refresh token and the
  sell.fulfillment scope (400 `invalid_grant` / `invalid_scope`), answers a User access token
  with `expires_in`.
- every API route checks `Authorization: Bearer <a token it minted>` (401, eBay's errorId
  1001 "Invalid access token"); `expire_tokens()` voids them all, as expiry does.
- `GET /sell/fulfillment/v1/order`: the `filter` criteria `creationdate:[from..to]` and
  `orderfulfillmentstatus:{A|B}`, `limit` (max 200, else errorId 31100) and `offset`, sorted by
  creation date then order id; answers `{href, total, limit, offset, next, orders}` without
  `buyer.taxIdentifier` (eBay returns it only from getOrder).
- `GET /sell/fulfillment/v1/order/{orderId}`: the whole order (404 for an unknown id).
- `GET|POST /sell/fulfillment/v1/order/{orderId}/shipping_fulfillment`: lists the fulfillments,
  creates one (201 with a Location header; its id is the tracking number). A second POST with
  a tracking number the order already has is refused 400 (errorId 34500, "use PUT"): what
  eBay's documented error list suggests for an existing fulfillment; not verified against the
  live API. A fulfillment moves the order to IN_PROGRESS, or FULFILLED once every unit shipped.

The sample is one eBay `Order` as getOrder returns it; `new_order` lists a copy of it.
"""

from __future__ import annotations

import base64
import copy
import json
import re
import secrets
import threading
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs

from allocation_engine.testing.http_peer import Answer, HttpPeer, PeerRequest

API = "/sell/fulfillment/v1/order"
SCOPE = "https://api.ebay.com/oauth/api_scope/sell.fulfillment"
DEMO_SKUS = ("SKU-0011", "SKU-0012", "SKU-0013", "SKU-0014", "SKU-0015", "SKU-0016")


def _error(error_id: int, message: str, category: str = "REQUEST") -> dict[str, Any]:
    return {
        "errors": [
            {
                "errorId": error_id,
                "domain": "API_FULFILLMENT",
                "category": category,
                "message": message,
            }
        ]
    }


def sample_sku(item: Mapping[str, Any]) -> str:
    """The platform sku of a line item as the adapter reads it (sku, else listing id)."""
    if item.get("sku"):
        return str(item["sku"])
    listing, variation = item.get("legacyItemId", ""), item.get("legacyVariationId")
    return f"{listing}:{variation}" if variation else str(listing)


class EbayPeer(HttpPeer):
    kind = "ebay"

    def __init__(self, sample: dict[str, Any]) -> None:
        super().__init__()
        self.sample = sample
        self.client_id = "LocalSel-allocati-PRD-1a2b3c4d5-6e7f8a9b"
        self.client_secret = "PRD-" + secrets.token_hex(12)
        self.refresh_token = "v^1.1#i^1#r^1#" + secrets.token_urlsafe(24)
        self.orders: dict[str, dict[str, Any]] = {}
        self.fulfillments: dict[str, list[dict[str, Any]]] = {}
        self.bodies: dict[str, list[dict[str, Any]]] = {}
        self._tokens: set[str] = set()
        self._state = threading.Lock()
        self.route("POST", "/identity/v1/oauth2/token", self._token)
        self.route("GET", API, self._list)
        self.route("GET", API + "/{order_id}", self._get)
        self.route("GET", API + "/{order_id}/shipping_fulfillment", self._fulfillments)
        self.route("POST", API + "/{order_id}/shipping_fulfillment", self._fulfill)

    # --- PlatformPeer --------------------------------------------------------------------------

    def secrets(self) -> dict[str, str]:
        return {
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "refresh_token": self.refresh_token,
        }

    def options(self) -> dict[str, Any]:
        return {"created_after": "2026-11-01T00:00:00.000Z", "carrier_codes": {"DHL": "DHL"}}

    def skus(self) -> dict[str, str]:
        found = [sample_sku(item) for item in self.sample["lineItems"]]
        return dict(zip(found, DEMO_SKUS, strict=False))

    def new_order(self, edge_url: str, channel: str) -> str:
        """Lists a copy of the sample (a fresh order id after the first) for the next poll."""
        order = copy.deepcopy(self.sample)
        with self._state:
            if order["orderId"] in self.orders:
                order["orderId"] = f"{order['orderId']}-{len(self.orders) + 1}"
        self.add_order(order)
        return str(order["orderId"])

    def confirmations(self, external_id: str) -> list[dict[str, Any]]:
        with self._state:
            order = self.orders.get(external_id, {})
            skus = {i["lineItemId"]: sample_sku(i) for i in order.get("lineItems", [])}
            return [
                {
                    "carrier": body.get("shippingCarrierCode"),
                    "tracking_number": body.get("trackingNumber"),
                    "lines": {
                        skus.get(li["lineItemId"], li["lineItemId"]): li["quantity"]
                        for li in body.get("lineItems", [])
                    },
                    "raw": body,
                }
                for body in self.bodies.get(external_id, [])
            ]

    # --- test helpers --------------------------------------------------------------------------

    def add_order(self, order: dict[str, Any]) -> None:
        """Lists `order` (an eBay Order) as getOrders and getOrder will answer it."""
        with self._state:
            self.orders[str(order["orderId"])] = order

    def expire_tokens(self) -> None:
        with self._state:
            self._tokens.clear()

    # --- routes --------------------------------------------------------------------------------

    def _token(self, request: PeerRequest) -> Answer:
        expected = base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
        if request.headers.get("authorization") != f"Basic {expected}":
            return 401, {
                "error": "invalid_client",
                "error_description": "client authentication failed",
            }
        form = {k: v[0] for k, v in parse_qs(request.body.decode()).items()}
        if (
            form.get("grant_type") != "refresh_token"
            or form.get("refresh_token") != self.refresh_token
        ):
            return 400, {
                "error": "invalid_grant",
                "error_description": "the provided authorization refresh token is invalid or was "
                "issued to another client",
            }
        if SCOPE not in form.get("scope", "").split():
            return 400, {
                "error": "invalid_scope",
                "error_description": "the requested scope is invalid",
            }
        token = "v^1.1#i^1#p^3#" + secrets.token_urlsafe(32)
        with self._state:
            self._tokens.add(token)
        return 200, {"access_token": token, "expires_in": 7200, "token_type": "User Access Token"}

    def _authorized(self, request: PeerRequest) -> bool:
        header = request.headers.get("authorization", "")
        with self._state:
            return header.startswith("Bearer ") and header[7:] in self._tokens

    def _unauthorized(self) -> Answer:
        body = _error(1001, "Invalid access token")
        body["errors"][0]["domain"] = "OAuth"
        return 401, body

    def _list(self, request: PeerRequest) -> Answer:
        if not self._authorized(request):
            return self._unauthorized()
        criteria = request.arg("filter")
        since, until, statuses = "", "9999", {"NOT_STARTED", "IN_PROGRESS", "FULFILLED"}
        for part in re.split(r",(?![^\[]*\])", criteria) if criteria else []:
            name, _, value = part.partition(":")
            if name == "creationdate" and (found := re.fullmatch(r"\[(.+)\.\.(.*)\]", value)):
                since, until = found.group(1), found.group(2) or until
            elif name == "orderfulfillmentstatus" and re.fullmatch(r"\{[A-Z_|]+\}", value):
                statuses = set(value.strip("{}").split("|"))
            else:
                return 400, _error(30800, f"Invalid filter value {value} for filter {name}")
        try:
            limit, offset = int(request.arg("limit", "50")), int(request.arg("offset", "0"))
        except ValueError:
            return 400, _error(31100, "Invalid limit or offset")
        if not 1 <= limit <= 200:
            return 400, _error(31100, f"Invalid limit: {limit}")
        with self._state:
            matching = sorted(
                (
                    o
                    for o in self.orders.values()
                    if since <= o["creationDate"] <= until
                    and o.get("orderFulfillmentStatus") in statuses
                ),
                key=lambda o: (o["creationDate"], o["orderId"]),
            )
            page = [copy.deepcopy(o) for o in matching[offset : offset + limit]]
        for order in page:
            order.get("buyer", {}).pop("taxIdentifier", None)
        body: dict[str, Any] = {
            "href": f"{API}?limit={limit}&offset={offset}",
            "total": len(matching),
            "limit": limit,
            "offset": offset,
            "orders": page,
        }
        if offset + limit < len(matching):
            body["next"] = f"{API}?limit={limit}&offset={offset + limit}"
        return 200, body

    def _get(self, request: PeerRequest) -> Answer:
        if not self._authorized(request):
            return self._unauthorized()
        with self._state:
            order = self.orders.get(request.params["order_id"])
            return (
                (200, copy.deepcopy(order)) if order else (404, _error(32100, "Invalid order ID"))
            )

    def _fulfillments(self, request: PeerRequest) -> Answer:
        if not self._authorized(request):
            return self._unauthorized()
        with self._state:
            found = copy.deepcopy(self.fulfillments.get(request.params["order_id"], []))
        return 200, {"fulfillments": found, "total": len(found)}

    def _fulfill(self, request: PeerRequest) -> Answer:
        if not self._authorized(request):
            return self._unauthorized()
        order_id = request.params["order_id"]
        try:
            body = json.loads(request.body)
        except ValueError:
            return 400, _error(32600, "Invalid input data")
        with self._state:
            order = self.orders.get(order_id)
            if order is None:
                return 400, _error(32100, f"Invalid Order Id: {order_id}")
            ordered = {i["lineItemId"]: int(i["quantity"]) for i in order["lineItems"]}
            lines = body.get("lineItems") or []
            if not lines or any(
                li.get("lineItemId") not in ordered
                or not 0 < int(li.get("quantity", 0)) <= ordered[li["lineItemId"]]
                for li in lines
            ):
                return 400, _error(32200, "Invalid line item id")
            tracking, carrier = body.get("trackingNumber"), body.get("shippingCarrierCode")
            if bool(tracking) != bool(carrier) or (tracking and not str(tracking).isalnum()):
                return 400, _error(32300, "Invalid shipment tracking number or carrier")
            existing = self.fulfillments.setdefault(order_id, [])
            if any(f["fulfillmentId"] == tracking for f in existing):
                return 400, _error(
                    34500, "Please use PUT operation for updating shipping fulfillment"
                )
            existing.append(
                {
                    "fulfillmentId": tracking,
                    "shipmentTrackingNumber": tracking,
                    "shippingCarrierCode": carrier,
                    "shippedDate": body.get("shippedDate"),
                    "lineItems": lines,
                }
            )
            self.bodies.setdefault(order_id, []).append(body)
            shipped: dict[str, int] = {}
            for fulfillment in existing:
                for li in fulfillment["lineItems"]:
                    shipped[li["lineItemId"]] = shipped.get(li["lineItemId"], 0) + int(
                        li["quantity"]
                    )
            done = all(shipped.get(i, 0) >= q for i, q in ordered.items())
            order["orderFulfillmentStatus"] = "FULFILLED" if done else "IN_PROGRESS"
        location = f"{self.url}{API}/{order_id}/shipping_fulfillment/{tracking}"
        return 201, {}, {"Location": location}
