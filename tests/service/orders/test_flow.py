"""`OrderFlow` end to end in one process, on real stores and the card test peer: placement,
payment, allocation, fulfilment, cancellation, blocking and resuming, returns and refunds,
idempotency, and that a refused command changes nothing."""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path

import pytest

from allocation_engine.engine import InvalidInput
from allocation_engine.errors import IllegalTransition, KeyReused
from allocation_engine.orders.commands import (
    CancelOrder,
    CustomerInfo,
    Inspection,
    InspectReturn,
    ReceiveReturn,
    RecordDelivery,
    RecordPayment,
    RecordShipment,
    RequestReturn,
    ResumeOrder,
    ReturnItem,
)
from allocation_engine.orders.definition import load_workflows
from allocation_engine.orders.events import EventType
from allocation_engine.orders.fingerprint import fingerprint
from allocation_engine.orders.machines import OrderState, PaymentState, ShipmentState
from allocation_engine.orders.model import FlowStatus, OrderRecord
from allocation_engine.orders.payments import PaymentEvent, PaymentEventKind
from allocation_engine.ports.inventory import Adjustment, ReservationState
from tests.support.orders import TEMPLATES, World, b2b, b2c

DATA = Path(__file__).resolve().parents[2] / "data" / "workflows"


def templates(world: World, order_id: str) -> list[str]:
    return [
        e.data["template"]
        for e in world.flow.get(order_id).timeline
        if e.type == EventType.NOTIFICATION_REQUESTED
    ]


def ship_and_deliver(world: World, record: OrderRecord) -> OrderRecord:
    for s in record.shipments:
        record = world.flow.record_shipment(
            RecordShipment(record.id, s.id, "DHL", f"00340{s.id}", f"ship-{s.id}")
        )
        record = world.flow.record_delivery(RecordDelivery(record.id, s.id, f"deliver-{s.id}"))
    return record


def test_a_card_order_authorized_at_checkout_goes_to_the_warehouse(world: World) -> None:
    """Given a consumer order with a card that authorizes, when it is placed, then the stock is
    held, the money captured, the pick list released, and the order waits for the parcel."""
    record = world.flow.place(b2c("w-1", A=2, B=1)).record
    assert record.state is OrderState.RELEASED
    assert (record.status, record.step) == (FlowStatus.WAITING, 5)  # await_shipment
    assert record.payment.state is PaymentState.CAPTURED
    assert record.payment.captured == 2 * 1990 + 4900
    intent = world.peer.intents[record.payment.reference]
    assert (intent["status"], intent["amount_received"]) == ("succeeded", 8880)
    (shipment,) = record.shipments
    assert (shipment.node_id, shipment.state) == ("WH-KOELN", ShipmentState.RELEASED)
    assert world.on_hand("WH-KOELN", "A") == (10, 2)
    assert world.on_hand("WH-KOELN", "B") == (4, 1)
    assert templates(world, record.id) == ["order_received", "payment_confirmed"]


def test_placing_the_same_order_again_returns_the_first(world: World) -> None:
    """Given a placed order, when the channel sends it again, then the same order comes back,
    nothing is held or charged twice; the same external id with other lines is refused."""
    first = world.flow.place(b2c("w-1", A=2))
    again = world.flow.place(b2c("w-1", A=2))
    assert (first.created, again.created) == (True, False)
    assert again.record == first.record
    assert len(world.peer.intents) == 1
    assert world.on_hand("WH-KOELN", "A") == (10, 2)
    with pytest.raises(KeyReused) as reused:
        world.flow.place(b2c("w-1", A=3))
    assert reused.value.field == "external_order_id"


def test_orders_attach_to_the_customer_found_by_e_mail_or_id(world: World) -> None:
    """Given a customer created by a first order, when the next order gives the same e-mail in
    other case, or a business gives its customer id, then no second account is made."""
    one = world.flow.place(b2c("w-1", A=1)).record
    shouting = CustomerInfo(email="ADA@Example.COM", name="Ada")
    two = world.flow.place(replace(b2c("w-2", A=1), customer=shouting)).record
    assert one.customer_id == two.customer_id
    acme_1 = world.flow.place(b2b("po-1", C=1)).record
    acme_2 = world.flow.place(b2b("po-2", C=1)).record
    assert acme_1.customer_id == acme_2.customer_id == "ACME"
    listed = world.flow.list_orders(email="ADA@example.com")
    assert [r.id for r in listed] == [two.id, one.id]


