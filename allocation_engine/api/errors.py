"""TODO docstring."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any, TypeVar

import grpc
from google.protobuf import any_pb2
from google.protobuf.message import Message
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from allocation_engine.api.convert.common import (
    shortfall_to_proto,
)
from allocation_engine.engine import InsufficientStock, InvalidInput
from allocation_engine.errors import (
    AllocationError,
    ConcurrentChange,
    DeadlineExceeded,
    IdempotencyConflict,
    IllegalState,
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


def status_for(error: Exception) -> status_pb2.Status:
    """The one mapping from typed errors to gRPC status codes (with rich details)."""
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
    log.exception("unexpected error", exc_info=error)
    return status_pb2.Status(code=code_pb2.INTERNAL, message=f"internal error: {error!r}")


Handler = TypeVar("Handler", bound=Callable[..., Any])


def handled(method: Handler) -> Handler:
    """Answers every error a handler raises with `status_for`'s status."""

    @functools.wraps(method)
    def wrapper(self: Any, request: Any, context: grpc.ServicerContext) -> Any:
        try:
            return method(self, request, context)
        except (AllocationError, TimeoutError) as error:
            context.abort_with_status(rpc_status.to_status(status_for(error)))
        except Exception as error:  # anything else is a bug: INTERNAL, logged
            context.abort_with_status(rpc_status.to_status(status_for(error)))

    return wrapper  # type: ignore[return-value]
