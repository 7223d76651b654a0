"""The four state machines of an order's life, as transition tables.

Each table is data: state -> {trigger: next state}. Anything not in the table is illegal and
raises `IllegalTransition` before any change is made, which the gRPC edge answers with
FAILED_PRECONDITION. Partial states are real states: an order with one of two parcels out is
PARTIALLY_SHIPPED, a payment refunded in part is PARTIALLY_REFUNDED.

Triggers that come in "some" and "rest" pairs are chosen by the caller from quantities: a
shipment that leaves the last unshipped units is `ship_rest`, any other `ship_some`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Generic, TypeVar

from allocation_engine.errors import IllegalTransition


class OrderState(StrEnum):
    """Where the goods of an order are. Payment and returns have machines of their own."""

    PLACED = "PLACED"
    ALLOCATED = "ALLOCATED"  # stock held at the shipping nodes
    RELEASED = "RELEASED"  # pick lists handed to the WMS
    PARTIALLY_SHIPPED = "PARTIALLY_SHIPPED"
    SHIPPED = "SHIPPED"
    PARTIALLY_DELIVERED = "PARTIALLY_DELIVERED"
    DELIVERED = "DELIVERED"
    PARTIALLY_RETURNED = "PARTIALLY_RETURNED"  # some units are back at a node
    RETURNED = "RETURNED"  # every unit of the order is back
    CANCELLED = "CANCELLED"


class PaymentState(StrEnum):
    PENDING = "PENDING"  # opened with the provider, nothing authorized yet
    AUTHORIZED = "AUTHORIZED"
    FAILED = "FAILED"  # the last attempt failed; the customer may try again
    INVOICED = "INVOICED"  # invoice sent, payment due
    CAPTURED = "CAPTURED"  # the money is ours
    PARTIALLY_REFUNDED = "PARTIALLY_REFUNDED"
    REFUNDED = "REFUNDED"
    VOIDED = "VOIDED"  # authorization or invoice cancelled


class ShipmentState(StrEnum):
    PENDING = "PENDING"  # stock held, not yet at the WMS
    RELEASED = "RELEASED"
    SHIPPED = "SHIPPED"
    DELIVERED = "DELIVERED"
    CANCELLED = "CANCELLED"
    REJECTED = "REJECTED"  # its node refused it (no stock, no capacity, damaged): rerouted


LIVE_SHIPMENTS = frozenset(
    {ShipmentState.PENDING, ShipmentState.RELEASED, ShipmentState.SHIPPED, ShipmentState.DELIVERED}
)
"""Parcels that carry units of the order: not cancelled, not rejected by their node."""


class ReturnState(StrEnum):
    REQUESTED = "REQUESTED"
    PARTIALLY_RECEIVED = "PARTIALLY_RECEIVED"
    RECEIVED = "RECEIVED"
    INSPECTED = "INSPECTED"  # every received unit restocked or written off; refund decided


S = TypeVar("S", bound=StrEnum)


@dataclass(frozen=True)
class StateMachine(Generic[S]):
    """A named transition table."""

    name: str
    table: Mapping[S, Mapping[str, S]]

    def next(self, state: S, trigger: str, subject: str) -> S:
        """The state after `trigger`, or IllegalTransition naming what is allowed instead."""
        moves = self.table.get(state, {})
        if trigger not in moves:
            raise IllegalTransition(self.name, subject, state.value, trigger, sorted(moves))
        return moves[trigger]

    def allows(self, state: S, trigger: str) -> bool:
        return trigger in self.table.get(state, {})


_O = OrderState
ORDER = StateMachine[OrderState](
    "order",
    {
        _O.PLACED: {"allocate": _O.ALLOCATED, "cancel": _O.CANCELLED},
        _O.ALLOCATED: {"release": _O.RELEASED, "cancel": _O.CANCELLED},
        # Released, every parcel rejected, and no node can take the units over (a customer's
        # cancel is refused once pick lists are out: that is "cancel", not "cancel_rest").
        _O.RELEASED: {
            "ship_some": _O.PARTIALLY_SHIPPED,
            "ship_rest": _O.SHIPPED,
            "cancel_rest": _O.CANCELLED,
        },
        _O.PARTIALLY_SHIPPED: {
            "ship_some": _O.PARTIALLY_SHIPPED,
            "ship_rest": _O.SHIPPED,
            "deliver_some": _O.PARTIALLY_SHIPPED,  # one parcel arrived, another not yet sent
            "return_some": _O.PARTIALLY_RETURNED,
        },
        _O.SHIPPED: {"deliver_some": _O.PARTIALLY_DELIVERED, "deliver_rest": _O.DELIVERED},
        _O.PARTIALLY_DELIVERED: {
            "deliver_some": _O.PARTIALLY_DELIVERED,
            "deliver_rest": _O.DELIVERED,
            "return_some": _O.PARTIALLY_RETURNED,
        },
        _O.DELIVERED: {"return_some": _O.PARTIALLY_RETURNED, "return_rest": _O.RETURNED},
        # Once anything is back, the order stays PARTIALLY_RETURNED while later parcels move.
        _O.PARTIALLY_RETURNED: {
            "ship_some": _O.PARTIALLY_RETURNED,
            "ship_rest": _O.PARTIALLY_RETURNED,
            "deliver_some": _O.PARTIALLY_RETURNED,
            "deliver_rest": _O.PARTIALLY_RETURNED,
            "return_some": _O.PARTIALLY_RETURNED,
            "return_rest": _O.RETURNED,
        },
    },
)

_P = PaymentState
PAYMENT = StateMachine[PaymentState](
    "payment",
    {
        _P.PENDING: {
            "authorize": _P.AUTHORIZED,
            "capture": _P.CAPTURED,  # paid in one step (a bank transfer, an auto-captured card)
            "fail": _P.FAILED,
            "invoice": _P.INVOICED,
            "credit": _P.PENDING,  # goods came back before the invoice went out
            "void": _P.VOIDED,
        },
        _P.FAILED: {
            "authorize": _P.AUTHORIZED,  # the customer tried another card
            "capture": _P.CAPTURED,
            "fail": _P.FAILED,
            "void": _P.VOIDED,
        },
        _P.AUTHORIZED: {"capture": _P.CAPTURED, "void": _P.VOIDED},
        _P.INVOICED: {"capture": _P.CAPTURED, "credit": _P.INVOICED, "void": _P.VOIDED},
        _P.CAPTURED: {
            "invoice": _P.CAPTURED,  # paid before the invoice: it goes out marked as paid
            "refund_some": _P.PARTIALLY_REFUNDED,
            "refund_rest": _P.REFUNDED,
        },
        _P.PARTIALLY_REFUNDED: {
            "refund_some": _P.PARTIALLY_REFUNDED,
            "refund_rest": _P.REFUNDED,
        },
    },
)

_S = ShipmentState
SHIPMENT = StateMachine[ShipmentState](
    "shipment",
    {
        # "promise": a parcel waiting for incoming supply gets (another) promised day
        _S.PENDING: {"release": _S.RELEASED, "cancel": _S.CANCELLED, "promise": _S.PENDING},
        _S.RELEASED: {"accept": _S.RELEASED, "ship": _S.SHIPPED, "reject": _S.REJECTED},
        _S.SHIPPED: {"deliver": _S.DELIVERED},
    },
)

_R = ReturnState
RETURN = StateMachine[ReturnState](
    "return",
    {
        _R.REQUESTED: {"receive_some": _R.PARTIALLY_RECEIVED, "receive_rest": _R.RECEIVED},
        _R.PARTIALLY_RECEIVED: {
            "receive_some": _R.PARTIALLY_RECEIVED,
            "receive_rest": _R.RECEIVED,
            "inspect": _R.INSPECTED,  # what arrived is inspected; the rest is not expected
        },
        _R.RECEIVED: {"inspect": _R.INSPECTED},
    },
)
