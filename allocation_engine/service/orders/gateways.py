"""What the workflow's steps act through (the stock keeper and the payment providers) and what
a step answers: DONE (the workflow moves on), WAIT (for an outside event) or `Blocked`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from allocation_engine.orders.draft import Draft
from allocation_engine.ports.payments import PaymentProvider
from allocation_engine.ports.stock import Stock


class Outcome(Enum):
    DONE = "done"
    WAIT = "wait"


@dataclass(frozen=True)
class Blocked:
    reason: str
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Gateways:
    """The ports steps act through: the stock keeper and the payment providers by kind."""

    stock: Stock
    payments: Mapping[str, PaymentProvider]

    def payment(self, draft: Draft) -> PaymentProvider:
        return self.payments[draft.record.payment.provider]


Result = Outcome | Blocked
