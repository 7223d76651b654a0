"""`OrderFlow`: carries orders through their workflow, one atomic change per command.

The one entry point callers use (the gRPC servicer, the app, tests, benchmarks). It is the
shared core (`core.py`: the ports and the compare-and-set change loop) with each command handed
to the module of its concern: `placing`, `payments` (payment events, cancelling, refunds),
`fulfilment` (shipments, deliveries, resuming) and `returns`. Reading an order is here.
"""

from __future__ import annotations

from dataclasses import dataclass

from allocation_engine.errors import InvalidInput
from allocation_engine.orders.commands import (
    AcceptShipment,
    CancelOrder,
    InspectReturn,
    PlaceOrder,
    ReceiveReturn,
    RecordDelivery,
    RecordPayment,
    RecordShipment,
    RejectShipment,
    RequestReturn,
    ResumeOrder,
    SupplyChanged,
)
from allocation_engine.orders.machines import OrderState
from allocation_engine.orders.model import Customer, Event, OrderRecord
from allocation_engine.service.orders import fulfilment, payments, placing, returns
from allocation_engine.service.orders.core import FlowCore
from allocation_engine.service.orders.placing import Placed

__all__ = ["OrderFlow", "OrderView", "Placed"]


@dataclass(frozen=True)
class OrderView:
    """An order as customer service sees it: the record, its customer and its timeline."""

    record: OrderRecord
    customer: Customer
    timeline: tuple[Event, ...]


class OrderFlow(FlowCore):
    """Every order command and query; see the modules named in this module's docstring."""

    # placing

    def place(self, command: PlaceOrder) -> Placed:
        """Creates the order (or returns the one placed before with the same external id)."""
        return placing.place(self, command)

    # payments

    def record_payment(self, command: RecordPayment) -> OrderRecord | None:
        """Applies a payment event; None when a webhook carries an event type we ignore."""
        return payments.record_payment(self, command)

    def cancel(self, command: CancelOrder) -> OrderRecord:
        """Cancels an order whose goods have not gone to the WMS: holds released, money back."""
        return payments.cancel(self, command)

    # fulfilment

    def record_shipment(self, command: RecordShipment) -> OrderRecord:
        """A parcel left its node (in full, or short: the rest is rerouted); its part of the
        stock hold is fulfilled."""
        return fulfilment.record_shipment(self, command)

    def reject_shipment(self, command: RejectShipment) -> OrderRecord:
        """A node will not send its parcel: the hold goes back, the units are rerouted."""
        return fulfilment.reject_shipment(self, command)

    def accept_shipment(self, command: AcceptShipment) -> OrderRecord:
        """A node's WMS took a pick list on."""
        return fulfilment.accept_shipment(self, command)

    def supply_changed(self, command: SupplyChanged) -> OrderRecord:
        """Supply its parcels wait for arrived, came late or was cut."""
        return fulfilment.supply_changed(self, command)

    def record_delivery(self, command: RecordDelivery) -> OrderRecord:
        """A parcel reached its destination."""
        return fulfilment.record_delivery(self, command)

    def resume(self, command: ResumeOrder) -> OrderRecord:
        """Runs a blocked (or waiting) workflow again from its current step."""
        return fulfilment.resume(self, command)

    # returns

    def request_return(self, command: RequestReturn) -> tuple[OrderRecord, str]:
        """Opens a return for delivered units; answers with the order and the return's id."""
        return returns.request_return(self, command)

    def receive_return(self, command: ReceiveReturn) -> OrderRecord:
        """Returned goods arrived at a node for inspection."""
        return returns.receive_return(self, command)

    def inspect_return(self, command: InspectReturn) -> OrderRecord:
        """Each received unit is restocked (accepted, refunded) or written off."""
        return returns.inspect_return(self, command)

    # reading

    def get(self, order_id: str) -> OrderView:
        """The order with its customer and its whole timeline."""
        record = self.store.load(order_id)
        return OrderView(record, self.customer_of(record), tuple(self.store.timeline(order_id)))

    def list_orders(
        self,
        customer_id: str | None = None,
        email: str | None = None,
        state: OrderState | None = None,
        offset: int = 0,
        limit: int = 50,
    ) -> list[OrderRecord]:
        """One page of orders, by customer (id or e-mail) and state; an unknown e-mail has
        none."""
        if email:
            customer = self.store.customer_by_email(email.strip().lower())
            if customer is None:
                return []
            customer_id = customer.id
        if not 1 <= limit <= 500:
            raise InvalidInput.one("page_size", limit, "must be between 1 and 500")
        return self.store.list_orders(customer_id, state, offset, limit)
