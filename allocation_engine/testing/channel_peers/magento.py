"""A local Magento 2.4 store's REST API: the order search with `searchCriteria`, one order, the
shipment search and `POST /V1/order/{id}/ship`, all behind an integration bearer token.

The search understands what Magento does: filter groups ANDed, the filters inside one group
ORed, the condition types `eq`, `neq`, `gt`, `gteq`, `lt`, `lteq`, `in`, sort orders in turn,
`pageSize` and `currentPage`, and answers `{items, search_criteria, total_count}`. Creating a
shipment checks each `order_item_id` and quantity against what is left to ship and books it
on the order, as Magento does; like Magento it does not deduplicate a repeated POST (the
adapter must look first), and refuses units beyond the ordered quantity.
"""

from __future__ import annotations

import copy
import operator
import re
from collections.abc import Callable
from typing import Any

from allocation_engine.testing.http_peer import Answer, HttpPeer, PeerRequest

TOKEN = "magento-integration-token-4c1f9e7a2b"
_FILTER = re.compile(
    r"searchCriteria\[(?:filter_groups|filterGroups)\]\[(\d+)\]\[filters\]\[(\d+)\]"
    r"\[(field|value|condition_type|conditionType)\]"
)
_SORT = re.compile(r"searchCriteria\[(?:sort_orders|sortOrders)\]\[(\d+)\]\[(field|direction)\]")


def _compare(left: Any, right: str) -> tuple[Any, Any]:
    """Both sides as numbers when both read as numbers, else as text (Magento's times compare
    as text in their `YYYY-MM-DD HH:MM:SS` form)."""
    try:
        return float(left), float(right)
    except (TypeError, ValueError):
        return str(left), right


COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": operator.eq,
    "neq": operator.ne,
    "gt": operator.gt,
    "gteq": operator.ge,
    "lt": operator.lt,
    "lteq": operator.le,
}


def _holds(condition: str, value: Any, wanted: str) -> bool:
    """Whether an entity's `value` meets the filter (`in` takes a comma-separated list)."""
    if condition == "in":
        return str(value) in wanted.split(",")
    return COMPARISONS[condition](*_compare(value, wanted))


class MagentoPeer(HttpPeer):
    """Plays one Magento store. `sample` is an order as `GET /V1/orders/{id}` answers it."""

    kind = "magento"

    def __init__(self, sample: dict[str, Any]) -> None:
        super().__init__()
        self.sample = sample
        self.orders: dict[int, dict[str, Any]] = {}
        self.shipments: list[dict[str, Any]] = []
        self.ship_requests: dict[int, list[dict[str, Any]]] = {}
        self.route("GET", "/rest/V1/orders", self._search_orders)
        self.route("GET", "/rest/{store}/V1/orders", self._search_orders)
        self.route("GET", "/rest/V1/orders/{id}", self._order)
        self.route("GET", "/rest/{store}/V1/orders/{id}", self._order)
        self.route("GET", "/rest/V1/shipments", self._search_shipments)
        self.route("GET", "/rest/{store}/V1/shipments", self._search_shipments)
        self.route("POST", "/rest/V1/order/{id}/ship", self._ship)
        self.route("POST", "/rest/{store}/V1/order/{id}/ship", self._ship)

    # --- PlatformPeer ------------------------------------------------------------------------

    def secrets(self) -> dict[str, str]:
        return {"access_token": TOKEN}

    def options(self) -> dict[str, Any]:
        return {"created_after": "2026-01-01T00:00:00Z", "page_size": 20}

    def skus(self) -> dict[str, str]:
        """The sample's item skus, in order of appearance, -> SKU-0001, SKU-0002, ..."""
        seen = list(dict.fromkeys(str(i["sku"]) for i in self.sample.get("items", [])))
        return {sku: f"SKU-{n:04d}" for n, sku in enumerate(seen, start=1)}

    def new_order(self, edge_url: str, channel: str) -> str:
        """Lists the sample for the next poll (Magento has no webhook); its `entity_id`."""
        return self.add_order(copy.deepcopy(self.sample))

    def confirmations(self, external_id: str) -> list[dict[str, Any]]:
        found = []
        for shipment, raw in zip(
            self._shipments_of(external_id),
            self.ship_requests.get(int(external_id), []),
            strict=True,
        ):
            track = (shipment["tracks"] or [{}])[0]
            lines: dict[str, int] = {}
            for item in shipment["items"]:
                lines[item["sku"]] = lines.get(item["sku"], 0) + int(item["qty"])
            found.append(
                {
                    "carrier": track.get("title", ""),
                    "tracking_number": track.get("track_number", ""),
                    "lines": lines,
                    "raw": raw,
                }
            )
        return found

    # --- for tests ---------------------------------------------------------------------------

    def add_order(self, order: dict[str, Any]) -> str:
        """Puts an order (in the `GET /V1/orders/{id}` shape) into the store."""
        with self._lock:
            self.orders[int(order["entity_id"])] = order
        return str(order["entity_id"])

    # --- routes ------------------------------------------------------------------------------

    def _authorized(self, request: PeerRequest) -> Answer | None:
        """Magento's 401 for a missing or wrong bearer token, else None."""
        if request.headers.get("authorization") == f"Bearer {TOKEN}":
            return None
        return 401, {
            "message": "The consumer isn't authorized to access %resources.",
            "parameters": {"resources": "Magento_Sales::sales"},
        }

    def _search_orders(self, request: PeerRequest) -> Answer:
        refused = self._authorized(request)
        if refused:
            return refused
        with self._lock:
            orders = [copy.deepcopy(o) for o in self.orders.values()]
        return 200, _search(orders, request)

    def _order(self, request: PeerRequest) -> Answer:
        refused = self._authorized(request)
        if refused:
            return refused
        with self._lock:
            order = self.orders.get(int(request.params["id"]))
            if order is None:
                return 404, {"message": "The entity that was requested doesn't exist."}
            return 200, copy.deepcopy(order)

    def _search_shipments(self, request: PeerRequest) -> Answer:
        refused = self._authorized(request)
        if refused:
            return refused
        with self._lock:
            shipments = copy.deepcopy(self.shipments)
        return 200, _search(shipments, request)

    def _ship(self, request: PeerRequest) -> Answer:
        """Magento's ShipOrder: validates the items against what is left, books the quantities
        on the order's rows (and a configurable's child), stores the shipment, answers its id."""
        refused = self._authorized(request)
        if refused:
            return refused
        body = request.json()
        order_id = int(request.params["id"])
        with self._lock:
            order = self.orders.get(order_id)
            if order is None:
                return 404, {"message": "The entity that was requested doesn't exist."}
            rows = {int(i["item_id"]): i for i in order["items"]}
            shipped = []
            for wanted in body.get("items") or []:
                row = rows.get(int(wanted.get("order_item_id", 0)))
                qty = int(wanted.get("qty", 0))
                through_parent = row is not None and _parent_type(rows, row) == "configurable"
                if row is None or through_parent:
                    return 400, _invalid("order_item_id", wanted.get("order_item_id"))
                if qty < 1 or qty > int(row["qty_ordered"]) - int(row.get("qty_shipped") or 0):
                    return 400, {
                        "message": "Shipment Document Validation Error(s):\n"
                        "The order does not allow a shipment to be created.\n"
                        "You can't create a shipment without products."
                    }
                shipped.append((row, qty))
            if not shipped:
                return 400, {
                    "message": "Shipment Document Validation Error(s):\n"
                    "You can't create a shipment without products."
                }
            shipment_id = 3000 + len(self.shipments) + 1
            for row, qty in shipped:
                row["qty_shipped"] = int(row.get("qty_shipped") or 0) + qty
                for child in order["items"]:
                    if child.get("parent_item_id") == row["item_id"]:
                        child["qty_shipped"] = int(child.get("qty_shipped") or 0) + qty
            comment = body.get("comment") or {}
            self.shipments.append(
                {
                    "entity_id": shipment_id,
                    "increment_id": f"{shipment_id:09d}",
                    "order_id": order_id,
                    "total_qty": sum(q for _, q in shipped),
                    "items": [
                        {
                            "order_item_id": row["item_id"],
                            "parent_id": shipment_id,
                            "product_id": row.get("product_id"),
                            "sku": row["sku"],
                            "name": row.get("name", ""),
                            "qty": qty,
                        }
                        for row, qty in shipped
                    ],
                    "tracks": [
                        {**track, "order_id": order_id, "parent_id": shipment_id}
                        for track in body.get("tracks") or []
                    ],
                    "comments": (
                        [{**comment, "parent_id": shipment_id}] if comment.get("comment") else []
                    ),
                }
            )
            self.ship_requests.setdefault(order_id, []).append(body)
        return 200, shipment_id

    def _shipments_of(self, external_id: str) -> list[dict[str, Any]]:
        with self._lock:
            return [s for s in self.shipments if str(s["order_id"]) == str(external_id)]


