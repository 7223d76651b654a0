"""Typed errors of the order workflow. Where one means what a store error means, it is that
error's subclass, so the gRPC edge's one mapping covers both:

IllegalTransition   (IllegalState)         FAILED_PRECONDITION  not allowed in the current state
PaymentRefused      (IllegalState)         FAILED_PRECONDITION  the provider declined
NotFound            (the store's)          NOT_FOUND            no such order, shipment, return
KeyReused           (IdempotencyConflict)  ALREADY_EXISTS       a key came back with another request
ConcurrentChange                           ABORTED              another call kept winning the race
ProviderUnavailable                        UNAVAILABLE          the payment provider did not answer

Bad input is the engine's `InvalidInput` (INVALID_ARGUMENT), naming the field and the value.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import AllocationError
from ..ports import IdempotencyConflict, IllegalState, NotFound

__all__ = [
    "ConcurrentChange",
    "IllegalTransition",
    "KeyReused",
    "NotFound",
    "PaymentRefused",
    "ProviderUnavailable",
]


class IllegalTransition(IllegalState):
    """`trigger` is not allowed for `subject` in `state`; nothing was changed."""

    def __init__(
        self, machine: str, subject: str, state: str, trigger: str, allowed: Sequence[str]
    ) -> None:
        self.machine, self.subject, self.state, self.trigger = machine, subject, state, trigger
        self.allowed = tuple(allowed)
        options = ", ".join(self.allowed) or "nothing (final state)"
        super().__init__(f"{machine} {subject} is {state}: cannot {trigger} (allowed: {options})")


class PaymentRefused(IllegalState):
    """The provider answered and said no (card declined, capture refused, bad reference)."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        super().__init__(f"{code}: {message}")


class KeyReused(IdempotencyConflict):
    """An idempotency key (or a channel's external order id) came back with another request."""

    def __init__(self, field: str, key: str) -> None:
        super().__init__(key)
        self.field = field
        self.args = (f"{field}={key!r} was already used with a different request",)

    def __str__(self) -> str:
        return str(self.args[0])


class ConcurrentChange(AllocationError):
    """The order's version moved between read and write more often than we retry."""

    def __init__(self, order_id: str) -> None:
        self.order_id = order_id
        super().__init__(f"order {order_id!r} was changed concurrently; retry the call")


class ProviderUnavailable(AllocationError):
    """The payment provider did not answer; whether it acted is unknown (retry with the key)."""
