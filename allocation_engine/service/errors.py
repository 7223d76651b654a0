"""Errors of the service layer that are not the engine's or a store's (see `engine.errors` and
`engine.ports` for those). The gRPC edge maps every one of them to a status code in one place."""

from __future__ import annotations

import time

from ..engine.errors import AllocationError


class DeadlineExceeded(AllocationError):
    """The caller's deadline passed before the work was done; what was done is consistent."""


class LimitExceeded(AllocationError):
    """A request is larger than the server accepts (lines per order, positions per chunk...)."""

    def __init__(self, field: str, size: int, limit: int) -> None:
        self.field, self.size, self.limit = field, size, limit
        super().__init__(f"{field} has {size} entries; the limit is {limit}")


class Deadline:
    """When the caller stops waiting, on the monotonic clock (None = it waits forever)."""

    def __init__(self, seconds: float | None = None) -> None:
        self._at = None if seconds is None else time.monotonic() + seconds

    def remaining(self) -> float | None:
        return None if self._at is None else self._at - time.monotonic()

    def check(self, doing: str) -> None:
        left = self.remaining()
        if left is not None and left <= 0:
            raise DeadlineExceeded(f"deadline passed while {doing}")