def test_a_declined_card_waits_for_another_payment(world: World) -> None:
    """Given a card that is declined at checkout, when the order is placed, then it waits for
    payment holding no stock and the customer is told; when a later payment is authorized, it
    carries on."""
    record = world.flow.place(b2c("w-1", payment_method="pm_card_chargeDeclined", A=2)).record
    assert record.payment.state is PaymentState.FAILED
    assert "card_declined" in record.payment.failure
    assert (record.state, record.status) == (OrderState.PLACED, FlowStatus.WAITING)
    assert world.on_hand("WH-KOELN", "A") == (10, 0)
    assert templates(world, record.id) == ["order_received", "payment_failed"]
    world.peer.dispatch(
        "POST",
        f"/v1/payment_intents/{record.payment.reference}/confirm",
        {"payment_method": "pm_card_visa"},
        "customer-retry",
    )
    event = PaymentEvent(PaymentEventKind.AUTHORIZED, 3980, record.payment.reference)
    record = world.flow.record_payment(RecordPayment(record.id, "auth-1", event))
    assert record is not None
    assert (record.state, record.payment.state) == (OrderState.RELEASED, PaymentState.CAPTURED)


def test_an_illegal_event_is_refused_and_changes_nothing(world: World) -> None:
    """Given a shipped parcel, when it is reported shipped again under a new key, then the
    answer is IllegalTransition and the order, its timeline and the stock stay as they were."""
    record = world.flow.place(b2c("w-1", A=2)).record
    (shipment,) = record.shipments
    record = world.flow.record_shipment(RecordShipment(record.id, shipment.id, "DHL", "1", "k-1"))
    timeline = world.flow.get(record.id).timeline
    stock = world.on_hand("WH-KOELN", "A")
    with pytest.raises(IllegalTransition) as raised:
        world.flow.record_shipment(RecordShipment(record.id, shipment.id, "UPS", "2", "k-2"))
    assert (raised.value.machine, raised.value.state) == ("shipment", "SHIPPED")
    assert world.flow.get(record.id).record == record
    assert world.flow.get(record.id).timeline == timeline
    assert world.on_hand("WH-KOELN", "A") == stock == (8, 0)


def test_a_retried_command_applies_once_and_a_reused_key_is_refused(world: World) -> None:
    """Given a shipment recorded with key k-1, when the same call comes again, then the order
    is answered as it stands and nothing happens twice; k-1 with another parcel is refused."""
    record = world.flow.place(b2c("w-1", A=12)).record  # 10 from Koeln, 2 from Berlin
    first, second = record.shipments
    command = RecordShipment(record.id, first.id, "DHL", "1", "k-1")
    once = world.flow.record_shipment(command)
    twice = world.flow.record_shipment(command)
    assert once == twice and once.state is OrderState.PARTIALLY_SHIPPED
    with pytest.raises(KeyReused):
        world.flow.record_shipment(RecordShipment(record.id, second.id, "DHL", "2", "k-1"))


def test_cancelling_before_the_warehouse_releases_the_hold_and_the_authorization(
    world: World,
) -> None:
    """Given a workflow that holds stock while the customer pays, when an order waiting for its
    payment is cancelled, then the hold is released, the PaymentIntent cancelled, and the
    customer told; cancelling again is an illegal transition."""
    world.flow.workflows = load_workflows(DATA / "reserve_at_checkout.toml", TEMPLATES)
    record = world.flow.place(b2c("w-1", payment_method="", A=3)).record
    assert (record.state, record.payment.state) == (OrderState.ALLOCATED, PaymentState.PENDING)
    assert world.on_hand("WH-KOELN", "A") == (10, 3)
    record = world.flow.cancel(CancelOrder(record.id, "cancel-1", "changed my mind"))
    assert (record.state, record.status) == (OrderState.CANCELLED, FlowStatus.CANCELLED)
    assert record.payment.state is PaymentState.VOIDED
    assert world.peer.intents[record.payment.reference]["status"] == "canceled"
    assert world.on_hand("WH-KOELN", "A") == (10, 0)
    assert templates(world, record.id) == ["order_cancelled"]
    with pytest.raises(IllegalTransition):
        world.flow.cancel(CancelOrder(record.id, "cancel-2"))


