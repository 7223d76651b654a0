"""The time one request may take: a deadline on a monotonic clock, checked between steps.

`allocate` makes one `Budget` per order (from the rule set's `time_limit_seconds`, or what the
caller hands it: the service passes the lesser of that and its caller's gRPC deadline) and every
step that can take long asks it before it starts: the candidate reduction between its rounds and
its dominance blocks, the node-set covering between blocks of pairs, the solver (which gets what
is left as CP-SAT's `max_time_in_seconds`) and the shortfall re-solve. A step that finds the
budget spent stops where it is, and the allocator answers with the best plan it holds (FEASIBLE
with its gap), so the whole request, not only the solver, stays within the limit.

The clock is injected (seconds on any monotonic scale), so tests can run a budget out after a
given number of checks instead of waiting for wall-clock time.

A budget also notes when each named step started and ended (`phase`), as plain data: the service
turns those into trace spans after the fact, so the engine itself stays free of any tracing.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from allocation_engine.errors import DeadlineExceeded

Clock = Callable[[], float]


class OutOfTime(DeadlineExceeded, TimeoutError):
    """The budget ran out before any plan was known (DEADLINE_EXCEEDED at the edge; a
    TimeoutError to the benchmarks, which count it as a time-out)."""


class Budget:
    """`seconds` from now on `clock` (time.monotonic unless given); math.inf never runs out."""

    def __init__(self, seconds: float, clock: Clock = time.monotonic) -> None:
        self._clock = clock
        self.seconds = seconds
        self._deadline = clock() + seconds
        self.phases: list[tuple[str, float, float]] = []  # (step, started, ended) on `clock`

    @classmethod
    def unlimited(cls) -> Budget:
        return cls(math.inf)

    def remaining(self) -> float:
        """Seconds left, never below 0."""
        return max(0.0, self._deadline - self._clock())

    def expired(self) -> bool:
        return self._clock() >= self._deadline

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Notes the start and end of step `name` in `phases` (also when it raises)."""
        started = self._clock()
        try:
            yield
        finally:
            self.phases.append((name, started, self._clock()))

    def __repr__(self) -> str:
        return f"Budget({self.seconds} s, {self.remaining():.3f} s left)"
