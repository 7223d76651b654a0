"""JSON forms of what the Redis store keeps as values: nodes and reservation records.

Each reader is the inverse of its writer beside it (the plain-JSON order and plan codecs of
`allocation_engine.codec` are reused where they exist).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from allocation_engine.engine import Node, Plan, Shipment, ShipmentLine, Shortfall, Status
from allocation_engine.engine.codec import node_from_dict, plan_to_dict
from allocation_engine.engine.supply import LotTake
from allocation_engine.ports.inventory import ReservationRecord, ReservationState


def node_to_dict(node: Node) -> dict[str, Any]:
    """The inverse of `codec.node_from_dict`."""
    return {
        "id": node.id,
        "type": node.type.value,
        "latitude": node.latitude,
        "longitude": node.longitude,
        "country": node.country,
        "ships_to": sorted(node.ships_to),
        "unit_handling_cost": node.unit_handling_cost,
        "shipment_surcharge": node.shipment_surcharge,
        "capacity": node.capacity,
        "active": node.active,
        "tags": sorted(node.tags),
    }


def node_to_json(node: Node) -> str:
    return json.dumps(node_to_dict(node), separators=(",", ":"))


def node_from_json(text: str) -> Node:
    return node_from_dict(json.loads(text))


def plan_from_dict(data: Mapping[str, Any]) -> Plan:
    """The inverse of `codec.plan_to_dict` (without explanations, which are not stored).

    A plan stored before the rules name and version were two fields carries them as one
    "rules": "name@version" string; it is split here so those records still load.
    """
    gap = data["optimality_gap"]
    if "rules_name" in data:
        rules_name, rules_version = data["rules_name"], data["rules_version"]
    else:
        rules_name, _, rules_version = str(data.get("rules", "")).rpartition("@")
        if not rules_name:  # no "@": the whole string is the name
            rules_name, rules_version = rules_version, ""
    return Plan(
        order_id=data["order_id"],
        method=data["method"],
        status=Status(data["status"]),
        shipments=tuple(
            Shipment(
                s["node_id"],
                tuple(ShipmentLine(line["sku"], line["quantity"]) for line in s["lines"]),
                s["distance_km"],
                s["cost"],
                s.get("transfer_to", ""),
                s.get("ship_day", 0),
                tuple(LotTake(t["lot_id"], t["sku"], t["units"]) for t in s.get("lots", ())),
            )
            for s in data["shipments"]
        ),
        total_cost=data["total_cost"],
        optimality_gap=math.nan if gap is None else gap,
        unfilled=tuple(ShipmentLine(u["sku"], u["quantity"]) for u in data["unfilled"]),
        shortfalls=tuple(_shortfall(s) for s in data["shortfalls"]),
        rules_name=rules_name,
        rules_version=rules_version,
        candidates=data["candidates"],
        solver_candidates=data["solver_candidates"],
    )


def _shortfall(data: Mapping[str, Any]) -> Shortfall:
    return Shortfall(data["sku"], data["requested"], data["available"])


def exact_plan_to_dict(plan: Plan) -> dict[str, Any]:
    """`codec.plan_to_dict` with every float as it is (JSON keeps a float exactly, and the
    codec rounds for people): a retried Reserve answers the plan of the first call bit for bit."""
    out = plan_to_dict(plan)
    out["total_cost"] = plan.total_cost
    for stored, shipment in zip(out["shipments"], plan.shipments, strict=True):
        stored["distance_km"], stored["cost"] = shipment.distance_km, shipment.cost
    return out


def reservation_to_json(record: ReservationRecord) -> str:
    return json.dumps(
        {
            "id": record.id,
            "idempotency_key": record.idempotency_key,
            "fingerprint": record.fingerprint,
            "order_id": record.order_id,
            "state": record.state.value,
            "created_at": record.created_at,
            "expires_at": record.expires_at,
            "attempt": record.attempt,
            "plan": None if record.plan is None else exact_plan_to_dict(record.plan),
            "shortfalls": [
                {"sku": s.sku, "requested": s.requested, "available": s.available}
                for s in record.shortfalls
            ],
            "owner": record.owner,
            "lease_until": record.lease_until,
            "release_as": None if record.release_as is None else record.release_as.value,
        },
        separators=(",", ":"),
    )


def reservation_from_json(text: str) -> ReservationRecord:
    data = json.loads(text)
    return ReservationRecord(
        id=data["id"],
        idempotency_key=data["idempotency_key"],
        fingerprint=data["fingerprint"],
        order_id=data["order_id"],
        state=ReservationState(data["state"]),
        created_at=data["created_at"],
        expires_at=data["expires_at"],
        attempt=data["attempt"],
        plan=None if data["plan"] is None else plan_from_dict(data["plan"]),
        shortfalls=tuple(_shortfall(s) for s in data["shortfalls"]),
        owner=data["owner"],
        lease_until=data["lease_until"],
        release_as=ReservationState(data["release_as"]) if data.get("release_as") else None,
    )
