"""End to end over gRPC, with a real redis-server, a real SMTP server (aiosmtpd), the card test
peer sending signed webhooks, and pick lists written to a folder per node:

* a B2C prepaid order through all six steps: placed (account created), paid by card through
  the provider's webhook, allocated and released to the warehouse, shipped and delivered, the
  customer told by e-mail at each step, the timeline for customer service; and a return with
  one unit restocked (availability goes up at the receiving node) and one written off,
  refunded for the accepted unit only;
* a B2B order delivered first and paid on invoice afterwards, with German e-mails.
"""

from __future__ import annotations

import json
import time

import grpc
import pytest

from allocation_engine.adapters.payments.signature import HEADER
from allocation_engine.proto.allocation.v1 import common_pb2 as cpb
from allocation_engine.proto.allocation.v1 import orders_pb2 as opb
from tests.support.shop import Shop

pytestmark = pytest.mark.redis

COLOGNE = cpb.ShipTo(latitude=50.94, longitude=6.96, country="DE", postal_code="50667")


def _line(sku: str, quantity: int, price: int, name: str) -> opb.PricedLine:
    return opb.PricedLine(sku=sku, quantity=quantity, unit_price=price, name=name)


def _code(call: pytest.ExceptionInfo[grpc.RpcError]) -> grpc.StatusCode:
    return call.value.code()  # type: ignore[attr-defined, no-any-return]


def test_a_b2c_prepaid_order_through_all_six_steps(shop: Shop) -> None:
    orders = shop.orders

    # 1. Placed from the web shop: the account is created, the customer pays later.
    placed = orders.PlaceOrder(
        opb.PlaceOrderRequest(
            channel="web",
            external_order_id="web-5001",
            customer=opb.CustomerRef(email="Ada@Example.com", name="Ada Lovelace", language="en"),
            lines=[_line("A", 2, 1990, "Espresso cup"), _line("B", 1, 4900, "Milk jug")],
            currency="EUR",
            ship_to=COLOGNE,
            address=opb.Address(name="Ada Lovelace", street="Hohe Str. 1", city="Koeln"),
        )
    )
    order = placed.order
    assert placed.created
    assert (order.state, order.workflow_status, order.current_step) == (
        opb.ORDER_STATE_PLACED,
        opb.WORKFLOW_STATUS_WAITING,
        "await_payment",
    )
    assert order.payment.client_secret.startswith(order.payment.reference)
    assert shop.available("WH-KOELN", "A") == 10  # nothing held before payment

    # 2. Payment: the customer pays at the provider, whose signed webhook is relayed to us.
    shop.confirm_card(order.payment.reference)
    (hook,) = shop.webhooks.wait_for(1)
    webhook = opb.Webhook(provider="card", payload=hook.body, signature=hook.headers[HEADER])
    tampered = opb.Webhook(
        provider="card", payload=hook.body.replace(b"8880", b"1"), signature=webhook.signature
    )
    with pytest.raises(grpc.RpcError) as refused:
        orders.RecordPayment(opb.RecordPaymentRequest(webhook=tampered))
    assert _code(refused) == grpc.StatusCode.INVALID_ARGUMENT
    paid = orders.RecordPayment(opb.RecordPaymentRequest(webhook=webhook)).order

    # 3. Allocation: stock held at the nearest warehouse, money taken, pick list to its WMS.
    assert paid.state == opb.ORDER_STATE_RELEASED
    assert paid.payment.state == opb.PAYMENT_STATE_CAPTURED
    assert shop.peer.intents[paid.payment.reference]["amount_received"] == 8880
    (parcel,) = paid.shipments
    assert parcel.node_id == "WH-KOELN"
    assert shop.available("WH-KOELN", "A") == 8
    again = orders.RecordPayment(opb.RecordPaymentRequest(webhook=webhook)).order
    assert again.version == paid.version  # the provider retried its webhook: nothing new

    # 4. Fulfilment: the warehouse confirms the parcel, then the carrier its delivery.
    shipped = orders.RecordShipment(
        opb.RecordShipmentRequest(
            order_id=paid.id,
            shipment_id=parcel.id,
            carrier="DHL",
            tracking_number="00340434161094042557",
            idempotency_key="wms-1",
        )
    ).order
    assert shipped.state == opb.ORDER_STATE_SHIPPED
    delivered = orders.RecordDelivery(
        opb.RecordDeliveryRequest(order_id=paid.id, shipment_id=parcel.id, idempotency_key="dhl-1")
    ).order
    assert (delivered.state, delivered.workflow_status) == (
        opb.ORDER_STATE_DELIVERED,
        opb.WORKFLOW_STATUS_DONE,
    )

    # 6. Return: two cups come back to WH-KOELN; one is fine, one is broken.
    asked = orders.RequestReturn(
        opb.RequestReturnRequest(
            order_id=paid.id,
            idempotency_key="rma-1",
            items=[opb.ReturnItem(sku="A", quantity=2)],
            reason="not needed",
        )
    )
    assert asked.return_id == "R1"
    orders.ReceiveReturn(
        opb.ReceiveReturnRequest(
            order_id=paid.id,
            return_id="R1",
            node_id="WH-KOELN",
            items=[opb.ReturnItem(sku="A", quantity=2)],
            idempotency_key="dock-1",
        )
    )
    before = shop.available("WH-KOELN", "A")
    inspected = orders.InspectReturn(
        opb.InspectReturnRequest(
            order_id=paid.id,
            return_id="R1",
            inspections=[opb.Inspection(sku="A", restock=1, write_off=1)],
            idempotency_key="qa-1",
        )
    ).order
    assert shop.available("WH-KOELN", "A") == before + 1
    assert inspected.state == opb.ORDER_STATE_PARTIALLY_RETURNED
    assert (inspected.returns[0].refund, inspected.payment.refunded) == (1990, 1990)
    assert inspected.payment.state == opb.PAYMENT_STATE_PARTIALLY_REFUNDED
    assert [r["amount"] for r in shop.peer.refunds.values()] == [1990]

    # 5. The customer was told at each step, and customer service sees the whole timeline.
    mails = shop.mailbox.wait_for(7)
    assert [m["Subject"] for m in mails] == [
        "We have received your order web-5001",
        "Payment confirmed for order web-5001",
        "Your parcel O-000001-S1 is on its way",
        "Your parcel O-000001-S1 has been delivered",
        "Your return R1 for order web-5001",
        "We have checked your return R1",
        "Refund of EUR 19.90 for order web-5001",
    ]
    assert all(m["To"] == "Ada Lovelace <ada@example.com>" for m in mails)
    assert "00340434161094042557" in mails[2].get_content()
    pick = json.loads((shop.wms / "WH-KOELN" / f"{parcel.id}.json").read_text())
    assert [(x["sku"], x["quantity"]) for x in pick["lines"]] == [("A", 2), ("B", 1)]
    view = orders.GetOrder(opb.GetOrderRequest(order_id=paid.id))
    assert view.customer.email == "ada@example.com"
    types = [e.type for e in view.timeline if e.type != "notification.requested"]
    assert types == [
        "order.placed",
        "payment.authorized",
        "order.allocated",
        "payment.captured",
        "shipment.released",
        "shipment.shipped",
        "shipment.delivered",
        "workflow.completed",
        "return.requested",
        "return.received",
        "return.inspected",
        "refund.issued",
    ]
    # A receipt is written after the mail server took the mail, so the last may still be on
    # its way when the mail is already in the box: wait for it (never for a failure).
    deadline = time.monotonic() + 15
    while "pending" in {e.delivery for e in view.timeline} and time.monotonic() < deadline:
        time.sleep(0.05)
        view = orders.GetOrder(opb.GetOrderRequest(order_id=paid.id))
    sent = {e.delivery for e in view.timeline if e.delivery}
    assert sent == {"sent"}
    listed = orders.ListOrders(opb.ListOrdersRequest(email="ADA@example.com")).orders
    assert [o.id for o in listed] == [paid.id]


