"""The one place where errors become gRPC statuses: `status_for` and `ErrorInterceptor`.

Servicers raise the typed errors of `allocation_engine.errors` and never touch the status
themselves. `ErrorInterceptor`, registered once on the server, wraps every method of every service
(unary and streaming, requests and responses) and answers a typed error with `status_for`'s
status, rich details included (BadRequest field violations, PreconditionFailure and the
InsufficientStock shortfalls). Anything else is a bug: it is logged with its traceback under a
correlation id and answered INTERNAL "internal error (ref <id>)", so the caller can quote the id
and nothing of the server's internals (no repr of the error) leaks out.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterator
from typing import Any, NoReturn

import grpc
from google.protobuf import any_pb2
from google.protobuf.message import Message
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from allocation_engine.api.convert.common import shortfall_to_proto
from allocation_engine.errors import (
    ConcurrentChange,
    DeadlineExceeded,
    IdempotencyConflict,
    IllegalState,
    InsufficientStock,
    InvalidInput,
    LimitExceeded,
    NotFound,
    ProviderUnavailable,
    StoreUnavailable,
    VersionConflict,
)
from allocation_engine.proto.allocation.v1 import common_pb2 as cpb

log = logging.getLogger("allocation_engine.server")


def _detail(message: Message) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


def status_for(error: Exception) -> status_pb2.Status | None:
    """The one mapping from typed errors to gRPC status codes (with rich details); None for an
    error that is not one of ours (a bug, which `ErrorInterceptor` answers INTERNAL)."""
    match error:
        case InvalidInput():
            bad = error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(
                        field=p.field, description=f"{p.value!r}: {p.problem}"
                    )
                    for p in error.problems
                ]
            )
            return status_pb2.Status(
                code=code_pb2.INVALID_ARGUMENT, message=str(error), details=[_detail(bad)]
            )
        case InsufficientStock():
            stock = cpb.InsufficientStock(
                shortfalls=[shortfall_to_proto(s) for s in error.shortfalls]
            )
            failure = error_details_pb2.PreconditionFailure(
                violations=[
                    error_details_pb2.PreconditionFailure.Violation(
                        type="STOCK",
                        subject=s.sku,
                        description=f"requested {s.requested}, available {s.available}",
                    )
                    for s in error.shortfalls
                ]
            )
            return status_pb2.Status(
                code=code_pb2.FAILED_PRECONDITION,
                message=str(error),
                details=[_detail(stock), _detail(failure)],
            )
        case NotFound():
            return status_pb2.Status(code=code_pb2.NOT_FOUND, message=str(error))
        case IllegalState():
            return status_pb2.Status(code=code_pb2.FAILED_PRECONDITION, message=str(error))
        case VersionConflict():
            return status_pb2.Status(code=code_pb2.ABORTED, message=str(error))
        case IdempotencyConflict():
            return status_pb2.Status(code=code_pb2.ALREADY_EXISTS, message=str(error))
        case LimitExceeded():
            return status_pb2.Status(code=code_pb2.RESOURCE_EXHAUSTED, message=str(error))
        case StoreUnavailable() | ProviderUnavailable():
            return status_pb2.Status(code=code_pb2.UNAVAILABLE, message=str(error))
        case ConcurrentChange():
            return status_pb2.Status(code=code_pb2.ABORTED, message=str(error))
        case DeadlineExceeded() | TimeoutError():
            return status_pb2.Status(code=code_pb2.DEADLINE_EXCEEDED, message=str(error))
    return None


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


Behavior = Callable[[Any, grpc.ServicerContext], Any]


def _guard_unary(behavior: Behavior, method: str) -> Behavior:
    """A handler whose answer is one message (unary-unary and stream-unary)."""

    def guarded(request: Any, context: grpc.ServicerContext) -> Any:
        try:
            return behavior(request, context)
        except Exception as error:
            _abort(error, context, method)

    return guarded


def _guard_stream(behavior: Behavior, method: str) -> Behavior:
    """A handler whose answer is a stream: errors raised while it yields are caught too."""

    def guarded(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        try:
            yield from behavior(request, context)
        except Exception as error:
            _abort(error, context, method)

    return guarded


class ErrorInterceptor(grpc.ServerInterceptor):
    """Maps every error a handler raises to its status; see the module docstring."""

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler[Any, Any] | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method
        codecs = {
            "request_deserializer": handler.request_deserializer,
            "response_serializer": handler.response_serializer,
        }
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(
                _guard_unary(handler.unary_unary, method), **codecs
            )
        if handler.stream_unary:
            return grpc.stream_unary_rpc_method_handler(
                _guard_unary(handler.stream_unary, method), **codecs
            )
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(
                _guard_stream(handler.unary_stream, method), **codecs
            )
        if handler.stream_stream:
            return grpc.stream_stream_rpc_method_handler(
                _guard_stream(handler.stream_stream, method), **codecs
            )
        return handler
