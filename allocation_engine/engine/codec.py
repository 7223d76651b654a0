"""Plain-JSON forms of orders, nodes and plans, for the CLI, sample files and replays.

The gRPC edge has its own protobuf mapping; this one serves files and `--json` output. A reader
is an edge too: it names bad fields under what it reads (`order.lines[0].quantity`,
`node.latitude`), adding that prefix to the engine's own names once.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from allocation_engine.engine import (
    CustomerType,
    DeliveryMode,
    InvalidInput,
    Node,
    NodeType,
    Order,
    OrderLine,
    Plan,
    ShipTo,
)
from allocation_engine.errors import ProblemCollector

ORDER_FIELDS = frozenset(
    {
        "id",
        "lines",
        "ship_to",
        "channel",
        "customer_type",
        "delivery_mode",
        "pickup_store_id",
        "excluded_nodes",
        "max_shipments",
        "accepts_backorder",
    }
)
LINE_FIELDS = frozenset({"sku", "quantity", "ship_group"})
SHIP_TO_FIELDS = frozenset({"latitude", "longitude", "country", "postal_code"})


def _object(
    value: Any,
    where: str,
    known: frozenset[str],
    required: tuple[str, ...],
    problems: ProblemCollector,
) -> Mapping[str, Any]:
    """`value` as a JSON object with only `known` keys and every `required` one, else its
    problems (an unknown key is named with the known ones: a typo such as "qty" says so)."""
    if not isinstance(value, Mapping):
        problems.add(where, value, "must be a JSON object")
        return {}
    for key in value:
        if key not in known:
            problems.add(f"{where}.{key}", value[key], f"unknown field (known: {sorted(known)})")
    for key in required:
        if key not in value:
            problems.add(f"{where}.{key}", None, "is required")
    return value


def _number(value: Any, where: str, problems: ProblemCollector) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        problems.add(where, value, "must be a number")
        return math.nan
    return float(value)


def _choice(kind: Any, value: Any, where: str, problems: ProblemCollector) -> Any:
    try:
        return kind(value)
    except ValueError:
        problems.add(where, value, f"must be one of {[m.value for m in kind]}")
        return None


def order_from_dict(data: Any) -> Order:
    """Reads {"id", "lines": [{"sku", "quantity", "ship_group"?}], "ship_to": {...}, ...}.

    Bad input is an InvalidInput naming every field under `order.`, unknown keys included.
    """
    problems = ProblemCollector()
    order = _object(data, "order", ORDER_FIELDS, ("id", "lines", "ship_to"), problems)
    lines = order.get("lines", [])
    if not isinstance(lines, list):
        problems.add("order.lines", lines, "must be a JSON list")
        lines = []
    read = [
        _object(line, f"order.lines[{i}]", LINE_FIELDS, ("sku", "quantity"), problems)
        for i, line in enumerate(lines)
    ]
    ship_to = _object(
        order.get("ship_to", {}),
        "order.ship_to",
        SHIP_TO_FIELDS,
        ("latitude", "longitude", "country"),
        problems,
    )
    latitude = _number(ship_to.get("latitude", 0.0), "order.ship_to.latitude", problems)
    longitude = _number(ship_to.get("longitude", 0.0), "order.ship_to.longitude", problems)
    customer = _choice(
        CustomerType, order.get("customer_type", "B2C"), "order.customer_type", problems
    )
    mode = _choice(
        DeliveryMode,
        order.get("delivery_mode", "ship_to_address"),
        "order.delivery_mode",
        problems,
    )
    excluded = order.get("excluded_nodes", [])
    if not isinstance(excluded, list) or not all(isinstance(n, str) for n in excluded):
        problems.add("order.excluded_nodes", excluded, "must be a JSON list of node ids")
        excluded = []
    problems.raise_if_any()
    try:
        return Order(
            id=str(order["id"]),
            lines=tuple(
                OrderLine(line["sku"], line["quantity"], line.get("ship_group")) for line in read
            ),
            ship_to=ShipTo(
                latitude, longitude, ship_to["country"], str(ship_to.get("postal_code", ""))
            ),
            channel=order.get("channel", "web"),
            customer_type=customer,
            delivery_mode=mode,
            pickup_store_id=order.get("pickup_store_id"),
            excluded_nodes=frozenset(excluded),
            max_shipments=order.get("max_shipments"),
            accepts_backorder=order.get("accepts_backorder", False),
        )
    except InvalidInput as bad:
        raise bad.under("order.") from None


def order_to_dict(order: Order) -> dict[str, Any]:
    return {
        "id": order.id,
        "lines": [
            {"sku": line.sku, "quantity": line.quantity}
            | ({"ship_group": line.ship_group} if line.ship_group else {})
            for line in order.lines
        ],
        "ship_to": {
            "latitude": order.ship_to.latitude,
            "longitude": order.ship_to.longitude,
            "country": order.ship_to.country,
            "postal_code": order.ship_to.postal_code,
        },
        "channel": order.channel,
        "customer_type": order.customer_type.value,
        "delivery_mode": order.delivery_mode.value,
    } | {
        key: value
        for key, value in (
            ("pickup_store_id", order.pickup_store_id),
            ("excluded_nodes", sorted(order.excluded_nodes)),
            ("max_shipments", order.max_shipments),
            ("accepts_backorder", order.accepts_backorder),
        )
        if value
    }


def node_from_dict(data: Mapping[str, Any]) -> Node:
    """Reads one node as `records.node_to_dict` writes it; bad fields are named `node.<field>`."""
    try:
        return Node(
            id=data["id"],
            type=NodeType(data["type"]),
            latitude=float(data["latitude"]),
            longitude=float(data["longitude"]),
            country=data["country"],
            ships_to=frozenset(data.get("ships_to", ())),
            unit_handling_cost=float(data.get("unit_handling_cost", 0.0)),
            shipment_surcharge=float(data.get("shipment_surcharge", 0.0)),
            capacity=data.get("capacity"),
            active=bool(data.get("active", True)),
            tags=frozenset(data.get("tags", ())),
        )
    except InvalidInput as bad:
        raise bad.under("node.") from None
    except KeyError as missing:
        raise InvalidInput.one(f"node.{missing.args[0]}", None, "is required") from None
    except (TypeError, ValueError) as bad:
        raise InvalidInput.one("node", dict(data), str(bad)) from None


def plan_to_dict(plan: Plan, *, explain: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "order_id": plan.order_id,
        "method": plan.method,
        "status": plan.status.value,
        "total_cost": round(plan.total_cost, 6),
        "optimality_gap": None if math.isnan(plan.optimality_gap) else plan.optimality_gap,
        "shipments": [
            {
                "node_id": s.node_id,
                "lines": [{"sku": line.sku, "quantity": line.quantity} for line in s.lines],
                "distance_km": round(s.distance_km, 3),
                "cost": round(s.cost, 6),
                **({"transfer_to": s.transfer_to} if s.transfer_to else {}),
                **({"ship_day": s.ship_day} if s.ship_day else {}),
                **(
                    {"lots": [{"lot_id": t.lot_id, "sku": t.sku, "units": t.units} for t in s.lots]}
                    if s.lots
                    else {}
                ),
            }
            for s in plan.shipments
        ],
        "unfilled": [{"sku": line.sku, "quantity": line.quantity} for line in plan.unfilled],
        "shortfalls": [
            {"sku": s.sku, "requested": s.requested, "available": s.available}
            for s in plan.shortfalls
        ],
        "rules_name": plan.rules_name,
        "rules_version": plan.rules_version,
        "candidates": plan.candidates,
        "solver_candidates": plan.solver_candidates,
    }
    if explain:
        out["explanations"] = [
            {"node_id": e.node_id, "reason": e.reason.name, "detail": e.detail}
            for e in plan.explanations
        ]
    return out
