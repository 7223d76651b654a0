"""Backorders end to end: over gRPC, on a real redis-server (and a Redis Cluster), with a real SMTP
server and pick lists written per node.

A sku none of the nodes holds (a pre-order) is on a purchase order due at WH-KOELN in five days.
With backorders enabled, two consumer orders are promised from it; the supply comes late (both
are re-promised and told), then only part of it arrives: the earlier order's parcel leaves at
once, the later one waits for the rest; the rest arrives and it leaves too. A purchase order
cut below what is promised of it reroutes the order it can no longer serve.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, date, datetime, timedelta

import pytest

from allocation_engine.engine.rules import default_rules_text
from allocation_engine.proto.allocation.v1 import common_pb2 as cpb
from allocation_engine.proto.allocation.v1 import inventory_pb2 as ipb
from allocation_engine.proto.allocation.v1 import orders_pb2 as opb
from allocation_engine.proto.allocation.v1 import rules_pb2 as rpb
from allocation_engine.proto.allocation.v1 import rules_pb2_grpc as rpb_grpc
from tests.support.shop import Shop

pytestmark = pytest.mark.redis

COLOGNE = cpb.ShipTo(latitude=50.94, longitude=6.96, country="DE", postal_code="50667")


def today() -> date:
    return datetime.now(UTC).date()


def enable_backorders(shop: Shop) -> None:
    rules = default_rules_text().replace(
        "[backorders]\n# true", "[backorders]\n# (enabled for this test)\n# true"
    )
    rules = rules.replace("\nenabled = false", "\nenabled = true")
    assert "\nenabled = true" in rules
    rpb_grpc.RulesServiceStub(shop.channel).PutRules(
        rpb.PutRulesRequest(toml=rules, idempotency_key="backorders-on")
    )


def place(shop: Shop, external_id: str, quantity: int) -> opb.OrderView:
    return shop.orders.PlaceOrder(
        opb.PlaceOrderRequest(
            channel="web",
            external_order_id=external_id,
            customer=opb.CustomerRef(email="ada@example.com", name="Ada Lovelace", language="en"),
            lines=[opb.PricedLine(sku="D", quantity=quantity, unit_price=12900, name="Grinder")],
            ship_to=COLOGNE,
            address=opb.Address(name="Ada Lovelace", street="Hohe Str. 1", city="Koeln"),
            payment_method="pm_card_visa",
        )
    ).order


def view(shop: Shop, order_id: str) -> opb.OrderView:
    return shop.orders.GetOrder(opb.GetOrderRequest(order_id=order_id)).order


def state(order: opb.OrderView) -> list[tuple[str, str, str]]:
    return [
        (s.node_id, opb.ShipmentState.Name(s.state).removeprefix("SHIPMENT_STATE_"), s.ready_on)
        for s in order.shipments
    ]


def mails(shop: Shop, *order_ids: str) -> list[str]:
    """The subjects of every e-mail the orders' workflows sent, once each was handed to the mail
    server (the timelines' receipts say so): what arrived, not what was asked for."""
    deadline = time.monotonic() + 20
    asked = 0
    for order_id in order_ids:
        timeline = shop.orders.GetOrder(opb.GetOrderRequest(order_id=order_id)).timeline
        while "pending" in {e.delivery for e in timeline} and time.monotonic() < deadline:
            time.sleep(0.05)
            timeline = shop.orders.GetOrder(opb.GetOrderRequest(order_id=order_id)).timeline
        notes = [e for e in timeline if e.type == "notification.requested"]
        assert {e.delivery for e in notes} == {"sent"}
        asked += len(notes)
    return [m["Subject"] for m in shop.mailbox.wait_for(asked)]


def test_a_pre_order_is_promised_from_a_purchase_order_and_ships_when_it_arrives(
    shop: Shop,
) -> None:
    enable_backorders(shop)
    due = today() + timedelta(days=5)
    shop.inventory.PutSupply(
        ipb.PutSupplyRequest(
            idempotency_key="po-1",
            lots=[
                ipb.SupplyLot(
                    id="PO-1", node_id="WH-KOELN", sku="D", units=5, expected=due.isoformat()
                )
            ],
        )
    )
    first = place(shop, "web-7001", 2)
    second = place(shop, "web-7002", 2)
    for order in (first, second):
        assert state(order) == [("WH-KOELN", "PENDING", due.isoformat())]
        assert order.state == opb.ORDER_STATE_ALLOCATED  # held, paid, not at the warehouse yet
        assert order.payment.state == opb.PAYMENT_STATE_CAPTURED
    lot = shop.inventory.ListSupply(ipb.ListSupplyRequest(skus=["D"])).lots[0]
    assert (lot.units, lot.held) == (5, 4)

    # The supplier is late: both orders are promised the new day, and told.
    late = today() + timedelta(days=8)
    revised = shop.inventory.ReviseSupply(
        ipb.ReviseSupplyRequest(
            idempotency_key="po-1-late", lot_id="PO-1", expected=late.isoformat()
        )
    )
    assert list(revised.broken_reservation_ids) == [first.reservation_id, second.reservation_id]
    for order in (first, second):
        assert state(view(shop, order.id)) == [("WH-KOELN", "PENDING", late.isoformat())]

    # Three units arrive: the earlier order's parcel goes to the warehouse, the later waits.
    shop.inventory.ReceiveSupply(
        ipb.ReceiveSupplyRequest(idempotency_key="gr-1", lot_id="PO-1", units=3)
    )
    now_first, now_second = view(shop, first.id), view(shop, second.id)
    assert state(now_first) == [("WH-KOELN", "RELEASED", late.isoformat())]
    assert now_first.state == opb.ORDER_STATE_RELEASED
    assert state(now_second) == [("WH-KOELN", "PENDING", late.isoformat())]
    pick = shop.wms / "WH-KOELN" / f"{now_first.shipments[0].id}.json"
    deadline = time.monotonic() + 20
    while not pick.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [(x["sku"], x["quantity"]) for x in json.loads(pick.read_text())["lines"]] == [("D", 2)]
    shipped = shop.orders.RecordShipment(
        opb.RecordShipmentRequest(
            order_id=first.id,
            shipment_id=now_first.shipments[0].id,
            carrier="DHL",
            tracking_number="T-1",
            idempotency_key="ship-1",
        )
    ).order
    assert shipped.state == opb.ORDER_STATE_SHIPPED

    # The rest arrives: the second parcel goes out too.
    shop.inventory.ReceiveSupply(
        ipb.ReceiveSupplyRequest(idempotency_key="gr-2", lot_id="PO-1", units=2)
    )
    assert state(view(shop, second.id)) == [("WH-KOELN", "RELEASED", late.isoformat())]
    assert shop.available("WH-KOELN", "D") == 1  # 5 arrived, 2 shipped, 2 held, 1 free

    types = [e.type for e in shop.orders.GetOrder(opb.GetOrderRequest(order_id=first.id)).timeline]
    assert [t for t in types if t.startswith("shipment.")] == [
        "shipment.backordered",
        "shipment.backordered",
        "shipment.released",
        "shipment.shipped",
    ]
    subjects = mails(shop, first.id, second.id)
    assert sorted(s for s in subjects if "date" in s.lower()) == sorted(
        f"{what} your parcel {o.shipments[0].id} of order {o.external_order_id}"
        for o in (first, second)
        for what in ("Expected date of", "New date for")
    )
    assert len(subjects) == 2 * 4 + 1  # each: received, paid, promised, re-promised; 1 sent
    backordered = [
        e
        for e in shop.orders.GetOrder(opb.GetOrderRequest(order_id=first.id)).timeline
        if e.type == "shipment.backordered"
    ]
    assert [(e.data["ready_on"], e.data["previous"]) for e in backordered] == [
        (due.isoformat(), ""),
        (late.isoformat(), due.isoformat()),
    ]


def test_a_cut_purchase_order_reroutes_the_order_it_can_no_longer_serve(shop: Shop) -> None:
    """Two grinders promised from PO-2 at Koeln; the supplier cuts it to one; Berlin has two on
    the shelf: the order is rerouted there and its parcel released at once."""
    enable_backorders(shop)
    due = today() + timedelta(days=2)
    shop.inventory.PutSupply(
        ipb.PutSupplyRequest(
            idempotency_key="po-2",
            lots=[
                ipb.SupplyLot(
                    id="PO-2", node_id="WH-KOELN", sku="D", units=4, expected=due.isoformat()
                )
            ],
        )
    )
    order = place(shop, "web-7003", 2)
    assert state(order) == [("WH-KOELN", "PENDING", due.isoformat())]
    shop.inventory.AdjustInventory(  # Berlin gets two on the shelf after the order was placed
        ipb.AdjustInventoryRequest(
            idempotency_key="berlin-d",
            adjustments=[ipb.Adjustment(node_id="WH-BERLIN", sku="D", on_hand_delta=2)],
        )
    )
    cut = shop.inventory.ReviseSupply(
        ipb.ReviseSupplyRequest(idempotency_key="po-2-cut", lot_id="PO-2", units=1)
    )
    assert list(cut.broken_reservation_ids) == [order.reservation_id]
    after = view(shop, order.id)
    assert state(after) == [
        ("WH-KOELN", "CANCELLED", due.isoformat()),
        ("WH-BERLIN", "RELEASED", ""),
    ]
    assert after.shipments[0].reason == "supply_cut"
    assert after.state == opb.ORDER_STATE_RELEASED
    lot = shop.inventory.ListSupply(ipb.ListSupplyRequest(skus=["D"])).lots[0]
    assert (lot.units, lot.held) == (1, 0)
    assert shop.available("WH-BERLIN", "D") == 0
    assert mails(shop, order.id) == [
        "We have received your order web-7003",
        "Payment confirmed for order web-7003",
        f"Expected date of your parcel {order.shipments[0].id} of order web-7003",
    ]