def test_an_order_without_stock_blocks_and_resumes_when_stock_arrives(world: World) -> None:
    """Given a paid order for more C than exists, when it is placed, then it blocks at reserve
    with the shortfall and the customer hears of the delay once; when stock arrives, resuming
    carries it on to the warehouse."""
    record = world.flow.place(b2c("w-1", C=8)).record
    assert (record.status, record.state) == (FlowStatus.BLOCKED, OrderState.PLACED)
    blocked = [
        e for e in world.flow.get(record.id).timeline if e.type == EventType.WORKFLOW_BLOCKED
    ]
    assert blocked[0].data["shortfalls"] == [{"sku": "C", "requested": 8, "available": 6}]
    record = world.flow.resume(ResumeOrder(record.id, "resume-1"))
    assert record.status is FlowStatus.BLOCKED
    assert templates(world, record.id).count("order_delayed") == 1
    world.services.inventory.adjust("receipt-1", "f", [Adjustment("WH-BERLIN", "C", 4)])
    record = world.flow.resume(ResumeOrder(record.id, "resume-2"))
    assert (record.status, record.state) == (FlowStatus.WAITING, OrderState.RELEASED)
    assert record.payment.state is PaymentState.CAPTURED


def test_a_return_restocks_what_is_accepted_and_refunds_only_that(world: World) -> None:
    """Given a delivered order of 2 A and 1 B, when 2 A come back to WH-KOELN and one is
    restocked and one written off, then on_hand at WH-KOELN goes up by one and 19.90 is
    refunded at the provider; the payment is PARTIALLY_REFUNDED."""
    record = ship_and_deliver(world, world.flow.place(b2c("w-1", A=2, B=1)).record)
    assert (record.state, record.status) == (OrderState.DELIVERED, FlowStatus.DONE)
    record, return_id = world.flow.request_return(
        RequestReturn(record.id, (ReturnItem("A", 2),), "r-1", "too small")
    )
    record = world.flow.receive_return(
        ReceiveReturn(record.id, return_id, "WH-KOELN", (ReturnItem("A", 2),), "recv-1")
    )
    assert record.state is OrderState.PARTIALLY_RETURNED
    assert world.on_hand("WH-KOELN", "A") == (8, 0)
    record = world.flow.inspect_return(
        InspectReturn(record.id, return_id, (Inspection("A", 1, 1),), "insp-1")
    )
    assert world.on_hand("WH-KOELN", "A") == (9, 0)
    assert record.returns[0].refund == 1990
    assert (record.payment.refunded, record.payment.state) == (
        1990,
        PaymentState.PARTIALLY_REFUNDED,
    )
    (refund,) = world.peer.refunds.values()
    assert (refund["amount"], refund["payment_intent"]) == (1990, record.payment.reference)
    assert templates(world, record.id)[-3:] == [
        "return_requested",
        "return_inspected",
        "refund_issued",
    ]


def test_returns_are_checked_against_what_was_delivered_and_received(world: World) -> None:
    """Given an order of 2 A, nothing of a return can be asked before delivery, no more than
    was delivered, nothing received at an unknown node, and an inspection must account for
    every unit received; each refusal changes nothing."""
    record = world.flow.place(b2c("w-1", A=2)).record
    with pytest.raises(InvalidInput) as early:
        world.flow.request_return(RequestReturn(record.id, (ReturnItem("A", 1),), "r-0"))
    assert early.value.problems[0].field == "items[0].quantity"
    record = ship_and_deliver(world, record)
    with pytest.raises(InvalidInput) as too_many:
        world.flow.request_return(RequestReturn(record.id, (ReturnItem("A", 3),), "r-1"))
    assert "only 2 of A delivered" in str(too_many.value)
    record, rid = world.flow.request_return(RequestReturn(record.id, (ReturnItem("A", 2),), "r-2"))
    with pytest.raises(InvalidInput) as nowhere:
        world.flow.receive_return(
            ReceiveReturn(record.id, rid, "WH-MARS", (ReturnItem("A", 2),), "x")
        )
    assert nowhere.value.problems[0].field == "node_id"
    record = world.flow.receive_return(
        ReceiveReturn(record.id, rid, "ST-BONN", (ReturnItem("A", 1),), "recv-1")
    )
    assert record.returns[0].state.value == "PARTIALLY_RECEIVED"
    before = world.flow.get(record.id)
    with pytest.raises(InvalidInput) as short:
        world.flow.inspect_return(InspectReturn(record.id, rid, (Inspection("A", 1, 1),), "i-1"))
    assert "must be the 1 units received" in str(short.value)
    assert world.flow.get(record.id) == before
    record = world.flow.inspect_return(
        InspectReturn(record.id, rid, (Inspection("A", 1, 0),), "i-2")
    )
    assert world.on_hand("ST-BONN", "A") == (1, 0)  # restocked where it arrived
    # the unit that never came back may be asked for again
    record, again = world.flow.request_return(
        RequestReturn(record.id, (ReturnItem("A", 1),), "r-3")
    )
    assert again == "R2"


