"""TODO docstring."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class PaymentEventKind(StrEnum):
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
