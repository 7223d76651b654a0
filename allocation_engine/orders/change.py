"""The unit of writing: everything one command changed in one order, stored all or nothing.

A command builds a `Draft`; when it succeeds as a whole the draft becomes an `OrderChange`, and
an `OrderStore` writes the new record, its events and any new customer in one compare-and-set
on the version the command read. Keeping this record apart from the store port lets the pure
lifecycle describe a write without knowing how any store makes it atomic.
"""

from __future__ import annotations

from dataclasses import dataclass

from allocation_engine.orders.machines import OrderState
from allocation_engine.orders.model import Customer, Event, OrderRecord


@dataclass(frozen=True)
class OrderChange:
    """One atomic write: the order at its new version, the events it appended, and a new
    customer when the change created one. `expected_version` 0 creates the order;
    `previous_state` is the state at that version (stores index orders by state)."""

    record: OrderRecord
    expected_version: int
    previous_state: OrderState
    events: tuple[Event, ...]
    new_customer: Customer | None = None
