"""A local Shopware 6 shop: signs and sends the app system's `checkout.order.placed` webhook,
and serves the Admin API routes the Shopware adapter calls.

Routes (Shopware 6.6, `Accept: application/json`): `POST /api/oauth/token` (client
credentials; a wrong id or secret is 401), `POST /api/search/order` (criteria `ids`),
`GET /api/country/{id}`, `PATCH /api/order-delivery/{id}` (`trackingCodes` replaced,
`customFields` merged key by key, as the DAL does; 204) and `POST
/api/_action/order_delivery/{id}/state/{transition}` (Shopware's order_delivery state machine:
an illegal transition is 400 `SYSTEM__ILLEGAL_STATE_TRANSITION`). Every Admin API route wants
a bearer token the token route issued; `expire_tokens()` invalidates them all, as their
`expires_in` running out would.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import secrets
from typing import Any

import httpx

from allocation_engine.testing.http_peer import Answer, HttpPeer, PeerRequest

PARCELS_FIELD = "allocation_engine_parcels"
"""Where the adapter records a parcel on the delivery (its shipment id -> carrier, tracking
number, lines); read here to answer `confirmations`."""

TRANSITIONS = {
    ("open", "ship"): "shipped",
    ("open", "ship_partially"): "shipped_partially",
    ("open", "cancel"): "cancelled",
    ("shipped_partially", "ship"): "shipped",
    ("shipped_partially", "retour"): "returned",
    ("shipped_partially", "cancel"): "cancelled",
    ("shipped", "retour"): "returned",
    ("shipped", "retour_partially"): "returned_partially",
    ("shipped", "cancel"): "cancelled",
    ("cancelled", "reopen"): "open",
}
"""(state, transition) -> the state it reaches, Shopware's `order_delivery.state`."""


def _errors(status: int, code: str, detail: str) -> dict[str, Any]:
    """Shopware's error body."""
    return {"errors": [{"status": str(status), "code": code, "title": "Error", "detail": detail}]}


