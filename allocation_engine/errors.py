"""Every typed error a caller can receive, each carrying the data needed to react to it.

Imports nothing of the package. The gRPC edge maps each to a status code in one place
(`api.errors`):

InvalidInput          INVALID_ARGUMENT     bad input, every bad field named with its value
InsufficientStock     FAILED_PRECONDITION  not enough stock under the fences (with shortfalls)
IllegalState          FAILED_PRECONDITION  not allowed in the current state (an expired hold...)
  IllegalTransition                        a state machine refused a trigger
  PaymentRefused                           the payment provider declined
NotFound              NOT_FOUND            unknown id
VersionConflict       ABORTED              an older snapshot, a stale rules revision
ConcurrentChange      ABORTED              another call kept winning the race for an order
StoreContention       ABORTED              concurrent changes kept a store step from settling
HoldLapsed            ABORTED              (internal to the order flow, which holds again)
IdempotencyConflict   ALREADY_EXISTS       an idempotency key reused with another request
  KeyReused                                ... or a channel's external order id
LimitExceeded         RESOURCE_EXHAUSTED   a request over the server's limits
StoreUnavailable      UNAVAILABLE          the backing store cannot be reached
ProviderUnavailable   UNAVAILABLE          the payment provider did not answer
  PeerUnavailable                          a shop, marketplace or WMS did not answer
BadSignature          UNAUTHENTICATED      a webhook whose platform signature does not verify
DeadlineExceeded      DEADLINE_EXCEEDED    the caller's deadline passed
"""

from __future__ import annotations

import reprlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

MESSAGE_PROBLEMS = 20
"""Most problems an InvalidInput's message spells out; the rest are counted (all stay in
`problems`), so a request with thousands of bad fields cannot make a message of megabytes."""

_SHORT = reprlib.Repr()
_SHORT.maxstring = _SHORT.maxother = 80


class AllocationError(Exception):
    """Base class of every error the engine raises on purpose."""


@dataclass(frozen=True)
class FieldProblem:
    """One bad value: the dotted path of the field, the value seen and what is wrong with it."""

    field: str
    value: object
    problem: str

    def __str__(self) -> str:
        """The field, the value quoted short (at most about 80 characters) and the problem."""
        return f"{self.field}={_SHORT.repr(self.value)}: {self.problem}"


class InvalidInput(AllocationError):
    """Bad input, reported with every problem found, not just the first."""

    def __init__(self, problems: Sequence[FieldProblem]) -> None:
        self.problems = tuple(problems)
        shown = "; ".join(str(p) for p in self.problems[:MESSAGE_PROBLEMS])
        left = len(self.problems) - MESSAGE_PROBLEMS
        super().__init__(shown + (f"; and {left} more" if left > 0 else ""))

    @classmethod
    def one(cls, field: str, value: object, problem: str) -> InvalidInput:
        return cls([FieldProblem(field, value, problem)])

    def under(self, prefix: str) -> InvalidInput:
        """The same problems, named from one level up: `under("order.")` turns `lines[0].sku`
        into `order.lines[0].sku`. Each layer names fields relative to what it validates and
        the caller that knows where that thing sits adds the prefix, once."""
        return InvalidInput(
            [FieldProblem(prefix + p.field, p.value, p.problem) for p in self.problems]
        )


class ProblemCollector:
    """Collects field problems so validation can report all of them at once."""

    def __init__(self) -> None:
        self.problems: list[FieldProblem] = []

    def add(self, field: str, value: object, problem: str) -> None:
        self.problems.append(FieldProblem(field, value, problem))

    def extend(self, problems: Iterable[FieldProblem]) -> None:
        self.problems.extend(problems)

    def raise_if_any(self) -> None:
        if self.problems:
            raise InvalidInput(self.problems)


@dataclass(frozen=True)
class Shortfall:
    """A sku the order cannot get in full: units requested against the most the fences allow."""

    sku: str
    requested: int
    available: int


