"""The outermost interceptor: every call timed, traced and logged, whatever its outcome.

It runs before `ErrorInterceptor` (the server's `outer` slot), so it sees refusals by access
control and by the bounds check as well as answers. Per call:

* a span named after the RPC (`/allocation.v1.AllocationService/Reserve`), the parent of the
  planning read, the engine's steps and every store call, with the gRPC status code and the
  order and reservation ids of the answer as attributes;
* `allocation_rpc_duration_seconds{method,code}`, and from the answer's plan its status, gap
  and candidates before and after reduction, a Reserve's attempts (re-plans are reroutes: a
  node refused the hold, or its stock moved) and stock-outs;
* a JSON log line for every call that did not succeed (method, code, ms, ids; no traceback, as
  these are answers, not faults), and a DEBUG one for those that did. The method is bound to
  the log context for the whole call, so the `ErrorInterceptor`'s line for an unexpected error
  carries it too.

Ids come from the answer, not the request: the request may still be bytes here (access control
decodes it only after admitting the caller).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import structlog
from opentelemetry import trace
from opentelemetry.trace import Span, StatusCode

from allocation_engine.api.handlers import Behavior, rewrapped
from allocation_engine.observability.metrics import Metrics
from allocation_engine.proto.allocation.v1 import allocation_pb2 as apb

TRACER = trace.get_tracer("allocation_engine.api")
log = logging.getLogger("allocation_engine.rpc")

_STATE = apb.ReservationState
_PLAN_STATUS = apb.PlanStatus


def _code_of(context: grpc.ServicerContext, failed: bool) -> str:
    code = getattr(context, "code", None)  # grpcio >= 1.38; not in the type stubs
    found = code() if code is not None else None
    if isinstance(found, grpc.StatusCode):
        return str(found.name)
    return "UNKNOWN" if failed else "OK"


class TelemetryInterceptor(grpc.ServerInterceptor):
    """Times, traces and logs every call into `metrics`; see the module docstring."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler[Any, Any] | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method

        def wrap(behavior: Behavior, streamed_in: bool, streamed_out: bool) -> Behavior:
            return (
                self._streamed(behavior, method) if streamed_out else self._unary(behavior, method)
            )

        return rewrapped(handler, wrap)

    def _unary(self, behavior: Behavior, method: str) -> Behavior:
        def observed(request: Any, context: grpc.ServicerContext) -> Any:
            started = time.perf_counter()
            with (
                structlog.contextvars.bound_contextvars(method=method),
                TRACER.start_as_current_span(method, kind=trace.SpanKind.SERVER) as span,
            ):
                answer = None
                try:
                    answer = behavior(request, context)
                    return answer
                finally:
                    self._finish(method, context, span, started, answer)

        return observed

    def _streamed(self, behavior: Behavior, method: str) -> Behavior:
        def observed(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
            started = time.perf_counter()
            with (
                structlog.contextvars.bound_contextvars(method=method),
                TRACER.start_as_current_span(method, kind=trace.SpanKind.SERVER) as span,
            ):
                try:
                    yield from behavior(request, context)
                finally:
                    self._finish(method, context, span, started, None)

        return observed

    def _finish(
        self,
        method: str,
        context: grpc.ServicerContext,
        span: Span,
        started: float,
        answer: Any,
    ) -> None:
        seconds = time.perf_counter() - started
        code = _code_of(context, failed=answer is None)
        self._metrics.rpc_duration.labels(method, code).observe(seconds)
        span.set_attribute("rpc.grpc.status_code", code)
        ids = self._record(method, answer) if answer is not None else {}
        for key, value in ids.items():
            span.set_attribute(key.replace("_", "."), value)
        if code != "OK":
            span.set_status(StatusCode.ERROR, code)
            log.info("rpc", extra={"code": code, "ms": round(seconds * 1000, 3), **ids})
        elif log.isEnabledFor(logging.DEBUG):
            log.debug("rpc", extra={"code": code, "ms": round(seconds * 1000, 3), **ids})

    def _record(self, method: str, answer: Any) -> dict[str, str]:
        """The answer's ids; its plan and reservation counted into the metrics."""
        ids: dict[str, str] = {}
        reservation = _field(answer, "reservation")
        plan = _field(answer, "plan")
        if reservation is not None:
            ids["reservation_id"] = reservation.id
            ids["order_id"] = reservation.order_id
            if method.endswith(("/Reserve", "/CommitReservation", "/ReleaseReservation")):
                state = _STATE.Name(reservation.state).removeprefix("RESERVATION_STATE_")
                self._metrics.reservations.labels(state).inc()
            if method.endswith("/Reserve"):
                self._metrics.attempts.inc(reservation.attempts)
                if reservation.attempts > 1:
                    self._metrics.reroutes.inc(reservation.attempts - 1)
                plan = reservation.plan
        if plan is not None and method.endswith(("/Allocate", "/Reserve")):
            ids.setdefault("order_id", plan.order_id)
            self._plan(method.rpartition("/")[2], plan)
        return ids

    def _plan(self, rpc: str, plan: Any) -> None:
        status = _PLAN_STATUS.Name(plan.status).removeprefix("PLAN_STATUS_")
        self._metrics.plans.labels(rpc, status).inc()
        if status == "FEASIBLE":
            self._metrics.gap.observe(plan.optimality_gap)
        if status == "INFEASIBLE":
            self._metrics.stockouts.labels(rpc).inc()
        self._metrics.candidates.labels("fenced").observe(plan.candidates)
        self._metrics.candidates.labels("reduced").observe(plan.solver_candidates)


def _field(message: Any, name: str) -> Any:
    """`message.name` when the message has that field set, else None."""
    descriptor = getattr(message, "DESCRIPTOR", None)
    if descriptor is None or name not in descriptor.fields_by_name:
        return None
    return getattr(message, name) if message.HasField(name) else None
