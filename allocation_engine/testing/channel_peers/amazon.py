"""A local Selling Partner API and Login with Amazon: the LWA token grant, the Tokens API's
Restricted Data Token, Orders v0 getOrders / getOrderItems / confirmShipment.

Like Amazon it answers 403 `Unauthorized` to a missing or unknown `x-amz-access-token`,
returns the buyer's address and e-mail from getOrders only to a Restricted Data Token that
names them (an LWA token gets City, StateOrRegion, PostalCode and CountryCode), pages getOrders
by `NextToken` (which overrides the other filters), reads `CreatedAfter` as "at or after",
and keeps one package per (order, `packageReferenceId`): a second confirmShipment with the
same id edits that package. Every answer carries `x-amzn-RequestId` and the operation's
`x-amzn-RateLimit-Limit`, the 429s of `throttle()` too.
"""

from __future__ import annotations

import copy
import itertools
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

from allocation_engine.testing.http_peer import Answer, HttpPeer, PeerRequest

REFRESH_TOKEN = "Atzr|IwEBIPeerRefreshToken-7f3a91c2"
CLIENT_ID = "amzn1.application-oa2-client.peer5d0c1e8b"
CLIENT_SECRET = "amzn1.oa2-cs.v1.peer0b4f77d2a9e1"
MARKETPLACE_ID = "A1PA6795UKMFR9"  # Amazon.de
RATE_LIMITS = {"getOrders": "0.0167", "getOrderItems": "0.5", "confirmShipment": "2.0"}
NON_PII_ADDRESS = ("City", "StateOrRegion", "PostalCode", "CountryCode")
UNAUTHORIZED = {
    "errors": [
        {
            "code": "Unauthorized",
            "message": "Access to requested resource is denied.",
            "details": "The access token you provided is revoked, malformed or invalid.",
        }
    ]
}


MAX_ORDER_IDS = 50
"""getOrders takes at most 50 AmazonOrderIds."""


def _error(code: str, message: str) -> dict[str, Any]:
    return {"errors": [{"code": code, "message": message, "details": ""}]}


def _time(value: str) -> datetime:
    moment = datetime.fromisoformat(value)
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


