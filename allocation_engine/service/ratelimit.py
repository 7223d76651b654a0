"""Per-caller rate limits: one token bucket per caller, in this server process.

Each caller has a rate (calls per second) and a burst (the bucket's size), its own or the
server's default. The buckets live in memory, so with N server processes a caller may reach N
times its rate; a shared limit would need the store on every call, which the limit exists to
protect.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from allocation_engine.errors import InvalidInput
from allocation_engine.ports.access import Caller
from allocation_engine.ports.clock import Clock


@dataclass(frozen=True)
class RateLimits:
    """The default rate and burst for callers registered without their own."""

    rate: float = 50.0
    burst: int = 100

    def __post_init__(self) -> None:
        if not self.rate > 0:
            raise InvalidInput.one("rate", self.rate, "must be > 0 calls per second")
        if self.burst < 1:
            raise InvalidInput.one("burst", self.burst, "must be at least 1")


class TokenBuckets:
    """`take(caller)` spends one token of the caller's bucket: 0.0 when the call may go on,
    else the seconds until a token is back (the retry hint)."""

    def __init__(self, clock: Clock, limits: RateLimits | None = None) -> None:
        self._clock = clock
        self._limits = limits or RateLimits()
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}  # id -> (tokens, at)

    def take(self, caller: Caller) -> float:
        rate = caller.rate or self._limits.rate
        burst = float(caller.burst or self._limits.burst)
        now = self._clock.now()
        with self._lock:
            tokens, at = self._buckets.get(caller.id, (burst, now))
            tokens = min(burst, tokens + max(0.0, now - at) * rate)
            if tokens >= 1.0:
                self._buckets[caller.id] = (tokens - 1.0, now)
                return 0.0
            self._buckets[caller.id] = (tokens, now)
            return (1.0 - tokens) / rate
