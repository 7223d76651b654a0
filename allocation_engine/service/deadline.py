"""The caller's deadline inside the service layer: long paths check it between steps, so work
stops (consistently) when the caller has stopped waiting."""

from __future__ import annotations

import time

from allocation_engine.errors import DeadlineExceeded


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
