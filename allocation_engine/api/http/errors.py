"""The HTTP edge's one error mapping: every typed error to a status and a JSON body.

It goes through the gRPC edge's mapping (`api.errors.status_for`), so both edges answer the same
error with the same code and message; the gRPC code becomes its HTTP status as Google's API
design guide (and grpc-gateway) map them. The body is

    {"code": "INVALID_ARGUMENT", "message": "...",
     "problems": [{"field": "lines[0].quantity", "value": "0", "problem": "..."}]}

with `problems` for bad input only, each value quoted short. An error that is not ours is a bug:
logged with its traceback and answered 500 without details.
"""

from __future__ import annotations

import logging
from typing import Any

from google.rpc import code_pb2

from allocation_engine.api.errors import status_for
from allocation_engine.api.quote import quote
from allocation_engine.errors import InvalidInput, LimitExceeded, ReservationInProgress
from allocation_engine.service.access import AccessDenied

log = logging.getLogger("allocation_engine.http")

HTTP_STATUS = {
    code_pb2.INVALID_ARGUMENT: 400,
    code_pb2.FAILED_PRECONDITION: 400,
    code_pb2.OUT_OF_RANGE: 400,
    code_pb2.UNAUTHENTICATED: 401,
    code_pb2.PERMISSION_DENIED: 403,
    code_pb2.NOT_FOUND: 404,
    code_pb2.ABORTED: 409,
    code_pb2.ALREADY_EXISTS: 409,
    code_pb2.RESOURCE_EXHAUSTED: 429,
    code_pb2.CANCELLED: 499,
    code_pb2.INTERNAL: 500,
    code_pb2.UNIMPLEMENTED: 501,
    code_pb2.UNAVAILABLE: 503,
    code_pb2.DEADLINE_EXCEEDED: 504,
}


def error_body(code: str, message: str, problems: list[dict[str, str]] | None = None) -> Any:
    body: dict[str, Any] = {"code": code, "message": message}
    if problems is not None:
        body["problems"] = problems
    return body


def problems_of(error: InvalidInput) -> list[dict[str, str]]:
    return [
        {"field": p.field, "value": quote(p.value), "problem": p.problem}
        for p in error.problems[:50]
    ]


def code_of(error: Exception) -> tuple[str, str]:
    """The status code name `error` is answered with, and a short detail (for the audit)."""
    if isinstance(error, AccessDenied):
        return "PERMISSION_DENIED", str(error)[:200]
    status = status_for(error)
    if status is None:
        return "INTERNAL", type(error).__name__
    return code_pb2.Code.Name(status.code), status.message[:200]


def answer_for(error: Exception) -> tuple[int, Any, dict[str, str]]:
    """(HTTP status, JSON body, extra headers) for `error`."""
    if isinstance(error, AccessDenied):
        return 403, error_body("PERMISSION_DENIED", str(error)), {}
    status = status_for(error)
    if status is None:
        log.error("unexpected error at the HTTP edge", exc_info=error)
        return 500, error_body("INTERNAL", "internal error; the server log has the details"), {}
    name = code_pb2.Code.Name(status.code)
    problems = problems_of(error) if isinstance(error, InvalidInput) else None
    headers: dict[str, str] = {}
    if isinstance(error, LimitExceeded) and error.field == "body":
        return 413, error_body(name, status.message), headers  # too large: resending can't help
    if isinstance(error, ReservationInProgress):
        headers["Retry-After"] = str(max(1, round(error.retry_after)))
    return HTTP_STATUS.get(status.code, 500), error_body(name, status.message, problems), headers