def _search(entities: list[dict[str, Any]], request: PeerRequest) -> dict[str, Any]:
    """Magento's `searchCriteria` over `entities`: the page and the count of all matches."""
    groups: dict[int, dict[int, dict[str, str]]] = {}
    sorts: dict[int, dict[str, str]] = {}
    for key, values in request.query.items():
        if found := _FILTER.fullmatch(key):
            part = {"conditionType": "condition_type"}.get(found[3], found[3])
            groups.setdefault(int(found[1]), {}).setdefault(int(found[2]), {})[part] = values[0]
        elif found := _SORT.fullmatch(key):
            sorts.setdefault(int(found[1]), {})[found[2]] = values[0]

    def matches(entity: dict[str, Any]) -> bool:
        return all(
            any(
                _holds(f.get("condition_type", "eq"), entity.get(f["field"]), f["value"])
                for f in group.values()
            )
            for group in groups.values()
        )

    chosen = [e for e in entities if matches(e)]
    for index in sorted(sorts, reverse=True):  # stable sorts, last key first
        order = sorts[index]
        chosen.sort(
            key=_by(order["field"]),
            reverse=order.get("direction", "ASC").upper() == "DESC",
        )
    size = int(request.arg("searchCriteria[pageSize]", "0") or 0)
    page = max(1, int(request.arg("searchCriteria[currentPage]", "1") or 1))
    items = chosen[(page - 1) * size : page * size] if size else chosen
    return {
        "items": items,
        "search_criteria": {"filter_groups": [], "page_size": size, "current_page": page},
        "total_count": len(chosen),
    }


def _by(field: str) -> Callable[[dict[str, Any]], tuple[int, float, str]]:
    """The sort key of `field`: numbers before text, numbers by value (entity ids), text as
    text (times)."""

    def key(entity: dict[str, Any]) -> tuple[int, float, str]:
        try:
            return 0, float(entity.get(field)), ""  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return 1, 0.0, str(entity.get(field))

    return key


def _parent_type(rows: dict[int, dict[str, Any]], row: dict[str, Any]) -> str:
    """The product type of the row's parent ("configurable", "bundle"), "" for a top row."""
    parent = rows.get(int(row.get("parent_item_id") or 0)) or {}
    return str(parent.get("product_type", ""))


def _invalid(field: str, value: Any) -> dict[str, Any]:
    return {
        "message": 'The "%1" value is invalid for "%2".',
        "parameters": [str(value), field],
    }
