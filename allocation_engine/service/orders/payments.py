"""Money in and out: payment events, cancelling an order, refunds and credit notes.

A payment moves only by a provider's event (a verified webhook or a trusted report) or by a
step of the workflow; money goes back when an order is cancelled or a return is accepted.
Every call to a provider carries an idempotency key derived from the stored order (never from
the call: a command's rerun, a racing command or a retry after a crash sends the same key), so
nothing is paid or refunded twice; how a payment moves by an event is in `paying.py`.
"""

from __future__ import annotations

from allocation_engine.errors import InvalidInput
from allocation_engine.orders.commands import CancelOrder, RecordPayment
from allocation_engine.orders.draft import Draft
from allocation_engine.orders.events import EventType
from allocation_engine.orders.machines import OrderState, PaymentState, ShipmentState
from allocation_engine.orders.model import FlowStatus, OrderRecord
from allocation_engine.service.orders.core import FlowCore
from allocation_engine.service.orders.gateways import Gateways
from allocation_engine.service.orders.paying import apply_opening, pay
from allocation_engine.service.orders.steps import open_payment

__all__ = ["apply_opening", "cancel", "pay", "record_payment"]


def record_payment(core: FlowCore, command: RecordPayment) -> OrderRecord | None:
    """Applies a payment event; None when a webhook carries an event type we ignore.

    A webhook is verified and read by its provider; its key defaults to the provider's event
    id, so the provider redelivering it changes nothing. The fingerprint covers the order id
    and the event as read, not the raw webhook, whose signature may differ on every delivery.
    """
    event, key = command.event, command.idempotency_key
    if command.payload:
        provider = core.gateways.payments.get(command.provider)
        if provider is None:
            raise InvalidInput.one(
                "webhook.provider", command.provider, f"one of {sorted(core.gateways.payments)}"
            )
        event = provider.parse_webhook(command.payload, command.signature)
        if event is None:
            return None
        key = key or f"webhook:{command.provider}:{event.event_id}"
    if event is None:
        raise InvalidInput.one("event", None, "give a payment event or a webhook")
    order_id = command.order_id or event.order_id
    if event.order_id and command.order_id and event.order_id != command.order_id:
        raise InvalidInput.one("order_id", command.order_id, f"the event is for {event.order_id}")
    if not order_id:
        raise InvalidInput.one("order_id", order_id, "is required")
    paid = event
    return core.change(order_id, key, (command.order_id, paid), lambda d: pay(d, paid))


def cancel(core: FlowCore, command: CancelOrder) -> OrderRecord:
    """Cancels an order whose goods have not gone to the WMS: holds released, money back."""
    return core.change(
        command.order_id,
        command.idempotency_key,
        command,
        lambda d: _cancel(core.gateways, d, command.reason),
    )


def _cancel(gateways: Gateways, d: Draft, reason: str) -> None:
    """Every transition first (an order already released raises before money moves), then
    the captured money refunded or the open payment voided, then the stock released.

    An order whose payment was never opened (the call that placed it died right after storing
    it) may still have one at the provider: the opening is repeated under its own key, which
    answers with that payment if there is one, and that is voided. Likewise an order that
    records no hold may have one that a dead call took under the next attempt's key: it is
    given back by that key."""
    at_a_node = any(s.state is not ShipmentState.PENDING for s in d.record.live_shipments)
    # A released order whose every parcel its node rejected (held for an operator) has nothing
    # at a warehouse any more: it may be cancelled like one that never got there.
    released_but_empty = d.record.state is OrderState.RELEASED and not at_a_node
    d.order_to("cancel_rest" if released_but_empty else "cancel")
    for shipment in d.record.live_shipments:
        d.shipment_to(shipment, "cancel")
    if not d.record.payment.opened:
        open_payment(gateways, d)
    payment = d.record.payment
    provider = gateways.payment(d)
    key = d.record.key("cancel")
    if payment.state in (PaymentState.CAPTURED, PaymentState.PARTIALLY_REFUNDED):
        amount = payment.captured - payment.refunded
        refund_id = provider.refund(payment.reference, amount, key)
        d.payment_to("refund_rest", refunded=payment.captured)
        d.emit(
            EventType.REFUND_ISSUED, amount=amount, refund_id=refund_id, reason="order cancelled"
        )
    elif payment.state is not PaymentState.VOIDED:
        if payment.reference:
            provider.cancel(payment.reference, key)
        d.payment_to("void")
        d.emit(EventType.PAYMENT_VOIDED, reference=payment.reference)
    # Each stock call has a key of its own: a rerun of this cancel after another call moved
    # the order on (a new reserve attempt, say) asks about another reservation.
    if d.record.reservation_id:
        for rid in sorted(d.record.reservations):
            gateways.stock.release(rid, d.record.key(f"cancel:release:{rid}"))
    else:  # a call that held the stock may have died before it could record the hold
        hold_key = d.record.key(f"reserve:{d.record.reserve_attempt}")
        gateways.stock.abandon(hold_key, d.record.key(f"cancel:abandon:{hold_key}"))
    d.update(status=FlowStatus.CANCELLED, blocked_reason="")
    d.emit(EventType.ORDER_CANCELLED, reason=reason)