class ShopwarePeer(HttpPeer):
    """One shop holding the sample's order; `sample` is the parsed webhook body."""

    kind = "shopware"

    def __init__(self, sample: dict[str, Any]) -> None:
        super().__init__()
        self.sample = copy.deepcopy(sample)
        order = copy.deepcopy(sample["data"]["payload"]["order"])
        self.order_id: str = order["id"]
        self._orders = {self.order_id: order}
        self._countries = {
            c["id"]: c for c in _find(order, "country") if isinstance(c, dict) and "id" in c
        }
        self._secrets = {
            "webhook_secret": secrets.token_hex(32),
            "client_id": "SWIA" + secrets.token_hex(11).upper(),
            "client_secret": secrets.token_urlsafe(36),
        }
        self._tokens: set[str] = set()
        self._patches: dict[str, dict[str, Any]] = {}  # shipment id -> the PATCH that added it
        self.route("POST", "/api/oauth/token", self._token)
        self.route("POST", "/api/search/order", self._authorized(self._search))
        self.route("GET", "/api/country/{id}", self._authorized(self._country))
        self.route("PATCH", "/api/order-delivery/{id}", self._authorized(self._patch))
        self.route(
            "POST",
            "/api/_action/order_delivery/{id}/state/{transition}",
            self._authorized(self._transition),
        )

    # --- PlatformPeer ----------------------------------------------------------------------

    def secrets(self) -> dict[str, str]:
        return dict(self._secrets)

    def options(self) -> dict[str, Any]:
        return {}

    def skus(self) -> dict[str, str]:
        numbers = [
            item["payload"]["productNumber"]
            for item in self._orders[self.order_id]["lineItems"]
            if item.get("type") == "product"
        ]
        return {number: f"SKU-{i + 1:04d}" for i, number in enumerate(dict.fromkeys(numbers))}

    def new_order(self, edge_url: str, channel: str) -> str:
        body = json.dumps(self.sample).encode()
        response = httpx.post(
            f"{edge_url}/webhooks/{channel}", content=body, headers=self.signed(body), timeout=10
        )
        response.raise_for_status()
        return self.order_id

    def confirmations(self, external_id: str) -> list[dict[str, Any]]:
        order = self._orders.get(external_id)
        found = []
        for delivery in order["deliveries"] if order else []:
            parcels = (delivery.get("customFields") or {}).get(PARCELS_FIELD) or {}
            for shipment_id, parcel in parcels.items():
                if parcel["trackingNumber"] in delivery.get("trackingCodes", []):
                    found.append(
                        {
                            "carrier": parcel["carrier"],
                            "tracking_number": parcel["trackingNumber"],
                            "lines": dict(parcel["lines"]),
                            "raw": self._patches.get(shipment_id, {}),
                        }
                    )
        return found

    # --- helpers for tests -----------------------------------------------------------------

    def signed(self, body: bytes, secret: str | None = None) -> dict[str, str]:
        """The headers Shopware sends with a webhook body, signed with the shop secret."""
        key = (secret or self._secrets["webhook_secret"]).encode()
        return {
            "Content-Type": "application/json",
            "shopware-shop-signature": hmac.new(key, body, hashlib.sha256).hexdigest(),
            "sw-version": "6.6.10.4",
            "sw-context-language": str(self.sample["data"]["payload"]["order"]["languageId"]),
            "sw-user-language": "de-DE",
            "X-Shopware-Event-Id": str(self.sample["source"]["eventId"]),
        }

    def delivery(self, external_id: str) -> dict[str, Any]:
        """The order's first delivery as the shop holds it now."""
        return dict(self._orders[external_id]["deliveries"][0])

    def expire_tokens(self) -> None:
        """Every issued token stops working (as when `expires_in` ran out)."""
        with self._lock:
            self._tokens.clear()

    # --- routes ----------------------------------------------------------------------------

    def _token(self, request: PeerRequest) -> Answer:
        body = request.json() or {}
        if body.get("grant_type") != "client_credentials":
            return 400, _errors(400, "unsupported_grant_type", "grant_type is not supported")
        if (
            body.get("client_id") != self._secrets["client_id"]
            or body.get("client_secret") != self._secrets["client_secret"]
        ):
            return 401, _errors(401, "invalid_client", "Client authentication failed")
        token = secrets.token_urlsafe(24)
        with self._lock:
            self._tokens.add(token)
        return 200, {"token_type": "Bearer", "expires_in": 600, "access_token": token}

    def _authorized(self, handler: Any) -> Any:
        def guarded(request: PeerRequest) -> Answer:
            token = request.headers.get("authorization", "").removeprefix("Bearer ")
            with self._lock:
                known = token in self._tokens
            if not known:
                return 401, _errors(401, "FRAMEWORK__UNAUTHORIZED", "The resource owner denied")
            answer: Answer = handler(request)
            return answer

        return guarded

    def _search(self, request: PeerRequest) -> Answer:
        ids = (request.json() or {}).get("ids") or []
        with self._lock:
            found = [copy.deepcopy(self._orders[i]) for i in ids if i in self._orders]
        return 200, {"total": len(found), "data": found, "aggregations": []}

    def _country(self, request: PeerRequest) -> Answer:
        country = self._countries.get(request.params["id"])
        if country is None:
            return 404, _errors(404, "FRAMEWORK__ENTITY_NOT_FOUND", "country not found")
        return 200, {"data": country}

    def _find_delivery(self, delivery_id: str) -> dict[str, Any] | None:
        for order in self._orders.values():
            for delivery in order["deliveries"]:
                if delivery["id"] == delivery_id:
                    found: dict[str, Any] = delivery
                    return found
        return None

    def _patch(self, request: PeerRequest) -> Answer:
        body = request.json() or {}
        with self._lock:
            delivery = self._find_delivery(request.params["id"])
            if delivery is None:
                return 404, _errors(404, "FRAMEWORK__ENTITY_NOT_FOUND", "order_delivery")
            if "trackingCodes" in body:
                delivery["trackingCodes"] = list(body["trackingCodes"])
            if "customFields" in body:
                merged = dict(delivery.get("customFields") or {})
                merged.update(body["customFields"])
                delivery["customFields"] = merged
                for shipment_id in body["customFields"].get(PARCELS_FIELD) or {}:
                    self._patches.setdefault(shipment_id, body)
        return 204, b""

    def _transition(self, request: PeerRequest) -> Answer:
        with self._lock:
            delivery = self._find_delivery(request.params["id"])
            if delivery is None:
                return 404, _errors(404, "FRAMEWORK__ENTITY_NOT_FOUND", "order_delivery")
            state = delivery["stateMachineState"]["technicalName"]
            target = TRANSITIONS.get((state, request.params["transition"]))
            if target is None:
                return 400, _errors(
                    400,
                    "SYSTEM__ILLEGAL_STATE_TRANSITION",
                    f'Illegal transition "{request.params["transition"]}" from state "{state}".',
                )
            delivery["stateMachineState"] = {"technicalName": target, "name": target}
        return 200, {"data": {"technicalName": target, "name": target}}


def _find(value: Any, key: str) -> list[Any]:
    """Every value stored under `key` anywhere inside `value`."""
    found: list[Any] = []
    if isinstance(value, dict):
        for k, v in value.items():
            if k == key:
                found.append(v)
            found.extend(_find(v, key))
    elif isinstance(value, list):
        for v in value:
            found.extend(_find(v, key))
    return found
