"""Event types: an enum whose values are the strings stored and sent on the wire."""

from __future__ import annotations

from allocation_engine.orders.events import NOTIFIABLE, EventType
from allocation_engine.orders.model import Event

WIRE = [
    "order.placed",
    "payment.authorized",
    "payment.captured",
    "payment.failed",
    "payment.voided",
    "order.allocated",
    "shipment.released",
    "shipment.backordered",
    "shipment.accepted",
    "shipment.rejected",
    "order.rerouted",
    "order.lines_cancelled",
    "shipment.shipped",
    "shipment.delivered",
    "invoice.issued",
    "workflow.blocked",
    "workflow.completed",
    "order.cancelled",
    "return.requested",
    "return.received",
    "return.inspected",
    "refund.issued",
    "credit.issued",
    "notification.requested",
]
"""The event types as stored events and the gRPC timeline have always spelt them."""


def test_the_stored_values_are_the_strings_events_were_always_stored_under() -> None:
    """Given the enum, then its values are exactly the strings of the stored event log, and
    each member equals its string."""
    assert [t.value for t in EventType] == WIRE
    assert all(EventType(value) == value for value in WIRE)


def test_every_type_but_the_notification_itself_may_be_notified_about() -> None:
    """Given the notify table's choices, then they are every type but NOTIFICATION_REQUESTED."""
    assert set(NOTIFIABLE) == set(EventType) - {EventType.NOTIFICATION_REQUESTED}


def test_an_event_read_back_with_a_plain_string_type_carries_the_member() -> None:
    """Given an event as a store reads it back (its type a plain string), then its type is the
    enum member, equal to the event that was written."""
    read = Event("O-1", 0, "shipment.released", 1.0)  # type: ignore[arg-type]
    assert read.type is EventType.SHIPMENT_RELEASED
    assert read == Event("O-1", 0, EventType.SHIPMENT_RELEASED, 1.0)