class AmazonPeer(HttpPeer):
    """Plays SP-API (Orders v0, Tokens) and LWA for one seller. `sample` holds a getOrder and
    a getOrderItems answer: `{"getOrder": {"payload": Order}, "getOrderItems": {"payload":
    {"AmazonOrderId", "OrderItems"}}}`."""

    kind = "amazon"

    def __init__(self, sample: dict[str, Any]) -> None:
        super().__init__()
        self.now: Callable[[], datetime] = lambda: datetime.now(UTC)  # the platform's clock
        self.sample = sample
        self.orders: dict[str, dict[str, Any]] = {}
        self.items: dict[str, list[dict[str, Any]]] = {}
        self.packages: dict[str, dict[str, dict[str, Any]]] = {}  # order -> ref -> body
        self._access_tokens: set[str] = set()
        self._restricted: dict[str, set[str]] = {}  # RDT -> data elements
        self._pages: dict[str, tuple[list[dict[str, Any]], int]] = {}  # NextToken -> rest, size
        self._serial = itertools.count(1)
        self.token_lifetime = 3600  # seconds, as LWA's expires_in and the RDT's expiresIn
        self.route("POST", "/auth/o2/token", self._token)
        self.route("POST", "/tokens/2021-03-01/restrictedDataToken", self._restricted_token)
        self.route("GET", "/orders/v0/orders", self._get_orders)
        self.route("GET", "/orders/v0/orders/{id}/orderItems", self._get_order_items)
        self.route("POST", "/orders/v0/orders/{id}/shipmentConfirmation", self._confirm)

    # --- PlatformPeer ------------------------------------------------------------------------

    def secrets(self) -> dict[str, str]:
        return {
            "refresh_token": REFRESH_TOKEN,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
        }

    def options(self) -> dict[str, Any]:
        """The marketplace, this peer as the LWA server too, and a start date."""
        return {
            "marketplace_id": MARKETPLACE_ID,
            "lwa_url": self.url,
            "created_after": "2026-01-01T00:00:00Z",
        }

    def skus(self) -> dict[str, str]:
        """The sample's SellerSKUs, in order, -> SKU-0001, SKU-0002, ..."""
        items = self.sample["getOrderItems"]["payload"]["OrderItems"]
        seen = list(dict.fromkeys(str(i["SellerSKU"]) for i in items))
        return {sku: f"SKU-{n:04d}" for n, sku in enumerate(seen, start=1)}

    def new_order(self, edge_url: str, channel: str) -> str:
        """Lists the sample for the next poll (the Orders API has no push to us)."""
        return self.add_order(
            copy.deepcopy(self.sample["getOrder"]["payload"]),
            copy.deepcopy(self.sample["getOrderItems"]["payload"]["OrderItems"]),
        )

    def confirmations(self, external_id: str) -> list[dict[str, Any]]:
        """One per package (by packageReferenceId), as last confirmed."""
        with self._lock:
            skus = {i["OrderItemId"]: i["SellerSKU"] for i in self.items.get(external_id, [])}
            packages = list(self.packages.get(external_id, {}).values())
        found = []
        for body in packages:
            detail = body["packageDetail"]
            lines: dict[str, int] = {}
            for item in detail["orderItems"]:
                sku = skus[item["orderItemId"]]
                lines[sku] = lines.get(sku, 0) + int(item["quantity"])
            carrier = detail["carrierCode"]
            found.append(
                {
                    "carrier": detail.get("carrierName", "") if carrier == "Other" else carrier,
                    "tracking_number": detail["trackingNumber"],
                    "lines": lines,
                    "raw": body,
                }
            )
        return found

    # --- for tests ---------------------------------------------------------------------------

    def add_order(self, order: dict[str, Any], items: list[dict[str, Any]]) -> str:
        """Lists an order (a getOrders `Order`, with its PII) and its `OrderItems`."""
        with self._lock:
            self.orders[order["AmazonOrderId"]] = order
            self.items[order["AmazonOrderId"]] = items
        return str(order["AmazonOrderId"])

    def set_status(self, order_id: str, status: str) -> None:
        with self._lock:
            self.orders[order_id]["OrderStatus"] = status

    # --- dispatch: Amazon's headers on every answer -------------------------------------------

    def _dispatch(self, request: PeerRequest) -> Answer:
        answer = super()._dispatch(request)
        headers = dict(answer[2]) if len(answer) > 2 else {}
        headers["x-amzn-RequestId"] = str(uuid.uuid4())
        operation = _operation(request)
        if operation:
            headers["x-amzn-RateLimit-Limit"] = RATE_LIMITS[operation]
        return answer[0], answer[1], headers

    # --- Login with Amazon and the Tokens API ------------------------------------------------

    def _token(self, request: PeerRequest) -> Answer:
        form = {k: v[0] for k, v in parse_qs(request.body.decode()).items()}
        if form.get("client_id") != CLIENT_ID or form.get("client_secret") != CLIENT_SECRET:
            return 401, {
                "error": "invalid_client",
                "error_description": "Client authentication failed",
            }
        if form.get("grant_type") != "refresh_token" or form.get("refresh_token") != (
            REFRESH_TOKEN
        ):
            return 400, {
                "error": "invalid_grant",
                "error_description": "The request has an invalid grant parameter : refresh_token",
            }
        token = f"Atza|IwEBIPeerAccess-{next(self._serial)}"
        with self._lock:
            self._access_tokens.add(token)
        return 200, {
            "access_token": token,
            "refresh_token": REFRESH_TOKEN,
            "token_type": "bearer",
            "expires_in": self.token_lifetime,
        }

    def _restricted_token(self, request: PeerRequest) -> Answer:
        if request.headers.get("x-amz-access-token") not in self._access_tokens:
            return 403, UNAUTHORIZED
        resources = (request.json() or {}).get("restrictedResources") or []
        elements: set[str] = set()
        for resource in resources:
            if resource.get("method") == "GET" and resource.get("path") == "/orders/v0/orders":
                elements |= set(resource.get("dataElements") or [])
        if not elements:
            return 400, _error("InvalidInput", "restrictedResources names no restricted data")
        token = f"Atz.sprdt|IwEBIPeerRDT-{next(self._serial)}"
        with self._lock:
            self._restricted[token] = elements
        return 200, {"restrictedDataToken": token, "expiresIn": self.token_lifetime}

    # --- Orders v0 ---------------------------------------------------------------------------

    def _get_orders(self, request: PeerRequest) -> Answer:
        token = request.headers.get("x-amz-access-token", "")
        elements = self._restricted.get(token)
        if elements is None and token not in self._access_tokens:
            return 403, UNAUTHORIZED
        if request.arg("MarketplaceIds") != MARKETPLACE_ID:
            return 400, _error("InvalidInput", "Invalid Input: MarketplaceIds")
        next_token = request.arg("NextToken")
        if next_token:
            with self._lock:
                stored = self._pages.get(next_token)
            if stored is None:
                return 400, _error("InvalidInput", "Invalid NextToken")
            rest, size = stored
        else:
            selected = self._select(request)
            if isinstance(selected, tuple):
                return selected
            rest, size = selected, int(request.arg("MaxResultsPerPage", "100") or 100)
        page, rest = rest[:size], rest[size:]
        payload: dict[str, Any] = {
            "Orders": [self._visible(o, elements or set()) for o in page],
            "CreatedBefore": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        if rest:
            following = f"peer-next-{next(self._serial)}"
            with self._lock:
                self._pages[following] = (rest, size)
            payload["NextToken"] = following
        return 200, {"payload": payload}

    def _select(self, request: PeerRequest) -> list[dict[str, Any]] | Answer:
        """getOrders' filters: AmazonOrderIds alone, or CreatedAfter with FulfillmentChannels
        and OrderStatuses; oldest first."""
        with self._lock:
            orders = [copy.deepcopy(o) for o in self.orders.values()]
        wanted_ids = request.arg("AmazonOrderIds")
        if wanted_ids:
            ids = wanted_ids.split(",")
            if len(ids) > MAX_ORDER_IDS:
                return 400, _error("InvalidInput", f"AmazonOrderIds: at most {MAX_ORDER_IDS}")
            return [o for o in orders if o["AmazonOrderId"] in ids]
        after = request.arg("CreatedAfter")
        if not after:
            return 400, _error("InvalidInput", "CreatedAfter or LastUpdatedAfter is required")
        try:
            start = _time(after)
        except ValueError:
            return 400, _error("InvalidInput", f"Invalid Input: CreatedAfter {after}")
        before = request.arg("CreatedBefore")
        end = None
        if before:
            try:
                end = _time(before)
            except ValueError:
                return 400, _error("InvalidInput", f"Invalid Input: CreatedBefore {before}")
            if end > self.now() - timedelta(minutes=2):
                return 400, _error(
                    "InvalidInput", "CreatedBefore must be at least 2 minutes before now"
                )
        channels = set(filter(None, request.arg("FulfillmentChannels").split(",")))
        statuses = set(filter(None, request.arg("OrderStatuses").split(",")))
        chosen = [
            o
            for o in orders
            if _time(o["PurchaseDate"]) >= start
            and (end is None or _time(o["PurchaseDate"]) < end)
            and (not channels or o.get("FulfillmentChannel") in channels)
            and (not statuses or o.get("OrderStatus") in statuses)
        ]
        return sorted(chosen, key=lambda o: (_time(o["PurchaseDate"]), o["AmazonOrderId"]))

    @staticmethod
    def _visible(order: dict[str, Any], elements: set[str]) -> dict[str, Any]:
        """The order as that token may see it: PII only for an RDT that names it."""
        if "shippingAddress" not in elements and "ShippingAddress" in order:
            address = order["ShippingAddress"]
            order["ShippingAddress"] = {k: address[k] for k in NON_PII_ADDRESS if k in address}
        if "buyerInfo" not in elements:
            order.pop("BuyerInfo", None)
        return order

    def _get_order_items(self, request: PeerRequest) -> Answer:
        if request.headers.get("x-amz-access-token") not in self._access_tokens:
            return 403, UNAUTHORIZED
        order_id = request.params["id"]
        with self._lock:
            items = copy.deepcopy(self.items.get(order_id))
        if items is None:
            return 404, _error("NotFound", f"Order {order_id} not found")
        return 200, {"payload": {"AmazonOrderId": order_id, "OrderItems": items}}

    def _confirm(self, request: PeerRequest) -> Answer:
        """confirmShipment: checks the body as Amazon does, keeps one package per
        packageReferenceId (a repeat edits it), moves the order to (Partially)Shipped; 204."""
        if request.headers.get("x-amz-access-token") not in self._access_tokens:
            return 403, UNAUTHORIZED
        order_id = request.params["id"]
        body = request.json() or {}
        detail = body.get("packageDetail") or {}
        with self._lock:
            items = {i["OrderItemId"]: i for i in self.items.get(order_id, [])}
            if order_id not in self.orders:
                return 404, _error("NotFound", f"Order {order_id} not found")
            if body.get("marketplaceId") != MARKETPLACE_ID:
                return 400, _error("InvalidInput", "Invalid Input: marketplaceId")
            reference = str(detail.get("packageReferenceId", ""))
            missing = [
                k
                for k in ("carrierCode", "trackingNumber", "shipDate", "orderItems")
                if not detail.get(k)
            ]
            if not reference.isdigit() or int(reference) < 1 or missing:
                return 400, _error("InvalidInput", f"Invalid packageDetail: {missing or reference}")
            if detail["carrierCode"] == "Other" and not detail.get("carrierName"):
                return 400, _error("InvalidInput", "carrierName is required for carrierCode Other")
            packages = dict(self.packages.get(order_id, {}))
            packages[reference] = body
            shipped: dict[str, int] = {}
            for package in packages.values():
                for line in package["packageDetail"]["orderItems"]:
                    item_id = line.get("orderItemId")
                    if item_id not in items:
                        return 400, _error("InvalidInput", f"Invalid orderItemId {item_id}")
                    shipped[item_id] = shipped.get(item_id, 0) + int(line.get("quantity", 0))
            if any(q > int(items[i]["QuantityOrdered"]) for i, q in shipped.items()):
                return 400, _error("InvalidInput", "quantity exceeds the quantity ordered")
            self.packages[order_id] = packages
            for item_id, item in items.items():
                item["QuantityShipped"] = shipped.get(item_id, 0)
            done = all(i["QuantityShipped"] >= i["QuantityOrdered"] for i in items.values())
            self.orders[order_id]["OrderStatus"] = "Shipped" if done else "PartiallyShipped"
        return 204, b""


def _operation(request: PeerRequest) -> str:
    """The Orders operation a request is, for its rate limit header; "" for the others."""
    if request.path == "/orders/v0/orders":
        return "getOrders"
    if request.path.endswith("/orderItems"):
        return "getOrderItems"
    if request.path.endswith("/shipmentConfirmation"):
        return "confirmShipment"
    return ""
