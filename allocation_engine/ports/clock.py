"""The clock port: time is injected, so tests move it by hand (`adapters.clock.FakeClock`)."""

from __future__ import annotations

from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the Unix epoch."""
        ...
