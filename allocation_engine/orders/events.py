"""The event types an order's timeline records, as one enum.

Each member's value is the string stored with the event and shown in the gRPC timeline
(`order.placed`, `shipment.released`, ...), so naming a type through the enum changes nothing
that was ever written; a typo in a member name fails at import instead of never matching.
"""

from __future__ import annotations

from enum import StrEnum


class EventType(StrEnum):
    """Every event the workflow appends, in the order an order usually meets them."""

    ORDER_PLACED = "order.placed"
    PAYMENT_AUTHORIZED = "payment.authorized"
    PAYMENT_CAPTURED = "payment.captured"
    PAYMENT_FAILED = "payment.failed"
    PAYMENT_VOIDED = "payment.voided"
    ORDER_ALLOCATED = "order.allocated"
    SHIPMENT_RELEASED = "shipment.released"
    """A parcel's pick list handed to its node: the outbox sends it to the WMS."""
    SHIPMENT_BACKORDERED = "shipment.backordered"
    """A parcel waits for incoming supply: promised to leave on `ready_on` (again with
    `previous` when the supply came late and the promise moved)."""
    SHIPMENT_ACCEPTED = "shipment.accepted"
    """The node's WMS took the pick list on: it will pick the parcel."""
    SHIPMENT_REJECTED = "shipment.rejected"
    """The node refused a parcel or picked it short: what it did not send is rerouted."""
    ORDER_REROUTED = "order.rerouted"
    """Units a node did not send were allocated again, to other nodes, and released there."""
    LINES_CANCELLED = "order.lines_cancelled"
    """Units no node could take over were cancelled (and refunded), the rest of the order
    goes on."""
    SHIPMENT_SHIPPED = "shipment.shipped"
    SHIPMENT_DELIVERED = "shipment.delivered"
    INVOICE_ISSUED = "invoice.issued"
    WORKFLOW_BLOCKED = "workflow.blocked"
    WORKFLOW_COMPLETED = "workflow.completed"
    ORDER_CANCELLED = "order.cancelled"
    RETURN_REQUESTED = "return.requested"
    RETURN_RECEIVED = "return.received"
    RETURN_INSPECTED = "return.inspected"
    REFUND_ISSUED = "refund.issued"
    CREDIT_ISSUED = "credit.issued"
    NOTIFICATION_REQUESTED = "notification.requested"
    """An e-mail to send: the outbox turns it into one; its data is a complete Notification."""


NOTIFIABLE: tuple[EventType, ...] = tuple(
    t for t in EventType if t is not EventType.NOTIFICATION_REQUESTED
)
"""The types a workflow's notify table may map to an e-mail template (a notification does not
notify about itself)."""