def test_an_invoice_order_is_billed_after_delivery_and_credited_for_returns(world: World) -> None:
    """Given a business order on invoice, when its parcel arrives, then the invoice goes out;
    a return accepted before payment is credited (not refunded), and the reduced amount is what
    the customer pays to complete the workflow."""
    record = world.flow.place(b2b("po-1", C=4)).record
    assert (record.state, record.payment.state) == (OrderState.RELEASED, PaymentState.PENDING)
    record = ship_and_deliver(world, record)
    assert record.payment.state is PaymentState.INVOICED
    assert record.payment.due_at == pytest.approx(world.clock.now() + 30 * 86400)
    assert (record.status, record.step) == (FlowStatus.WAITING, 6)
    record, rid = world.flow.request_return(RequestReturn(record.id, (ReturnItem("C", 1),), "r"))
    record = world.flow.receive_return(
        ReceiveReturn(record.id, rid, "WH-BERLIN", (ReturnItem("C", 1),), "v")
    )
    record = world.flow.inspect_return(InspectReturn(record.id, rid, (Inspection("C", 1, 0),), "i"))
    assert (record.payment.amount, record.payment.credited, record.payment.refunded) == (
        1500,
        500,
        0,
    )
    wrong = PaymentEvent(PaymentEventKind.CAPTURED, 2000, record.payment.reference)
    with pytest.raises(InvalidInput) as raised:
        world.flow.record_payment(RecordPayment(record.id, "bank-1", wrong))
    assert "must be the 1500 due" in str(raised.value)
    paid = PaymentEvent(PaymentEventKind.CAPTURED, 1500, record.payment.reference)
    done = world.flow.record_payment(RecordPayment(record.id, "bank-2", paid))
    assert done is not None
    assert (done.status, done.payment.state) == (FlowStatus.DONE, PaymentState.CAPTURED)
    assert templates(world, done.id) == [
        "order_confirmed",
        "shipment_sent",
        "shipment_delivered",
        "invoice_issued",
        "return_requested",
        "return_inspected",
        "credit_issued",
        "payment_received",
    ]


def test_concurrent_shipments_of_one_order_both_land(any_world: World) -> None:
    """Given an order in two parcels, when both are reported shipped at the same moment from
    two threads, then both land (the loser of the compare-and-set runs again) and the order is
    SHIPPED with every event once."""
    world = any_world
    record = world.flow.place(b2c("w-1", A=12)).record
    errors: list[BaseException] = []

    def ship(index: int) -> None:
        s = record.shipments[index]
        try:
            world.flow.record_shipment(RecordShipment(record.id, s.id, "DHL", str(index), s.id))
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=ship, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    final = world.flow.get(record.id)
    assert final.record.state is OrderState.SHIPPED
    assert [e.type for e in final.timeline].count(EventType.SHIPMENT_SHIPPED) == 2
    assert world.on_hand("WH-KOELN", "A") == (0, 0)
    assert world.on_hand("WH-BERLIN", "A") == (1, 0)


