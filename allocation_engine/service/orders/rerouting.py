"""Rerouting: units a node rejected or picked short are allocated again, at other nodes, at once.

The order's fences hold for the rest as for the whole (`orders/reroute.py`); the new parcels are
held by a reservation of their own and released to their nodes' WMS straight away (or, waiting
for incoming supply, promised its day). When no node can take them (the workflow's cap of
reroutes is reached, a fence forbids another parcel, no other node has the stock) the
workflow's `[reroute] otherwise` decides: cancel those units and refund them, promise them
from incoming supply (backorder: the rest waits for a purchase order or transfer due at any
node, whatever the rules say for other orders), or hold the order for an operator (also what a
backorder comes to when no supply is expected).

Keys: the reroute's hold is keyed by the stored order (its reroute count, the attempt and a
digest of what is asked), so a rerun after a crash or a lost race asks for the same hold; a
refused hold is retried under the next attempt's key (a reservation remembers its refusal).
"""

from __future__ import annotations

from dataclasses import replace

from allocation_engine.engine.order import Order
from allocation_engine.errors import (
    HoldLapsed,
    InsufficientStock,
    PaymentRefused,
    ProviderUnavailable,
)
from allocation_engine.orders.draft import SHIPPED, Draft
from allocation_engine.orders.events import EventType
from allocation_engine.orders.fingerprint import fingerprint
from allocation_engine.orders.machines import OrderState
from allocation_engine.orders.model import FlowStatus, ShipmentItem
from allocation_engine.orders.reroute import Refusal, rest_order
from allocation_engine.service.orders.gateways import Blocked, Gateways, Outcome, Result
from allocation_engine.service.orders.refunds import refund
from allocation_engine.service.orders.release import (
    lines_data,
    new_parcels,
    parcels_data,
    promise_waiting,
    release_ready,
)


def reroute(gateways: Gateways, d: Draft) -> Result:
    """Reroutes what no live parcel carries; DONE when nothing is left to reroute (or the rest
    was cancelled), Blocked when the order is held for an operator."""
    record = d.record
    rest = record.unrouted()
    if not rest:
        return Outcome.DONE
    rule = d.workflow.reroute
    asked = rest_order(record, rest, gateways.stock.shipment_limit(record.order))
    if isinstance(asked, Refusal):
        return _otherwise(gateways, d, rest, asked.reason, None)
    if record.reroutes >= rule.max_reroutes + record.extra_reroutes:
        why = f"the cap of {rule.max_reroutes} reroutes is reached"
        return _otherwise(gateways, d, rest, why, asked)
    refused = _hold_rest(gateways, d, asked, rest)
    if refused:
        return _otherwise(gateways, d, rest, refused, asked)
    return Outcome.DONE


def _hold_rest(gateways: Gateways, d: Draft, asked: Order, rest: tuple[ShipmentItem, ...]) -> str:
    """Holds `asked` and adds its parcels to the order (released, or promised their supply's
    day); "" when done, else why no node can send them."""
    record = d.record
    attempt = f"{record.reroutes}.{record.reroute_attempt}:{fingerprint(asked)[:12]}"
    try:
        hold = gateways.stock.reserve(asked, record.key(f"reroute:{attempt}"))
    except (InsufficientStock, HoldLapsed) as refused:
        d.update(reroute_attempt=record.reroute_attempt + 1)
        why = "no other node can send them"
        if isinstance(refused, InsufficientStock):
            why += ": " + ", ".join(
                f"{s.sku} {s.available} of {s.requested}" for s in refused.shortfalls
            )
        return why
    new = new_parcels(d, hold, hold.reservation_id)
    d.update(reroutes=record.reroutes + 1, reroute_attempt=0)
    d.emit(
        EventType.ORDER_REROUTED,
        reservation_id=hold.reservation_id,
        excluded_nodes=sorted(asked.excluded_nodes),
        lines=lines_data(rest),
        shipments=parcels_data(new),
        backorder=asked.accepts_backorder,
    )
    promise_waiting(d, new)
    release_ready(gateways, d)
    return ""


def _otherwise(
    gateways: Gateways,
    d: Draft,
    rest: tuple[ShipmentItem, ...],
    why: str,
    asked: Order | None,
) -> Result:
    """What the workflow's `[reroute] otherwise` does with units no node can send now;
    `asked` is their order, when the fences allow one."""
    otherwise = d.workflow.reroute.otherwise
    if otherwise == "cancel":
        return cancel_rest(gateways, d, rest, why)
    if otherwise == "backorder" and asked is not None:
        waited = _hold_rest(gateways, d, replace(asked, accepts_backorder=True), rest)
        if not waited:
            return Outcome.DONE
        why = f"{why}; no incoming supply for them either"
    return Blocked(f"reroute not possible: {why}", {"lines": lines_data(rest)})


def cancel_rest(gateways: Gateways, d: Draft, rest: tuple[ShipmentItem, ...], why: str) -> Result:
    """Cancels units no node can send and pays them back; the order goes on with its other
    parcels, or ends cancelled when none is left. A refund the provider refuses or does not
    answer cancels nothing: the order blocks (ResumeOrder tries again, under the same key)."""
    record = d.record
    amount = sum(
        x.quantity * item.unit_price for x in rest if (item := record.item(x.sku)) is not None
    )
    key = record.key(f"cancel-rest:{len(record.cancelled)}")
    before = d.mark()
    d.update(cancelled=record.cancelled + rest)
    d.emit(EventType.LINES_CANCELLED, lines=lines_data(rest), amount=amount, reason=why)
    if amount:
        try:
            refund(gateways, d, amount, key, reason="units no node could send")
        except (PaymentRefused, ProviderUnavailable) as failed:
            d.undo(before)
            return Blocked(f"refund failed: {failed}", {"lines": lines_data(rest)})
    live = d.record.live_shipments
    if not live:
        d.order_to("cancel_rest")
        d.update(status=FlowStatus.CANCELLED, blocked_reason="")
        d.emit(EventType.ORDER_CANCELLED, reason=why)
    elif d.record.state is OrderState.PARTIALLY_SHIPPED and all(s.state in SHIPPED for s in live):
        d.order_to("ship_rest")
    return Outcome.DONE