def test_a_b2b_order_is_delivered_first_and_paid_on_invoice(shop: Shop) -> None:
    orders = shop.orders
    order = orders.PlaceOrder(
        opb.PlaceOrderRequest(
            channel="erp",
            external_order_id="PO-77",
            customer=opb.CustomerRef(id="ACME", email="einkauf@acme.example", language="de"),
            customer_type=cpb.CUSTOMER_TYPE_B2B,
            lines=[_line("C", 6, 500, "Filterpapier")],
            ship_to=COLOGNE,
            address=opb.Address(name="ACME GmbH", street="Industriestr. 5", city="Koeln"),
        )
    ).order
    assert (order.state, order.payment.state) == (
        opb.ORDER_STATE_RELEASED,
        opb.PAYMENT_STATE_PENDING,
    )
    with pytest.raises(grpc.RpcError) as late:
        orders.CancelOrder(opb.CancelOrderRequest(order_id=order.id, idempotency_key="c-1"))
    assert _code(late) == grpc.StatusCode.FAILED_PRECONDITION
    (parcel,) = order.shipments
    orders.RecordShipment(
        opb.RecordShipmentRequest(
            order_id=order.id,
            shipment_id=parcel.id,
            carrier="DB Schenker",
            tracking_number="SCH-1",
            idempotency_key="s-1",
        )
    )
    billed = orders.RecordDelivery(
        opb.RecordDeliveryRequest(order_id=order.id, shipment_id=parcel.id, idempotency_key="d-1")
    ).order
    assert billed.payment.state == opb.PAYMENT_STATE_INVOICED
    assert billed.current_step == "await_payment"
    paid = orders.RecordPayment(
        opb.RecordPaymentRequest(
            order_id=order.id,
            idempotency_key="bank-statement-2027-01-15-1",
            event=opb.PaymentEvent(
                kind=opb.PAYMENT_EVENT_KIND_CAPTURED,
                amount=3000,
                reference=billed.payment.reference,
            ),
        )
    ).order
    assert (paid.workflow_status, paid.payment.captured) == (opb.WORKFLOW_STATUS_DONE, 3000)
    subjects = [m["Subject"] for m in shop.mailbox.wait_for(5)]
    assert subjects == [
        "Auftragsbestätigung PO-77",
        "Ihr Paket O-000001-S1 ist unterwegs",
        "Ihr Paket O-000001-S1 wurde zugestellt",
        "Rechnung INV-O-000001 zu Bestellung PO-77",
        "Zahlungseingang zu Bestellung PO-77",
    ]
    with pytest.raises(grpc.RpcError) as unknown:
        orders.GetOrder(opb.GetOrderRequest(order_id="O-999999"))
    assert _code(unknown) == grpc.StatusCode.NOT_FOUND
