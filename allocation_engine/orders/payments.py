"""What a payment provider reports about an order's payment, in the workflow's own terms.

Providers speak in webhooks of their own shape; the payment adapters translate each into a
`PaymentEvent`, and trusted systems (over RecordPayment) send one directly. The order flow then
moves the order's payment by it, so the order lifecycle never sees a provider's format. Amounts
are in minor units of the order's currency.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class PaymentEventKind(StrEnum):
    """What happened to the payment: the money is held (authorized) or collected (captured),
    or the provider refused it (failed)."""

    AUTHORIZED = "authorized"
    CAPTURED = "captured"
    FAILED = "failed"


@dataclass(frozen=True)
class PaymentEvent:
    """A provider's report about a payment (from a verified webhook or a trusted system)."""

    kind: PaymentEventKind
    amount: int
    reference: str = ""
    order_id: str = ""
    event_id: str = ""
    reason: str = ""