def test_a_parcel_that_ships_fulfils_its_node_and_the_last_one_the_reservation(
    any_world: World,
) -> None:
    """Given an order in two parcels from two nodes, when the first is shipped, then only that
    node's held units leave (on_hand and reserved together) and the reservation stays
    COMMITTED; when the second is shipped, the reservation is FULFILLED."""
    world = any_world
    record = world.flow.place(b2c("w-1", A=12)).record
    first, second = record.shipments
    before = {s.node_id: world.on_hand(s.node_id, "A") for s in record.shipments}
    world.flow.record_shipment(RecordShipment(record.id, first.id, "DHL", "1", "ship-1"))
    on_hand, reserved = before[first.node_id]
    assert world.on_hand(first.node_id, "A") == (on_hand - first.units, reserved - first.units)
    assert world.on_hand(second.node_id, "A") == before[second.node_id]
    reservations = world.services.reservations
    assert reservations.get(record.reservation_id).state is ReservationState.COMMITTED
    world.flow.record_shipment(RecordShipment(record.id, second.id, "DHL", "2", "ship-2"))
    assert reservations.get(record.reservation_id).state is ReservationState.FULFILLED
    on_hand, reserved = before[second.node_id]
    assert world.on_hand(second.node_id, "A") == (on_hand - second.units, reserved - second.units)


def test_an_account_without_an_e_mail_gets_no_e_mails(world: World) -> None:
    """Given a business account known by id only, when its order runs, then nothing is queued
    for the outbox to send to nobody, and the timeline still records every step."""
    command = replace(b2b("po-1", C=1), customer=CustomerInfo(id="NO-MAIL"))
    record = ship_and_deliver(world, world.flow.place(command).record)
    timeline = world.flow.get(record.id).timeline
    assert templates(world, record.id) == []
    assert EventType.INVOICE_ISSUED in [e.type for e in timeline]


def test_a_refused_capture_is_tried_again_under_a_new_key_once_resumed(world: World) -> None:
    """Given an order whose capture the provider refused (a trusted system reported an
    authorization the provider did not have yet), when the customer then authorizes at the
    provider and the order is resumed, then the capture goes through (under a new key, since
    the provider replays its refusal for the old one) and the money is captured once."""
    record = world.flow.place(b2c("w-1", payment_method="", A=1)).record
    authorized = PaymentEvent(
        PaymentEventKind.AUTHORIZED, record.payment.amount, record.payment.reference
    )
    blocked = world.flow.record_payment(RecordPayment(record.id, "auth-1", authorized))
    assert blocked is not None
    assert blocked.status is FlowStatus.BLOCKED
    assert "capture failed" in blocked.blocked_reason
    intent = world.peer.intents[record.payment.reference]
    intent |= {"status": "requires_capture", "amount_capturable": intent["amount"]}
    resumed = world.flow.resume(ResumeOrder(record.id, "resume-1"))
    assert resumed.payment.state is PaymentState.CAPTURED
    assert resumed.state is OrderState.RELEASED
    assert world.peer.intents[record.payment.reference]["amount_received"] == intent["amount"]
    again = world.flow.resume(ResumeOrder(record.id, "resume-2"))
    assert again.payment.captured == resumed.payment.captured


def test_an_order_whose_dead_call_held_stock_that_then_expired_holds_again(world: World) -> None:
    """Given a call that held an order's stock and died before committing and recording it,
    when the hold's time runs out and the order later moves on, then it holds its stock anew
    under the next key (instead of failing on the expired reservation forever)."""
    record = world.flow.place(b2c("w-1", payment_method="", A=2)).record
    dead = world.services.reservations.reserve(
        record.key("reserve:0"), fingerprint(record.order), record.order
    )
    assert dead.state is ReservationState.HELD
    world.clock.advance(3600)
    world.services.sweep_expired()
    assert world.services.reservations.get(dead.id).state is ReservationState.EXPIRED
    intent = world.peer.intents[record.payment.reference]
    intent |= {"status": "requires_capture", "amount_capturable": intent["amount"]}
    authorized = PaymentEvent(
        PaymentEventKind.AUTHORIZED, record.payment.amount, record.payment.reference
    )
    moved = world.flow.record_payment(RecordPayment(record.id, "auth-1", authorized))
    assert moved is not None
    assert (moved.state, moved.payment.state) == (OrderState.RELEASED, PaymentState.CAPTURED)
    assert moved.reservation_id not in ("", dead.id)
    assert world.on_hand("WH-KOELN", "A") == (10, 2)
