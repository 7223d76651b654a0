"""Moving an order's payment on a `Draft` by what its provider said: the answer to opening the
payment, and the provider's later events (a webhook or a trusted report).

Pure: a draft in, transitions and events on it; nothing here calls a provider. The workflow's
steps (opening the payment first of all) and the payment commands both move payments through
these two functions, so a provider's answer means the same wherever it arrives.
"""

from __future__ import annotations

from allocation_engine.errors import InvalidInput
from allocation_engine.orders.draft import Draft
from allocation_engine.orders.events import EventType
from allocation_engine.orders.machines import PaymentState
from allocation_engine.orders.payments import PaymentEvent, PaymentEventKind
from allocation_engine.ports.payments import PaymentOpened


def apply_opening(d: Draft, opened: PaymentOpened) -> bool:
    """Records an authorization or failure that came with opening the payment (a card that
    authorizes at checkout); False when the provider answered neither yet."""
    if opened.authorized:
        pay(d, PaymentEvent(PaymentEventKind.AUTHORIZED, opened.authorized, opened.reference))
    elif opened.failure:
        pay(d, PaymentEvent(PaymentEventKind.FAILED, 0, opened.reference, reason=opened.failure))
    else:
        return False
    return True


def pay(d: Draft, event: PaymentEvent) -> None:
    """Moves the payment by a provider event. A report of the state the payment is already in
    (a webhook echoing our own capture, say) changes nothing."""
    payment = d.record.payment
    if event.reference and payment.reference and event.reference != payment.reference:
        raise InvalidInput.one(
            "event.reference", event.reference, f"the order's payment is {payment.reference}"
        )
    if event.amount < 0:
        raise InvalidInput.one("event.amount", event.amount, "must be >= 0")
    match event.kind:
        case PaymentEventKind.AUTHORIZED:
            if payment.state is PaymentState.AUTHORIZED and payment.authorized == event.amount:
                return
            if event.amount < payment.amount:
                raise InvalidInput.one(
                    "event.amount", event.amount, f"authorizes less than the {payment.amount} due"
                )
            d.payment_to("authorize", authorized=event.amount, failure="")
            d.emit(EventType.PAYMENT_AUTHORIZED, amount=event.amount, reference=payment.reference)
        case PaymentEventKind.CAPTURED:
            if payment.state is not PaymentState.PENDING and payment.captured == event.amount:
                return
            if event.amount != payment.amount:
                raise InvalidInput.one(
                    "event.amount", event.amount, f"must be the {payment.amount} due"
                )
            d.payment_to("capture", captured=event.amount, failure="")
            d.emit(EventType.PAYMENT_CAPTURED, amount=event.amount, reference=payment.reference)
        case PaymentEventKind.FAILED:
            d.payment_to("fail", failure=event.reason)
            d.emit(EventType.PAYMENT_FAILED, reason=event.reason, reference=payment.reference)
