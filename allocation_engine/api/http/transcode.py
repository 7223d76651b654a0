"""REST over the gRPC servicers: JSON in, the same request message, the same servicer, JSON out.

The REST body of an RPC is the request message in the protobuf JSON mapping (field names as in
the .proto, e.g. `external_order_id`; enums by name; int64 as numbers or strings), exactly as
grpc-gateway and Google's HTTP transcoding read it. So the HTTP edge decodes with protobuf's
own JSON parser, checks the contract's ranges (`api.bounds`), and calls the very servicer method
the gRPC edge calls: one set of conversions, checks and resource guards for both edges.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar, cast

import grpc
from google.protobuf import json_format
from google.protobuf.message import Message

from allocation_engine.api.bounds import Bounds
from allocation_engine.api.quote import quote
from allocation_engine.engine.limits import MAX_PAYLOAD_BYTES
from allocation_engine.errors import InvalidInput, LimitExceeded

M = TypeVar("M", bound=Message)

NO_CONTEXT = cast(grpc.ServicerContext, None)
"""What the servicers get for `context` from HTTP: they never read it (the access layer and
interceptors do, and over HTTP the gate does their work)."""

_BOUNDS = Bounds()


def decode(body: bytes, message: M, overrides: dict[str, Any] | None = None) -> M:
    """`message` filled from the JSON `body` (and path parameters in `overrides`), its ranges
    checked; `InvalidInput` naming the field for anything the contract does not admit."""
    if len(body) > MAX_PAYLOAD_BYTES:
        raise LimitExceeded("body", len(body), MAX_PAYLOAD_BYTES)
    try:
        data = json.loads(body or b"{}")
    except (ValueError, UnicodeDecodeError) as bad:
        raise InvalidInput.one("body", quote(body[:40]), f"is not JSON: {bad}") from None
    except RecursionError:
        raise InvalidInput.one("body", quote(body[:40]), "is nested too deeply") from None
    if not isinstance(data, dict):
        raise InvalidInput.one("body", quote(data), "must be a JSON object")
    data.update(overrides or {})
    try:
        json_format.ParseDict(data, message)
    except json_format.ParseError as bad:
        raise InvalidInput.one(
            "body", quote(str(bad)), "does not fit the request message"
        ) from None
    _BOUNDS.check(message)
    return message


def encode(message: Message) -> Any:
    """The answer in the protobuf JSON mapping, with the .proto's field names and every field
    printed (a REST client reads `created: false`, not a missing key)."""
    return json_format.MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )


def call(method: Callable[[M, grpc.ServicerContext], Any], request: M) -> Any:
    """Calls a servicer method as the gRPC edge would, and encodes its answer."""
    return encode(method(request, NO_CONTEXT))
