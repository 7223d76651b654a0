"""What every gRPC servicer does to a request before the use case sees it.

Limits (`Limits`) say how many entries a request may carry: `api.bounds` refuses more as
RESOURCE_EXHAUSTED before any work (with every field's range), `check_limit` is the same check
by hand; `fingerprint` is what makes two requests "the same" for an idempotency key; `deadline_of`
hands the caller's deadline to the service layer; `fields_under` names a decoded message's bad
fields from the request down, the one place the edge adds a field-path prefix.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import grpc
from google.protobuf.message import Message

from allocation_engine.errors import InvalidInput, LimitExceeded
from allocation_engine.service.deadline import Deadline


@dataclass(frozen=True)
class Limits:
    """What one request may carry; beyond it the answer is RESOURCE_EXHAUSTED (`api.bounds`
    names which repeated field counts against which limit)."""

    max_message_bytes: int = 8 * 1024 * 1024
    max_lines_per_order: int = 200
    max_positions_per_chunk: int = 50_000
    max_nodes_per_request: int = 10_000
    max_skus_per_read: int = 1_000
    max_countries_per_node: int = 300
    max_tags_per_node: int = 100


def fingerprint(request: Message) -> str:
    """What makes two requests "the same" for an idempotency key: every field but the key."""
    copy = type(request)()
    copy.CopyFrom(request)
    copy.ClearField("idempotency_key")
    return hashlib.sha256(copy.SerializeToString(deterministic=True)).hexdigest()


def check_limit(field: str, size: int, limit: int) -> None:
    """LimitExceeded naming `field` when it holds more than `limit` entries."""
    if size > limit:
        raise LimitExceeded(field, size, limit)


def deadline_of(context: grpc.ServicerContext) -> Deadline:
    """The caller's deadline (none if it set none) for the use case to check."""
    return Deadline(context.time_remaining())


@contextmanager
def fields_under(prefix: str) -> Iterator[None]:
    """Bad input raised inside is renamed from where it sits in the request:
    `with fields_under("order."): order_from_proto(request.order)` names `order.lines[0].sku`."""
    try:
        yield
    except InvalidInput as bad:
        raise bad.under(prefix) from None


def required_reservation_id(value: str) -> str:
    """The reservation id of a request, which must be given."""
    if not value:
        raise InvalidInput.one("reservation_id", value, "is required")
    return value
