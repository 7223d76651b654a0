"""The one place where errors become gRPC statuses: `status_for` and `ErrorInterceptor`.

Servicers raise the typed errors of `allocation_engine.errors` and never touch the status
themselves. `ErrorInterceptor`, registered once on the server, wraps every method of every service
(unary and streaming, requests and responses) and answers a typed error with `status_for`'s
status, rich details included (BadRequest field violations, PreconditionFailure and the
InsufficientStock shortfalls). Anything else is a bug: it is logged with its traceback under a
correlation id and answered INTERNAL "internal error (ref <id>)", so the caller can quote the id
and nothing of the server's internals (no repr of the error) leaks out.

Every status is bounded whatever the caller sent (a 1 MB id, 50,000 bad positions): values are
quoted short (`api.quote`), at most `MAX_LISTED` problems are listed, the message and the details
have a size cap, so the answer fits in the trailers a client accepts. Request bytes that do not
decode as the method's message are INVALID_ARGUMENT too (`Undecodable`), not the runtime's
INTERNAL.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NoReturn

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.protobuf.message import Message
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from allocation_engine.api.handlers import Behavior, rewrapped
from allocation_engine.api.quote import QUOTE_CHARS, cut, quote
from allocation_engine.engine.limits import MAX_ID_CHARS
from allocation_engine.errors import (
    BadSignature,
    ConcurrentChange,
    DeadlineExceeded,
    HoldLapsed,
    IdempotencyConflict,
    IllegalState,
    InsufficientStock,
    InvalidInput,
    LimitExceeded,
    NotFound,
    PeerRefused,
    ProviderUnavailable,
    ReservationInProgress,
    StoreContention,
    StoreUnavailable,
    VersionConflict,
)
from allocation_engine.proto.allocation.v1 import common_pb2 as cpb

log = logging.getLogger("allocation_engine.server")


def _detail(message: Message) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


MAX_MESSAGE_CHARS = 1024
"""Longest status message (ASCII: the caller's text is quoted short and escaped)."""

MAX_LISTED = 10
"""Most field violations, and shortfalls in a message, one status lists; it says how many more."""

DETAILS_BUDGET = 2048
"""Most bytes of rich details (before base64) a status carries; shortfalls beyond are left out."""


def status_for(error: Exception) -> status_pb2.Status | None:
    """The one mapping from typed errors to gRPC status codes (with rich details); None for an
    error that is not one of ours (a bug, which `ErrorInterceptor` answers INTERNAL).

    Every message and detail is bounded (`MAX_MESSAGE_CHARS`, `MAX_LISTED`, `DETAILS_BUDGET`,
    values quoted short), so a status fits in the trailers whatever the caller sent."""
    match error:
        case InvalidInput():
            return _invalid(error)
        case InsufficientStock():
            return _short_of_stock(error)
        case NotFound():
            return _status(code_pb2.NOT_FOUND, f"{error.field}={quote(error.value)}: not found")
        case IllegalState():
            return _status(code_pb2.FAILED_PRECONDITION, str(error))
        case VersionConflict():
            return _status(code_pb2.ABORTED, str(error))
        case IdempotencyConflict():
            return _status(code_pb2.ALREADY_EXISTS, str(error))
        case LimitExceeded():
            return _status(code_pb2.RESOURCE_EXHAUSTED, str(error))
        case StoreUnavailable() | ProviderUnavailable():
            return _status(code_pb2.UNAVAILABLE, str(error))
        case ReservationInProgress():
            delay = duration_pb2.Duration()
            delay.FromNanoseconds(max(0, round(error.retry_after * 1e9)))
            retry = error_details_pb2.RetryInfo(retry_delay=delay)
            return _status(code_pb2.ABORTED, str(error), [retry])
        case ConcurrentChange() | StoreContention() | HoldLapsed():
            return _status(code_pb2.ABORTED, str(error))
        case DeadlineExceeded() | TimeoutError():
            return _status(code_pb2.DEADLINE_EXCEEDED, str(error))
        case BadSignature():
            return _status(code_pb2.UNAUTHENTICATED, str(error))
        case PeerRefused():
            return _status(code_pb2.FAILED_PRECONDITION, str(error))
    return None


def _status(code: int, message: str, details: Sequence[Message] = ()) -> status_pb2.Status:
    return status_pb2.Status(
        code=code,
        message=cut(message, MAX_MESSAGE_CHARS),
        details=[_detail(d) for d in details],
    )


def _listing(head: str, parts: Sequence[str], total: int) -> str:
    """`head` and as many of `parts` as fit in MAX_MESSAGE_CHARS, saying how many of `total`
    were left out."""
    shown: list[str] = []
    room = MAX_MESSAGE_CHARS - len(head) - 40  # for "; and N more"
    for part in parts:
        room -= len(part) + 2
        if room < 0:
            break
        shown.append(part)
    rest = total - len(shown)
    return head + "; ".join(shown) + (f"; and {rest} more" if rest else "")


def _invalid(error: InvalidInput) -> status_pb2.Status:
    """INVALID_ARGUMENT: the first `MAX_LISTED` problems, each field named and its value
    quoted short, in the message and as BadRequest field violations."""
    shown = error.problems[:MAX_LISTED]
    described = [(cut(p.field, 160), f"{quote(p.value)}: {cut(p.problem, 200)}") for p in shown]
    message = _listing("", [f"{field}={text}" for field, text in described], len(error.problems))
    bad = error_details_pb2.BadRequest(
        field_violations=[
            error_details_pb2.BadRequest.FieldViolation(field=field, description=text)
            for field, text in described
        ]
    )
    return _status(code_pb2.INVALID_ARGUMENT, message, [bad])


def _short_of_stock(error: InsufficientStock) -> status_pb2.Status:
    """FAILED_PRECONDITION with the shortfalls: as many as `DETAILS_BUDGET` holds in the
    details (InsufficientStock and PreconditionFailure), `MAX_LISTED` in the message."""
    stock = cpb.InsufficientStock()
    failure = error_details_pb2.PreconditionFailure()
    for s in error.shortfalls:
        sku = s.sku[:MAX_ID_CHARS]  # whole: skus are bounded at the edge; details are binary
        stock.shortfalls.append(
            cpb.Shortfall(sku=sku, requested=s.requested, available=s.available)
        )
        failure.violations.add(
            type="STOCK",
            subject=sku,
            description=f"requested {s.requested}, available {s.available}",
        )
        if stock.ByteSize() + failure.ByteSize() > DETAILS_BUDGET:
            del stock.shortfalls[-1]
            del failure.violations[-1]
            break
    listed = [
        f"{cut(s.sku, QUOTE_CHARS)} requested {s.requested}, available {s.available}"
        for s in error.shortfalls[:MAX_LISTED]
    ]
    return _status(
        code_pb2.FAILED_PRECONDITION,
        _listing("insufficient stock: ", listed, len(error.shortfalls)),
        [stock, failure],
    )


def _abort(error: Exception, context: grpc.ServicerContext, method: str) -> NoReturn:
    """Ends the call with the status for `error` (raises, as `abort_with_status` does)."""
    if isinstance(error, grpc.RpcError) or _has_outcome(context):
        # The call already has its outcome: the client went away while we read its stream,
        # or the handler aborted on its own (health, reflection). gRPC finishes it.
        raise error
    status = status_for(error)
    if status is None:
        ref = uuid.uuid4().hex[:16]
        log.error("unexpected error in %s (ref %s)", method, ref, exc_info=error)
        status = status_pb2.Status(code=code_pb2.INTERNAL, message=f"internal error (ref {ref})")
    context.abort_with_status(rpc_status.to_status(status))


def _has_outcome(context: grpc.ServicerContext) -> bool:
    """Whether the handler already set the call's status (`abort` does, then raises)."""
    code = getattr(context, "code", None)  # grpcio >= 1.38; not in the type stubs
    return code is not None and code() is not None


class Undecodable:
    """What a request's bytes became when they are not a message of the method's type: the
    handler is never called with it; it is answered INVALID_ARGUMENT (the runtime itself would
    answer INTERNAL "Exception deserializing request!")."""

    def __init__(self, size: int, type_name: str) -> None:
        self.size, self.type_name = size, type_name

    def error(self, field: str) -> InvalidInput:
        return InvalidInput.one(
            field, f"<{self.size} bytes>", f"is not a valid {self.type_name} message"
        )


def _lenient(deserializer: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    """`deserializer`, answering `Undecodable` instead of raising."""
    if deserializer is None:
        return None
    owner = getattr(deserializer, "__self__", None)  # the generated Message.FromString
    descriptor = getattr(owner, "DESCRIPTOR", None)
    type_name = getattr(descriptor, "full_name", "request")

    def decode(data: bytes) -> Any:
        try:
            return deserializer(data)
        except Exception:
            return Undecodable(len(data), type_name)

    return decode


def _decoded_stream(requests: Iterator[Any]) -> Iterator[Any]:
    """A request stream whose undecodable message ends the call (named `chunks[i]`)."""
    for i, request in enumerate(requests):
        if isinstance(request, Undecodable):
            raise request.error(f"chunks[{i}]")
        yield request


def _decoded(request: Any) -> Any:
    if isinstance(request, Undecodable):
        raise request.error("request")
    return request


def _guard_unary(behavior: Behavior, method: str, *, streamed: bool = False) -> Behavior:
    """A handler whose answer is one message (unary-unary and, `streamed`, stream-unary)."""

    def guarded(request: Any, context: grpc.ServicerContext) -> Any:
        try:
            return behavior(_decoded_stream(request) if streamed else _decoded(request), context)
        except Exception as error:
            _abort(error, context, method)

    return guarded


def _guard_stream(behavior: Behavior, method: str, *, streamed: bool = False) -> Behavior:
    """A handler whose answer is a stream: errors raised while it yields are caught too."""

    def guarded(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        try:
            yield from behavior(
                _decoded_stream(request) if streamed else _decoded(request), context
            )
        except Exception as error:
            _abort(error, context, method)

    return guarded


class ErrorInterceptor(grpc.ServerInterceptor):
    """Maps every error a handler raises to its status; see the module docstring. It also
    decodes requests leniently, so bytes that are not the method's message are
    INVALID_ARGUMENT rather than the runtime's INTERNAL."""

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
            guard = _guard_stream if streamed_out else _guard_unary
            return guard(behavior, method, streamed=streamed_in)

        return rewrapped(handler, wrap, _lenient(handler.request_deserializer))
