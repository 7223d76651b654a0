"""TODO docstring."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import grpc
from google.protobuf.message import Message

from allocation_engine.engine import FieldProblem, InvalidInput
from allocation_engine.errors import (
    LimitExceeded,
)
from allocation_engine.service.deadline import Deadline


@dataclass(frozen=True)
class Limits:
    """What one request may carry; beyond it the answer is RESOURCE_EXHAUSTED."""

    max_message_bytes: int = 8 * 1024 * 1024
    max_lines_per_order: int = 200
    max_positions_per_chunk: int = 50_000
    max_nodes_per_request: int = 10_000
    max_skus_per_read: int = 1_000


def fingerprint(request: Message) -> str:
    """What makes two requests "the same" for an idempotency key: every field but the key."""
    copy = type(request)()
    copy.CopyFrom(request)
    copy.ClearField("idempotency_key")
    return hashlib.sha256(copy.SerializeToString(deterministic=True)).hexdigest()


def check_limit(field: str, size: int, limit: int) -> None:
    if size > limit:
        raise LimitExceeded(field, size, limit)


def deadline_of(context: grpc.ServicerContext) -> Deadline:
    return Deadline(context.time_remaining())


# Fields the engine names from the order down; in the request they sit under `order`.
_ORDER_FIELDS = ("lines[", "ship_to", "pickup_store_id", "customer_type", "delivery_mode")


def order_fields(error: InvalidInput) -> InvalidInput:
    return InvalidInput(
        [
            FieldProblem(
                f"order.{p.field}" if p.field.startswith(_ORDER_FIELDS) else p.field,
                p.value,
                p.problem,
            )
            for p in error.problems
        ]
    )


def required_reservation_id(value: str) -> str:
    if not value:
        raise InvalidInput.one("reservation_id", value, "is required")
    return value
