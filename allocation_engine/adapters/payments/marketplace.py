"""Paid on the marketplace: Amazon, eBay or AliExpress collected the money from the buyer and
pays the seller out; there is nothing for us to authorize or capture.

The payment opens authorized for the whole amount under the order's own reference
(`MKT-<order id>`), and capturing records what the marketplace already holds. A refund (a
cancelled line, an accepted return) is issued on the marketplace by its own refund flow; the
number recorded here follows from the idempotency key, so a retry names the same refund.
"""

from __future__ import annotations

import hashlib

from allocation_engine.errors import InvalidInput
from allocation_engine.orders.payments import PaymentEvent
from allocation_engine.ports.payments import PaymentOpened, PaymentRequest


class MarketplaceProvider:
    def check(self, payment_method: str) -> None:
        if payment_method:
            raise InvalidInput.one(
                "payment_method", payment_method, "marketplace orders are paid on the marketplace"
            )

    def open(self, request: PaymentRequest) -> PaymentOpened:
        self.check(request.payment_method)
        return PaymentOpened(reference=f"MKT-{request.order_id}", authorized=request.amount)

    def capture(self, reference: str, amount: int, idempotency_key: str) -> None:
        """The marketplace holds the money already: capturing only records it."""

    def refund(self, reference: str, amount: int, idempotency_key: str) -> str:
        digest = hashlib.sha256(idempotency_key.encode()).hexdigest()[:8].upper()
        return f"MKR-{reference.removeprefix('MKT-')}-{digest}"

    def cancel(self, reference: str, idempotency_key: str) -> None:
        """Cancelled on the marketplace by its own flow; nothing to void here."""

    def parse_webhook(self, payload: bytes, signature: str) -> PaymentEvent | None:
        raise InvalidInput.one(
            "webhook.provider", "marketplace", "marketplace payments have no webhooks"
        )