class InsufficientStock(AllocationError):
    """Not enough stock under the fences; carries one shortfall per short sku."""

    def __init__(self, shortfalls: Sequence[Shortfall]) -> None:
        self.shortfalls = tuple(shortfalls)
        super().__init__(
            "insufficient stock: "
            + ", ".join(
                f"{s.sku} requested {s.requested}, available {s.available}" for s in self.shortfalls
            )
        )


class StoreError(AllocationError):
    """Base of the errors a store raises on purpose."""


class StoreContention(StoreError):
    """Concurrent changes kept a store operation from settling within its rounds; nothing it
    could not finish was written, and the same call may be retried at once."""


class StoreUnavailable(StoreError):
    """The backing store cannot be reached; the call changed nothing it can vouch for."""


class VersionConflict(StoreError):
    """A versioned write lost against a newer version (older snapshot, stale rules revision)."""

    def __init__(self, field: str, given: int, current: int) -> None:
        self.field, self.given, self.current = field, given, current
        super().__init__(f"{field}={given} is older than the current {current}")


class IdempotencyConflict(StoreError):
    """An idempotency key was reused with a different request."""

    def __init__(self, key: str) -> None:
        self.key = key
        super().__init__(f"idempotency_key {key!r} was already used with a different request")


class NotFound(StoreError):
    def __init__(self, field: str, value: str) -> None:
        self.field, self.value = field, value
        super().__init__(f"{field}={value!r}: not found")


class IllegalState(StoreError):
    """The operation does not apply in the object's current state (an expired hold, say)."""


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


class ReservationInProgress(ConcurrentChange):
    """A retry found the first call with its key still taking the holds; `retry_after` says
    in how many seconds to try again (the call changed nothing)."""

    def __init__(self, reservation_id: str, retry_after: float) -> None:
        self.reservation_id, self.retry_after = reservation_id, retry_after
        AllocationError.__init__(
            self,
            f"reservation {reservation_id!r} is still being taken by the first call with this "
            f"idempotency key; retry in {retry_after:.2f} s",
        )
        self.order_id = ""


class HoldLapsed(AllocationError):
    """The reservation a stock key names ended (expired or released) before the order
    recorded it: a call that died between holding and committing, retried after the hold's
    time ran out. The order holds again under a new key; callers outside never see this."""

    def __init__(self, reservation_id: str) -> None:
        self.reservation_id = reservation_id
        super().__init__(f"reservation {reservation_id!r} ended before the order recorded it")


class ProviderUnavailable(AllocationError):
    """The payment provider did not answer; whether it acted is unknown (retry with the key)."""


class PeerUnavailable(ProviderUnavailable):
    """A platform or system we call over HTTP (a shop, a marketplace, a WMS) did not answer
    in time or kept answering 429/5xx through every retry; whether it acted is unknown."""


class PeerRefused(AllocationError):
    """A platform answered with a final refusal (4xx other than 408/429): no retry can help."""

    def __init__(self, status: int, url: str, detail: str) -> None:
        self.status, self.url, self.detail = status, url, detail
        super().__init__(f"{url} answered {status}: {_SHORT.repr(detail)}")


class BadSignature(AllocationError):
    """A webhook whose platform signature is missing or does not verify; nothing was placed."""

    def __init__(self, channel: str, header: str) -> None:
        self.channel, self.header = channel, header
        super().__init__(f"channel {channel!r}: the {header} signature is missing or wrong")


class DeadlineExceeded(AllocationError):
    """The caller's deadline passed before the work was done; what was done is consistent."""


class LimitExceeded(AllocationError):
    """A request is larger than the server accepts (lines per order, positions per chunk...)."""

    def __init__(self, field: str, size: int, limit: int) -> None:
        self.field, self.size, self.limit = field, size, limit
        super().__init__(f"{field} has {size} entries; the limit is {limit}")
