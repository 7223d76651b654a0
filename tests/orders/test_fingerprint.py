"""The idempotency fingerprint: the same request gives the same digest, any change of a field
gives another, and a field added later with a default leaves old requests' digests alone."""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import pytest

from allocation_engine.engine.order import CustomerType, ShipTo
from allocation_engine.orders.commands import (
    CancelOrder,
    CustomerInfo,
    PlaceOrder,
    RecordPayment,
    ResumeOrder,
)
from allocation_engine.orders.fingerprint import canonical_json, fingerprint, same_request
from allocation_engine.orders.model import Item
from allocation_engine.orders.payments import PaymentEvent, PaymentEventKind

COLOGNE = ShipTo(50.94, 6.96, "DE", "50667")


def _place(**changes: object) -> PlaceOrder:
    command = PlaceOrder(
        "web", "w-1", CustomerInfo(email="ada@example.com"), (Item("A", 2, 1990),), COLOGNE
    )
    return dataclasses.replace(command, **changes)  # type: ignore[arg-type]


def test_two_equal_commands_have_the_same_fingerprint() -> None:
    """Given two separately built but equal commands, then their fingerprints are equal."""
    assert _place() == _place()
    assert fingerprint(_place()) == fingerprint(_place())


@pytest.mark.parametrize(
    "changes",
    [
        {"external_id": "w-2"},
        {"items": (Item("A", 3, 1990),)},
        {"customer": CustomerInfo(email="bob@example.com")},
        {"customer_type": CustomerType.B2B},
        {"currency": "CHF"},
        {"pickup_store_id": ""},  # set, though empty, is not the default None
    ],
)
def test_a_changed_field_changes_the_fingerprint(changes: dict[str, object]) -> None:
    """Given a command, when any one field (nested or not) changes, then so does its
    fingerprint."""
    assert fingerprint(_place(**changes)) != fingerprint(_place())


def test_commands_of_other_kinds_with_the_same_fields_differ() -> None:
    """Given a cancel and a resume of one order under one key, then they are not taken for the
    same request."""
    assert fingerprint(CancelOrder("O-1", "k-1")) != fingerprint(ResumeOrder("O-1", "k-1"))


class Refund(Enum):
    FULL = "full"
    NONE = "none"


def _cancel_in_release_1() -> Any:
    """A command as one release defines it ..."""

    @dataclass(frozen=True)
    class Cancel:
        order_id: str
        idempotency_key: str
        reason: str = ""

    return Cancel


def _cancel_in_release_2() -> Any:
    """... and as the next one does, with defaulted fields added."""

    @dataclass(frozen=True)
    class Cancel:
        order_id: str
        idempotency_key: str
        reason: str = ""
        refund: Refund = Refund.FULL
        tags: tuple[str, ...] = field(default_factory=tuple)

    return Cancel


def test_a_field_added_with_a_default_keeps_the_fingerprint_of_a_request_without_it() -> None:
    """Given a request made before its dataclass gained defaulted fields, when the same request
    arrives under the new dataclass without setting them, then the fingerprint is the one
    stored before; setting a new field to another value makes it a different request."""
    Before, Cancel = _cancel_in_release_1(), _cancel_in_release_2()
    old = fingerprint(Before("O-1", "k-1", "customer asked"))
    assert fingerprint(Cancel("O-1", "k-1", "customer asked")) == old
    assert fingerprint(Cancel("O-1", "k-1", "customer asked", Refund.NONE)) != old
    assert fingerprint(Cancel("O-1", "k-1", "customer asked", tags=("vip",))) != old


def test_the_encoding_is_sorted_json_with_enums_by_value_and_defaults_left_out() -> None:
    """Given a payment command with a nested event, then its canonical encoding names the
    classes, gives enums by value, and leaves out every field equal to its default."""
    command = RecordPayment("O-1", "k-1", PaymentEvent(PaymentEventKind.CAPTURED, 3980))
    assert canonical_json(command) == (
        '{"@":"RecordPayment","event":{"@":"PaymentEvent","amount":3980,"kind":"captured"},'
        '"idempotency_key":"k-1","order_id":"O-1"}'
    )


def test_a_whole_float_and_the_int_encode_alike() -> None:
    """Given two equal ship-to points, one with whole floats and one with ints, then they
    fingerprint alike (they compare equal)."""
    assert ShipTo(50.0, 7.0, "DE") == ShipTo(50, 7, "DE")
    assert fingerprint(ShipTo(50.0, 7.0, "DE")) == fingerprint(ShipTo(50, 7, "DE"))


def test_an_object_without_a_canonical_encoding_is_refused() -> None:
    """Given a value that is neither data nor a dataclass, then fingerprinting it fails rather
    than depending on how it prints."""
    with pytest.raises(TypeError, match="no canonical encoding for object"):
        fingerprint(object())


def test_a_fingerprint_stored_by_an_earlier_release_still_matches() -> None:
    """Given a key stored with the repr digest earlier releases wrote, when the same request is
    retried, then it is recognised; another request under that key is not."""
    stored = hashlib.sha256(repr(CancelOrder("O-1", "k-1")).encode()).hexdigest()[:32]
    assert same_request(stored, CancelOrder("O-1", "k-1"))
    assert not same_request(stored, CancelOrder("O-1", "k-1", "changed my mind"))
    assert same_request(fingerprint(CancelOrder("O-1", "k-1")), CancelOrder("O-1", "k-1"))
