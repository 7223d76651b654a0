"""TODO docstring."""

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
