"""A store that reports every call: a `store.<operation>` span (a child of the call's span) and
the latency histogram `allocation_store_duration_seconds{operation,outcome}`.

It wraps any store (the inventory, memory or Redis) without knowing its methods: each public
method is timed as it is looked up, so a method added to the port is measured with no edit
here. On Redis one store call is one pipelined round trip or a few, so these are the Redis
round-trip latencies an operator watches.
"""

from __future__ import annotations

import functools
import time
from typing import Any, TypeVar

from opentelemetry import trace
from opentelemetry.trace import StatusCode

from allocation_engine.observability.metrics import Metrics

TRACER = trace.get_tracer("allocation_engine.store")
S = TypeVar("S")


class Instrumented:
    """`store` with every public method timed into `metrics` and traced."""

    def __init__(self, store: Any, metrics: Metrics) -> None:
        self._store = store
        self._metrics = metrics

    def __getattr__(self, name: str) -> Any:
        """Called only for names not yet set on the proxy: each method is wrapped once and
        kept, so the hot path pays a plain attribute read after the first call."""
        found = getattr(self._store, name)
        if name.startswith("_") or not callable(found):
            return found
        timed = self._timed(name, found)
        setattr(self, name, timed)
        return timed

    def _timed(self, name: str, found: Any) -> Any:
        histogram = self._metrics.store_duration
        errors = self._metrics.store_errors.labels(name)
        done = histogram.labels(name, "ok")

        @functools.wraps(found)
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            with TRACER.start_as_current_span(f"store.{name}") as span:
                try:
                    result = found(*args, **kwargs)
                except Exception as error:
                    errors.inc()
                    span.set_status(StatusCode.ERROR, type(error).__name__)
                    histogram.labels(name, "error").observe(time.perf_counter() - started)
                    raise
            done.observe(time.perf_counter() - started)
            return result

        return timed


def instrumented(store: S, metrics: Metrics) -> S:
    """`store` behind an `Instrumented` proxy, typed as the store it wraps."""
    proxy: Any = Instrumented(store, metrics)
    return proxy  # type: ignore[no-any-return]
