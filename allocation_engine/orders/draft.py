"""A change being made to one order: the new record so far and the events it appends.

A command works on a `Draft`; only when it succeeds as a whole does the draft become one atomic
store write (`OrderChange`). Every transition goes through the state machines first, so an
illegal one raises before anything changed. Events whose type the workflow maps to an e-mail
template also append a `NOTIFICATION_REQUESTED` event: the outbox sends the e-mail from it.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from allocation_engine.orders.change import OrderChange
from allocation_engine.orders.definition import Workflow
from allocation_engine.orders.events import EventType
from allocation_engine.orders.machines import ORDER, PAYMENT, RETURN, SHIPMENT, ShipmentState
from allocation_engine.orders.model import Customer, Event, OrderRecord, Return, Shipment

SHIPPED = frozenset({ShipmentState.SHIPPED, ShipmentState.DELIVERED})
DELIVERED = frozenset({ShipmentState.DELIVERED})


class Draft:
    """One command's change to one order, at one moment (`now`, from the caller's clock).

    Starts from the stored record and remembers the version and state it was read at, which the
    write is guarded by; collects the events appended on the way.
    """

    def __init__(
        self,
        record: OrderRecord,
        customer: Customer,
        workflow: Workflow,
        now: float,
        new_customer: Customer | None = None,
    ) -> None:
        self.base_version = record.version
        self.base_state = record.state
        self.record = record
        self.customer = customer
        self.workflow = workflow
        self.now = now
        self.new_customer = new_customer
        self.events: list[Event] = []

    # events

    def emit(self, type_: EventType, **data: Any) -> Event:
        """Appends an event, and the e-mail the workflow sends for this event type, if any."""
        event = self._append(type_, data)
        template = self.workflow.notify.get(type_)
        if template is not None:
            self.notify(template, event)
        return event

    def notify(self, template: str, cause: Event | None = None) -> None:
        """Appends a notification event for `template`, with everything the e-mail shows (none
        for an account without an e-mail address: the timeline has the cause anyway)."""
        if not self.customer.email:
            return
        seq = self.record.events
        self._append(
            EventType.NOTIFICATION_REQUESTED,
            {
                "key": f"{self.record.id}/{seq}",
                "to": self.customer.email,
                "name": self.customer.name,
                "language": self.customer.language,
                "template": template,
                "context": mail_context(self.record, self.customer, cause),
            },
        )

    def _append(self, type_: EventType, data: dict[str, Any]) -> Event:
        event = Event(self.record.id, self.record.events, type_, self.now, data)
        self.record = replace(self.record, events=self.record.events + 1)
        self.events.append(event)
        return event

    # transitions (each checks its table before it changes anything)

    def order_to(self, trigger: str) -> None:
        state = ORDER.next(self.record.state, trigger, self.record.id)
        self.record = replace(self.record, state=state)

    def payment_to(self, trigger: str, **changes: Any) -> None:
        payment = self.record.payment
        state = PAYMENT.next(payment.state, trigger, self.record.id)
        self.record = replace(self.record, payment=replace(payment, state=state, **changes))

    def shipment_to(self, shipment: Shipment, trigger: str, **changes: Any) -> Shipment:
        state = SHIPMENT.next(shipment.state, trigger, shipment.id)
        moved = replace(shipment, state=state, **changes)
        self.record = replace(
            self.record,
            shipments=tuple(moved if s.id == shipment.id else s for s in self.record.shipments),
        )
        return moved

    def return_to(self, ret: Return, trigger: str, **changes: Any) -> Return:
        state = RETURN.next(ret.state, trigger, ret.id)
        moved = replace(ret, state=state, **changes)
        self.record = replace(
            self.record, returns=tuple(moved if r.id == ret.id else r for r in self.record.returns)
        )
        return moved

    def update(self, **changes: Any) -> None:
        self.record = replace(self.record, **changes)

    def mark(self) -> tuple[OrderRecord, int]:
        """The draft as it stands, for `undo`: a step that finds half-way that it cannot go on
        (a refund refused after its events were drafted) leaves no trace of itself."""
        return self.record, len(self.events)

    def undo(self, mark: tuple[OrderRecord, int]) -> None:
        """Back to what `mark` saw: the record and the events drafted until then."""
        self.record, drafted = mark
        del self.events[drafted:]

    # the write

    def change(self, key: str, fingerprint: str) -> OrderChange:
        """The atomic write this draft amounts to, remembering the idempotency key."""
        keys = dict(self.record.keys)
        if key:
            keys[key] = fingerprint
        self.record = replace(
            self.record, version=self.base_version + 1, keys=keys, updated_at=self.now
        )
        return OrderChange(
            self.record, self.base_version, self.base_state, tuple(self.events), self.new_customer
        )


def mail_context(record: OrderRecord, customer: Customer, cause: Event | None) -> dict[str, Any]:
    """Plain data for the e-mail templates: the order as it stands and the event's details."""
    return {
        "order": {
            "id": record.id,
            "external_id": record.external_id,
            "channel": record.channel,
            "currency": record.currency,
            "total": record.total,
            "items": [
                {
                    "sku": i.sku,
                    "name": i.name or i.sku,
                    "quantity": i.quantity,
                    "unit_price": i.unit_price,
                    "total": i.total,
                }
                for i in record.items
            ],
            "address": {
                "name": record.address.name,
                "street": record.address.street,
                "postal_code": record.address.postal_code,
                "city": record.address.city,
                "country": record.address.country,
            },
        },
        "customer": {"id": customer.id, "name": customer.name, "email": customer.email},
        "event": {"type": cause.type.value, "at": cause.at, **cause.data} if cause else {},
    }
