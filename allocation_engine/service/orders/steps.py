"""The step library: what each workflow step does when the order reaches it.

A step returns DONE (the workflow moves on), WAIT (it needs an outside event: a payment, a
shipment, a delivery) or a `Blocked` with the reason (no stock, the provider refused). Steps
that act on the outside world pass an idempotency key derived from the order, so running a
step again after a crash or a lost race repeats nothing. `advance` runs steps until one waits
or blocks, or the workflow is done.

Before its first step, a placed order's payment is opened with its provider (`open_payment`):
placing stores the order first and calls nobody, so this, like every step, runs on a stored
record and under its keys, and a racer, a retry or a restarted process opens the same payment.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace

from allocation_engine.errors import (
    HoldLapsed,
    InsufficientStock,
    PaymentRefused,
    ProviderUnavailable,
)
from allocation_engine.orders.definition import Step
from allocation_engine.orders.draft import SHIPPED, Draft
from allocation_engine.orders.events import EventType
from allocation_engine.orders.machines import PaymentState, ShipmentState
from allocation_engine.orders.model import FlowStatus
from allocation_engine.ports.payments import PaymentOpened, PaymentRequest
from allocation_engine.service.orders.gateways import Blocked, Gateways, Outcome, Result
from allocation_engine.service.orders.paying import apply_opening
from allocation_engine.service.orders.release import (
    new_parcels,
    parcels_data,
    promise_waiting,
    release_ready,
)
from allocation_engine.service.orders.rerouting import reroute

__all__ = ["STEPS", "Blocked", "Gateways", "Outcome", "advance", "open_payment"]

StepRun = Callable[[Gateways, Draft, Step], Result]


AUTHORIZED_OR_BETTER = frozenset(
    {
        PaymentState.AUTHORIZED,
        PaymentState.CAPTURED,
        PaymentState.PARTIALLY_REFUNDED,
        PaymentState.REFUNDED,
    }
)
CAPTURED_OR_BETTER = AUTHORIZED_OR_BETTER - {PaymentState.AUTHORIZED}


def notify(gateways: Gateways, d: Draft, step: Step) -> Result:
    d.notify(step.param("template"))
    return Outcome.DONE


def await_payment(gateways: Gateways, d: Draft, step: Step) -> Result:
    wanted = AUTHORIZED_OR_BETTER if step.param("until") == "authorized" else CAPTURED_OR_BETTER
    return Outcome.DONE if d.record.payment.state in wanted else Outcome.WAIT


def reserve(gateways: Gateways, d: Draft, step: Step) -> Result:
    if d.record.reservation_id:
        return Outcome.DONE
    attempt = d.record.reserve_attempt
    try:
        try:
            hold = gateways.stock.reserve(d.record.order, d.record.key(f"reserve:{attempt}"))
        except HoldLapsed:  # a dead call's hold ran out before it was recorded: hold anew
            attempt += 1
            d.update(reserve_attempt=attempt)
            hold = gateways.stock.reserve(d.record.order, d.record.key(f"reserve:{attempt}"))
    except InsufficientStock as short:
        d.update(reserve_attempt=attempt + 1)  # a stock reservation remembers its refusal
        return Blocked(
            "insufficient stock",
            {
                "shortfalls": [
                    {"sku": s.sku, "requested": s.requested, "available": s.available}
                    for s in short.shortfalls
                ]
            },
        )
    d.order_to("allocate")
    shipments = new_parcels(d, hold)
    d.update(reservation_id=hold.reservation_id)
    d.emit(
        EventType.ORDER_ALLOCATED,
        reservation_id=hold.reservation_id,
        shipments=parcels_data(shipments),
    )
    promise_waiting(d, shipments)
    return Outcome.DONE


def capture_payment(gateways: Gateways, d: Draft, step: Step) -> Result:
    payment = d.record.payment
    if payment.state in CAPTURED_OR_BETTER:
        return Outcome.DONE
    attempt = d.record.capture_attempt
    key = d.record.key("capture" if attempt == 0 else f"capture:{attempt}")
    try:
        gateways.payment(d).capture(payment.reference, payment.amount, key)
    except ProviderUnavailable as failed:  # whether it captured is unknown: retry the same key
        return Blocked(f"capture failed: {failed}")
    except PaymentRefused as refused:
        # The provider said no and captured nothing, and it would replay that answer for this
        # key forever: the next try (ResumeOrder, once the cause is fixed) asks under a new one.
        d.update(capture_attempt=attempt + 1)
        return Blocked(f"capture failed: {refused}")
    d.payment_to("capture", captured=payment.amount)
    d.emit(EventType.PAYMENT_CAPTURED, amount=payment.amount, reference=payment.reference)
    return Outcome.DONE


def release_to_wms(gateways: Gateways, d: Draft, step: Step) -> Result:
    """Hands each parcel whose units are on the shelf to its node; a backordered parcel is
    promised its day and released by `await_shipment` once its supply arrived."""
    release_ready(gateways, d)
    return Outcome.DONE


def await_shipment(gateways: Gateways, d: Draft, step: Step) -> Result:
    """Waits for every parcel to leave; units a node rejected or picked short are rerouted
    first (see `rerouting.py`), so their new parcels are waited for too, and backordered
    parcels are released once their supply is on the shelf."""
    rerouted = reroute(gateways, d)
    if isinstance(rerouted, Blocked) or d.record.status is FlowStatus.CANCELLED:
        return rerouted
    release_ready(gateways, d)
    done = all(s.state in SHIPPED for s in d.record.live_shipments) and not d.record.unrouted()
    return Outcome.DONE if done else Outcome.WAIT


def await_delivery(gateways: Gateways, d: Draft, step: Step) -> Result:
    done = all(s.state is ShipmentState.DELIVERED for s in d.record.live_shipments)
    return Outcome.DONE if done else Outcome.WAIT


def invoice(gateways: Gateways, d: Draft, step: Step) -> Result:
    payment = d.record.payment
    due_at = d.now + 86400 * int(step.param("due_days"))
    d.payment_to("invoice", due_at=due_at)
    d.emit(
        EventType.INVOICE_ISSUED,
        number=payment.reference,
        amount=payment.amount,
        due_at=due_at,
        paid=payment.state in CAPTURED_OR_BETTER,
    )
    return Outcome.DONE


STEPS: Mapping[str, StepRun] = {
    "notify": notify,
    "await_payment": await_payment,
    "reserve": reserve,
    "capture_payment": capture_payment,
    "release_to_wms": release_to_wms,
    "await_shipment": await_shipment,
    "await_delivery": await_delivery,
    "invoice": invoice,
}


def advance(gateways: Gateways, d: Draft) -> None:
    """Opens the payment of an order placed a moment ago (or placed by a call that died), then
    runs the workflow from the current step until a step waits or blocks, or it ends; an
    authorization or failure that came with the opening is applied after the steps it found
    waiting, and the workflow runs on from there."""
    opened = None
    if not d.record.payment.opened and d.record.status is not FlowStatus.CANCELLED:
        opened = open_payment(gateways, d)
        if d.record.payment.state is not PaymentState.PENDING:
            opened = None  # the provider's event (a webhook) came first and said as much
    _run(gateways, d)
    if opened is not None and apply_opening(d, opened):
        _run(gateways, d)


def open_payment(gateways: Gateways, d: Draft) -> PaymentOpened:
    """Asks the order's provider to open its payment, with everything from the stored record
    (the card token is dropped once used) under the key `order:<id>:<nonce>:open`: however often
    this runs for one order, the provider opens one payment (one PaymentIntent) and answers
    every repeat with it. A provider that refuses outright opened nothing: that is the answer
    (a failed payment the customer or an operator may still settle), not an error. When the
    provider cannot be reached the error goes up and the order stays unopened, for a retry."""
    record = d.record
    payment = record.payment
    try:
        opened = gateways.payment(d).open(
            PaymentRequest(
                order_id=record.id,
                amount=payment.amount,
                currency=record.currency,
                email=d.customer.email,
                idempotency_key=record.key("open"),
                payment_method=payment.method,
                description=f"{record.channel} order {record.external_id}",
            )
        )
    except PaymentRefused as refused:
        opened = PaymentOpened(reference="", failure=str(refused))
    d.update(
        payment=replace(
            payment,
            opened=True,
            method="",
            reference=opened.reference,
            client_secret=opened.client_secret,
        )
    )
    return opened


def _run(gateways: Gateways, d: Draft) -> None:
    """Runs the workflow from the current step until a step waits or blocks, or it ends."""
    steps = d.workflow.steps
    while d.record.status is not FlowStatus.CANCELLED and d.record.step < len(steps):
        step = steps[d.record.step]
        result = STEPS[step.kind](gateways, d, step)
        if isinstance(result, Blocked):
            if (
                d.record.status is not FlowStatus.BLOCKED
                or d.record.blocked_reason != result.reason
            ):
                d.emit(
                    EventType.WORKFLOW_BLOCKED,
                    step=step.kind,
                    reason=result.reason,
                    **result.details,
                )
            d.update(status=FlowStatus.BLOCKED, blocked_reason=result.reason)
            return
        if result is Outcome.WAIT:
            d.update(status=FlowStatus.WAITING, blocked_reason="")
            return
        d.update(step=d.record.step + 1)
    if d.record.status in (FlowStatus.WAITING, FlowStatus.BLOCKED):
        d.update(status=FlowStatus.DONE, blocked_reason="")
        d.emit(EventType.WORKFLOW_COMPLETED, workflow=d.workflow.name)
