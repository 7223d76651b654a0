"""Money back for part of an order: accepted returns, and units no node could send.

Every refund carries a key derived from the stored order, so a rerun or a retry after a crash
refunds nothing twice (see `payments.py`).
"""

from __future__ import annotations

from typing import Any

from allocation_engine.orders.draft import Draft
from allocation_engine.orders.events import EventType
from allocation_engine.service.orders.gateways import Gateways


def refund(gateways: Gateways, d: Draft, amount: int, key: str, **cause: Any) -> None:
    """Pays back `amount`: what was collected goes back to the customer, the rest (not
    collected yet, an open invoice say) is credited, lowering what the customer owes. `cause`
    (the return's id, a reason) goes into the events."""
    payment = d.record.payment
    cash = min(amount, payment.captured - payment.refunded)
    credit = amount - cash
    if cash > 0:
        refund_id = gateways.payment(d).refund(payment.reference, cash, f"{key}:refund")
        refunded = payment.refunded + cash
        d.payment_to(
            "refund_rest" if refunded == payment.captured else "refund_some", refunded=refunded
        )
        d.emit(EventType.REFUND_ISSUED, amount=cash, refund_id=refund_id, **cause)
    if credit > 0:
        payment = d.record.payment
        d.payment_to("credit", amount=payment.amount - credit, credited=payment.credited + credit)
        d.emit(EventType.CREDIT_ISSUED, amount=credit, **cause)
