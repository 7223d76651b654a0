"""The payment port: open, capture, refund or cancel an order's payment with a provider, and
read the provider's signed webhooks. Every call carries an idempotency key derived from the stored
order (its id and nonce, and the step), so a retried call, a racing call or a restarted process
never opens, captures or refunds twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from allocation_engine.orders.payments import PaymentEvent


@dataclass(frozen=True)
class PaymentRequest:
    """Opens the payment of one order. `payment_method` (a card token) authorizes at once."""

    order_id: str
    amount: int
    currency: str
    email: str
    idempotency_key: str
    payment_method: str = ""
    description: str = ""


@dataclass(frozen=True)
class PaymentOpened:
    """The provider's answer: its reference, and an authorization or a failure when a payment
    method came with the request. `client_secret` lets the shop's front end finish payment."""

    reference: str
    client_secret: str = ""
    authorized: int = 0
    failure: str = ""


class PaymentProvider(Protocol):
    """A payment provider. Every call that moves money takes an idempotency key, so a retry
    after a timeout never charges or refunds twice. Declines raise `PaymentRefused`; a provider
    that cannot be reached raises `ProviderUnavailable`."""

    def check(self, payment_method: str) -> None:
        """Refuses, before an order is stored, a payment this provider can never open: a
        payment method it takes none of (InvalidInput), or no provider configured at all
        (ProviderUnavailable). Calls nobody."""
        ...

    def open(self, request: PaymentRequest) -> PaymentOpened:
        """Opens the payment; the same idempotency key answers with the same payment."""
        ...

    def capture(self, reference: str, amount: int, idempotency_key: str) -> None: ...

    def refund(self, reference: str, amount: int, idempotency_key: str) -> str:
        """Returns the provider's refund (or credit note) id."""
        ...

    def cancel(self, reference: str, idempotency_key: str) -> None:
        """Voids an authorization or an unpaid invoice."""
        ...

    def parse_webhook(self, payload: bytes, signature: str) -> PaymentEvent | None:
        """Verifies the signature (InvalidInput when it fails) and reads the event; None for
        event types the workflow does not act on."""
        ...
