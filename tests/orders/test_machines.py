"""The four state machines as transition tables: what is allowed, what is not, and that every
state (the partial ones included) can be reached."""

from __future__ import annotations

from collections import deque
from enum import StrEnum
from typing import Any

import pytest

from allocation_engine.errors import IllegalTransition
from allocation_engine.orders.machines import (
    ORDER,
    PAYMENT,
    RETURN,
    SHIPMENT,
    OrderState,
    PaymentState,
    ReturnState,
    ShipmentState,
    StateMachine,
)

MACHINES: list[tuple[StateMachine[Any], StrEnum]] = [
    (ORDER, OrderState.PLACED),
    (PAYMENT, PaymentState.PENDING),
    (SHIPMENT, ShipmentState.PENDING),
    (RETURN, ReturnState.REQUESTED),
]


def _reachable(machine: StateMachine[Any], start: StrEnum) -> set[StrEnum]:
    seen, todo = {start}, deque([start])
    while todo:
        for target in machine.table.get(todo.popleft(), {}).values():
            if target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


@pytest.mark.parametrize(("machine", "start"), MACHINES, ids=lambda m: getattr(m, "name", ""))
def test_every_state_is_reachable_from_the_first(
    machine: StateMachine[Any], start: StrEnum
) -> None:
    """Given a machine's table, when it is walked from its first state, then every state of its
    enum is reached: no state is dead data."""
    assert _reachable(machine, start) == set(type(start))


def test_an_order_passes_through_its_partial_states() -> None:
    """Given an order, when parcels ship, arrive and come back one by one, then it is
    PARTIALLY_SHIPPED, PARTIALLY_DELIVERED and PARTIALLY_RETURNED on the way."""
    state = OrderState.PLACED
    seen = []
    for trigger in (
        "allocate",
        "release",
        "ship_some",
        "ship_rest",
        "deliver_some",
        "deliver_rest",
        "return_some",
        "return_rest",
    ):
        state = ORDER.next(state, trigger, "o-1")
        seen.append(state)
    assert seen == [
        OrderState.ALLOCATED,
        OrderState.RELEASED,
        OrderState.PARTIALLY_SHIPPED,
        OrderState.SHIPPED,
        OrderState.PARTIALLY_DELIVERED,
        OrderState.DELIVERED,
        OrderState.PARTIALLY_RETURNED,
        OrderState.RETURNED,
    ]


def test_a_refunded_payment_cannot_be_refunded_again() -> None:
    """Given a REFUNDED payment, when another refund is asked for, then IllegalTransition names
    the machine, the subject, the state and that nothing is allowed."""
    with pytest.raises(IllegalTransition) as raised:
        PAYMENT.next(PaymentState.REFUNDED, "refund_some", "o-7")
    error = raised.value
    assert (error.machine, error.subject, error.state, error.trigger) == (
        "payment",
        "o-7",
        "REFUNDED",
        "refund_some",
    )
    assert error.allowed == ()
    assert "final state" in str(error)


def test_an_order_at_the_warehouse_cannot_be_cancelled() -> None:
    """Given an order RELEASED to the WMS, when it is cancelled, then the error lists what is
    allowed instead (shipping it)."""
    with pytest.raises(IllegalTransition) as raised:
        ORDER.next(OrderState.RELEASED, "cancel", "o-1")
    assert raised.value.allowed == ("cancel_rest", "ship_rest", "ship_some")


@pytest.mark.parametrize(
    ("machine", "finals"),
    [
        (ORDER, {OrderState.RETURNED, OrderState.CANCELLED}),
        (PAYMENT, {PaymentState.REFUNDED, PaymentState.VOIDED}),
        (SHIPMENT, {ShipmentState.DELIVERED, ShipmentState.CANCELLED, ShipmentState.REJECTED}),
        (RETURN, {ReturnState.INSPECTED}),
    ],
    ids=["order", "payment", "shipment", "return"],
)
def test_final_states_allow_nothing(machine: StateMachine[Any], finals: set[StrEnum]) -> None:
    """Given each machine, then exactly its final states have no way out."""
    states = set(next(iter(finals)).__class__)
    assert {s for s in states if not machine.table.get(s)} == finals
