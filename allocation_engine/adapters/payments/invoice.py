"""Pay on invoice: the goods go out first, the customer pays the invoice after delivery.

There is no outside party to call: the invoice number is the order's (`INV-<order id>`), the
invoice reaches the customer as the `invoice_issued` e-mail, and the money arrives by bank
transfer, which accounting (or the ERP) reports with RecordPayment(captured). Goods returned
before payment are credited against the invoice by the workflow; a refund of money already
received is recorded here as a credit note whose number follows from its idempotency key, so a
retry names the same credit note.
"""

from __future__ import annotations

import hashlib

from allocation_engine.engine import InvalidInput
from allocation_engine.errors import PaymentRefused
from allocation_engine.orders.payments import PaymentEvent
from allocation_engine.ports.payments import PaymentOpened, PaymentRequest


class InvoiceProvider:
    def check(self, payment_method: str) -> None:
        if payment_method:
            raise InvalidInput.one("payment_method", payment_method, "invoice orders take no card")

    def open(self, request: PaymentRequest) -> PaymentOpened:
        self.check(request.payment_method)
        return PaymentOpened(reference=f"INV-{request.order_id}")

    def capture(self, reference: str, amount: int, idempotency_key: str) -> None:
        raise PaymentRefused(
            "not_capturable", f"invoice {reference} is paid by the customer, not captured"
        )

    def refund(self, reference: str, amount: int, idempotency_key: str) -> str:
        digest = hashlib.sha256(idempotency_key.encode()).hexdigest()[:8].upper()
        return f"CN-{reference.removeprefix('INV-')}-{digest}"

    def cancel(self, reference: str, idempotency_key: str) -> None:
        """An unpaid invoice is voided in the order's payment record; nothing else to tell."""

    def parse_webhook(self, payload: bytes, signature: str) -> PaymentEvent | None:
        raise InvalidInput.one(
            "webhook.provider", "invoice", "invoices have no webhooks; send a payment event"
        )
