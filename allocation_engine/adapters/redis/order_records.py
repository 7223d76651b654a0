"""JSON forms of workflow records (orders, customers, events) for the Redis order store.

Each `x_to_json` is paired with `x_from_json`; a round trip gives an equal object (the store's
shared test suite checks it on every write and read).
"""

from __future__ import annotations

import json
from typing import Any

from allocation_engine.engine.codec import order_from_dict, order_to_dict
from allocation_engine.engine.order import CustomerType, DeliveryMode
from allocation_engine.orders.machines import OrderState, PaymentState, ReturnState, ShipmentState
from allocation_engine.orders.model import (
    Address,
    Customer,
    DeliveryPreferences,
    Event,
    FlowStatus,
    Item,
    OrderRecord,
    Payment,
    PriceTerms,
    Return,
    ReturnLine,
    Shipment,
    ShipmentItem,
)


def _compact(data: Any) -> str:
    return json.dumps(data, separators=(",", ":"), sort_keys=True)


def customer_to_json(c: Customer) -> str:
    return _compact(
        {
            "id": c.id,
            "email": c.email,
            "name": c.name,
            "language": c.language,
            "customer_type": c.customer_type.value,
            "created_at": c.created_at,
            "terms": [c.terms.payment_terms_days, c.terms.discount_basis_points],
            "delivery": [c.delivery.mode, c.delivery.pickup_store_id],
        }
    )


def customer_from_json(text: str) -> Customer:
    d = json.loads(text)
    return Customer(
        d["id"],
        d["email"],
        d["name"],
        d["language"],
        CustomerType(d["customer_type"]),
        d["created_at"],
        PriceTerms(*d.get("terms", (0, 0))),
        _delivery(*d.get("delivery", (None, ""))),
    )


def _delivery(mode: str | None, pickup_store_id: str) -> DeliveryPreferences:
    return DeliveryPreferences(None if mode is None else DeliveryMode(mode), pickup_store_id)


def event_to_json(e: Event) -> str:
    return _compact(
        {"order_id": e.order_id, "seq": e.seq, "type": e.type, "at": e.at, "data": e.data}
    )


def event_from_json(text: str) -> Event:
    d = json.loads(text)
    return Event(d["order_id"], d["seq"], d["type"], d["at"], d["data"])


def order_to_json(r: OrderRecord) -> str:
    p = r.payment
    return _compact(
        {
            "id": r.id,
            "channel": r.channel,
            "external_id": r.external_id,
            "customer_id": r.customer_id,
            "workflow": r.workflow,
            "order": order_to_dict(r.order),
            "items": [[i.sku, i.quantity, i.unit_price, i.name] for i in r.items],
            "currency": r.currency,
            "payment": {
                "provider": p.provider,
                "amount": p.amount,
                "state": p.state.value,
                "reference": p.reference,
                "client_secret": p.client_secret,
                "authorized": p.authorized,
                "captured": p.captured,
                "refunded": p.refunded,
                "credited": p.credited,
                "due_at": p.due_at,
                "failure": p.failure,
                "opened": p.opened,
                "method": p.method,
            },
            "address": [
                r.address.name,
                r.address.street,
                r.address.postal_code,
                r.address.city,
                r.address.country,
            ],
            "state": r.state.value,
            "status": r.status.value,
            "step": r.step,
            "blocked_reason": r.blocked_reason,
            "reservation_id": r.reservation_id,
            "reserve_attempt": r.reserve_attempt,
            "capture_attempt": r.capture_attempt,
            "shipments": [
                {
                    "id": s.id,
                    "node_id": s.node_id,
                    "lines": [[x.sku, x.quantity] for x in s.lines],
                    "state": s.state.value,
                    "carrier": s.carrier,
                    "tracking_number": s.tracking_number,
                    "shipped_at": s.shipped_at,
                    "delivered_at": s.delivered_at,
                    "reservation_id": s.reservation_id,
                    "reason": s.reason,
                    "ready_on": s.ready_on,
                }
                for s in r.shipments
            ],
            "reroutes": r.reroutes,
            "reroute_attempt": r.reroute_attempt,
            "extra_reroutes": r.extra_reroutes,
            "cancelled": [[x.sku, x.quantity] for x in r.cancelled],
            "returns": [
                {
                    "id": t.id,
                    "lines": [
                        [x.sku, x.requested, x.received, x.restocked, x.written_off]
                        for x in t.lines
                    ],
                    "state": t.state.value,
                    "reason": t.reason,
                    "node_id": t.node_id,
                    "refund": t.refund,
                    "requested_at": t.requested_at,
                    "key": t.key,
                }
                for t in r.returns
            ],
            "version": r.version,
            "events": r.events,
            "created_at": r.created_at,
            "updated_at": r.updated_at,
            "fingerprint": r.fingerprint,
            "keys": dict(r.keys),
            "nonce": r.nonce,
        }
    )


def order_from_json(text: str) -> OrderRecord:
    d = json.loads(text)
    p = d["payment"]
    return OrderRecord(
        id=d["id"],
        channel=d["channel"],
        external_id=d["external_id"],
        customer_id=d["customer_id"],
        workflow=d["workflow"],
        order=order_from_dict(d["order"]),
        items=tuple(Item(*i) for i in d["items"]),
        currency=d["currency"],
        payment=Payment(
            provider=p["provider"],
            amount=p["amount"],
            state=PaymentState(p["state"]),
            reference=p["reference"],
            client_secret=p["client_secret"],
            authorized=p["authorized"],
            captured=p["captured"],
            refunded=p["refunded"],
            credited=p["credited"],
            due_at=p["due_at"],
            failure=p["failure"],
            opened=p.get("opened", True),  # written before placing committed first: opened
            method=p.get("method", ""),
        ),
        address=Address(*d["address"]),
        state=OrderState(d["state"]),
        status=FlowStatus(d["status"]),
        step=d["step"],
        blocked_reason=d["blocked_reason"],
        reservation_id=d["reservation_id"],
        reserve_attempt=d["reserve_attempt"],
        capture_attempt=d.get("capture_attempt", 0),  # absent in records written before it
        shipments=tuple(
            Shipment(
                id=s["id"],
                node_id=s["node_id"],
                lines=tuple(ShipmentItem(*x) for x in s["lines"]),
                state=ShipmentState(s["state"]),
                carrier=s["carrier"],
                tracking_number=s["tracking_number"],
                shipped_at=s["shipped_at"],
                delivered_at=s["delivered_at"],
                reservation_id=s.get("reservation_id", ""),  # absent before reroutes
                reason=s.get("reason", ""),
                ready_on=s.get("ready_on", ""),
            )
            for s in d["shipments"]
        ),
        reroutes=d.get("reroutes", 0),
        reroute_attempt=d.get("reroute_attempt", 0),
        extra_reroutes=d.get("extra_reroutes", 0),
        cancelled=tuple(ShipmentItem(*x) for x in d.get("cancelled", [])),
        returns=tuple(
            Return(
                id=t["id"],
                lines=tuple(ReturnLine(*x) for x in t["lines"]),
                state=ReturnState(t["state"]),
                reason=t["reason"],
                node_id=t["node_id"],
                refund=t["refund"],
                requested_at=t["requested_at"],
                key=t["key"],
            )
            for t in d["returns"]
        ),
        version=d["version"],
        events=d["events"],
        created_at=d["created_at"],
        updated_at=d["updated_at"],
        fingerprint=d["fingerprint"],
        keys=d["keys"],
        nonce=d["nonce"],
    )
