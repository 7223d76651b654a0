"""Rejects, short picks and reroutes end to end: over gRPC, on a real redis-server (and a Redis
Cluster), with a real SMTP server, the card test peer and pick lists written per node.

* a consumer order released to two nodes; one rejects it, the rest is rerouted (a pick list at
  the new node at once) and shipped; the customer receives exactly the workflow's e-mails;
* a short pick rerouted to another node;
* ship complete forbids the reroute of a short pick: the consumer workflow cancels the units
  that did not leave and refunds them, as `[workflow.reroute] otherwise = "cancel"` says.
"""

from __future__ import annotations

import json
import time

import grpc
import pytest

from allocation_engine.engine.rules import default_rules_text
from allocation_engine.proto.allocation.v1 import allocation_pb2 as apb
from allocation_engine.proto.allocation.v1 import common_pb2 as cpb
from allocation_engine.proto.allocation.v1 import inventory_pb2 as ipb
from allocation_engine.proto.allocation.v1 import orders_pb2 as opb
from allocation_engine.proto.allocation.v1 import rules_pb2 as rpb
from allocation_engine.proto.allocation.v1 import rules_pb2_grpc as rpb_grpc
from tests.support.shop import Shop

pytestmark = pytest.mark.redis

COLOGNE = cpb.ShipTo(latitude=50.94, longitude=6.96, country="DE", postal_code="50667")
CUP = opb.PricedLine(sku="A", unit_price=1990, name="Espresso cup")
FILTERS = opb.PricedLine(sku="C", unit_price=500, name="Filter papers")


def place(shop: Shop, external_id: str, **lines: int) -> opb.OrderView:
    """A consumer order paid by a card that authorizes at checkout: placed, paid, allocated
    and released in one call."""
    priced = {"A": CUP, "C": FILTERS}
    return shop.orders.PlaceOrder(
        opb.PlaceOrderRequest(
            channel="web",
            external_order_id=external_id,
            customer=opb.CustomerRef(email="ada@example.com", name="Ada Lovelace", language="en"),
            lines=[
                opb.PricedLine(
                    sku=s, quantity=q, unit_price=priced[s].unit_price, name=priced[s].name
                )
                for s, q in lines.items()
            ],
            ship_to=COLOGNE,
            address=opb.Address(name="Ada Lovelace", street="Hohe Str. 1", city="Koeln"),
            payment_method="pm_card_visa",
        )
    ).order


def ship(shop: Shop, order: opb.OrderView, parcel: str, **sent: int) -> opb.OrderView:
    return shop.orders.RecordShipment(
        opb.RecordShipmentRequest(
            order_id=order.id,
            shipment_id=parcel,
            carrier="DHL",
            tracking_number=f"T-{parcel}",
            idempotency_key=f"ship-{parcel}",
            lines=[apb.ShipmentLine(sku=s, quantity=q) for s, q in sent.items()],
        )
    ).order


def parcels(order: opb.OrderView) -> list[tuple[str, str, str, list[tuple[str, int]]]]:
    return [
        (
            s.id,
            s.node_id,
            opb.ShipmentState.Name(s.state).removeprefix("SHIPMENT_STATE_"),
            [(x.sku, x.quantity) for x in s.lines],
        )
        for s in order.shipments
    ]


def subjects(shop: Shop, order_id: str) -> list[str]:
    """Every e-mail the order's workflow sent, once each has been handed to the mail server
    (the timeline's receipts say so): what arrived, not what was asked for."""
    deadline = time.monotonic() + 20
    view = shop.orders.GetOrder(opb.GetOrderRequest(order_id=order_id))
    while "pending" in {e.delivery for e in view.timeline} and time.monotonic() < deadline:
        time.sleep(0.05)
        view = shop.orders.GetOrder(opb.GetOrderRequest(order_id=order_id))
    asked = [e for e in view.timeline if e.type == "notification.requested"]
    assert {e.delivery for e in asked} == {"sent"}
    mails = shop.mailbox.wait_for(len(asked))
    return [m["Subject"] for m in mails]


def pick_list(shop: Shop, node_id: str, parcel: str) -> list[tuple[str, int]]:
    deadline = time.monotonic() + 20
    path = shop.wms / node_id / f"{parcel}.json"
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return [(x["sku"], x["quantity"]) for x in json.loads(path.read_text())["lines"]]


def test_a_parcel_rejected_by_one_of_two_nodes_is_rerouted_and_shipped(shop: Shop) -> None:
    """5 cups and a pack of filters to Cologne: WH-KOELN sends the cups, WH-BERLIN the filters
    (Koeln has none). Koeln rejects for lack of capacity; the cups go from ST-BONN, which has
    just been stocked, and the customer hears of the two parcels that leave, and nothing else."""
    shop.inventory.AdjustInventory(
        ipb.AdjustInventoryRequest(
            idempotency_key="bonn-cups",
            adjustments=[ipb.Adjustment(node_id="ST-BONN", sku="A", on_hand_delta=6)],
        )
    )
    order = place(shop, "web-9001", A=5, C=1)
    assert parcels(order) == [
        ("O-000001-S1", "WH-BERLIN", "RELEASED", [("C", 1)]),
        ("O-000001-S2", "WH-KOELN", "RELEASED", [("A", 5)]),
    ]
    assert pick_list(shop, "WH-KOELN", "O-000001-S2") == [("A", 5)]
    koeln_refuses = opb.RejectShipmentRequest(
        order_id=order.id,
        shipment_id="O-000001-S2",
        reason=opb.REJECT_REASON_NO_CAPACITY,
        idempotency_key="koeln-no-1",
        note="dock closed",
    )
    rejected = shop.orders.RejectShipment(koeln_refuses).order
    assert parcels(rejected)[1:] == [
        ("O-000001-S2", "WH-KOELN", "REJECTED", [("A", 5)]),
        ("O-000001-S3", "ST-BONN", "RELEASED", [("A", 5)]),
    ]
    assert rejected.shipments[1].reason == "no_capacity"
    assert rejected.reroutes == 1
    assert shop.available("WH-KOELN", "A") == 10  # given back: free for the next order
    assert shop.available("ST-BONN", "A") == 1
    assert pick_list(shop, "ST-BONN", "O-000001-S3") == [("A", 5)]
    again = shop.orders.RejectShipment(koeln_refuses).order
    assert again.version == rejected.version  # the WMS retried: nothing new
    ship(shop, order, "O-000001-S1")
    done = ship(shop, order, "O-000001-S3")
    assert done.state == opb.ORDER_STATE_SHIPPED
    assert shop.available("ST-BONN", "A") == 1
    view = shop.orders.GetOrder(opb.GetOrderRequest(order_id=order.id))
    reroute = next(e for e in view.timeline if e.type == "order.rerouted")
    assert list(reroute.data["excluded_nodes"]) == ["WH-KOELN"]
    reject = next(e for e in view.timeline if e.type == "shipment.rejected")
    assert (reject.data["reason"], reject.data["note"]) == ("no_capacity", "dock closed")
    assert subjects(shop, order.id) == [
        "We have received your order web-9001",
        "Payment confirmed for order web-9001",
        "Your parcel O-000001-S1 is on its way",
        "Your parcel O-000001-S3 is on its way",
    ]


def test_a_short_pick_is_rerouted_and_the_node_count_corrected(shop: Shop) -> None:
    order = place(shop, "web-9002", A=4)
    assert parcels(order) == [("O-000001-S1", "WH-KOELN", "RELEASED", [("A", 4)])]
    short = ship(shop, order, "O-000001-S1", A=1)
    assert parcels(short) == [
        ("O-000001-S1", "WH-KOELN", "SHIPPED", [("A", 1)]),
        ("O-000001-S2", "WH-BERLIN", "RELEASED", [("A", 3)]),
    ]
    assert short.shipments[0].reason == "short_pick"
    assert short.state == opb.ORDER_STATE_PARTIALLY_SHIPPED
    assert shop.available("WH-KOELN", "A") == 6  # 1 shipped, 3 not found: written off
    assert shop.available("WH-BERLIN", "A") == 0
    with pytest.raises(grpc.RpcError) as bad:
        ship(shop, order, "O-000001-S2", A=4)
    assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]
    assert "lines[0].quantity" in bad.value.details()  # type: ignore[attr-defined]
    assert ship(shop, order, "O-000001-S2").state == opb.ORDER_STATE_SHIPPED
    assert subjects(shop, order.id) == [
        "We have received your order web-9002",
        "Payment confirmed for order web-9002",
        "Your parcel O-000001-S1 is on its way",
        "Your parcel O-000001-S2 is on its way",
    ]


def test_ship_complete_cancels_and_refunds_what_a_short_pick_left(shop: Shop) -> None:
    """Under ship complete the 2 cups Koeln did not find cannot follow in a second parcel: the
    consumer workflow cancels them, refunds 2 x 19.90 at the provider, and says so."""
    rules = default_rules_text().replace("\nship_complete = false", "\nship_complete = true")
    assert "ship_complete = true" in rules
    rpb_grpc.RulesServiceStub(shop.channel).PutRules(
        rpb.PutRulesRequest(toml=rules, idempotency_key="ship-complete")
    )
    order = place(shop, "web-9003", A=5)
    done = ship(shop, order, "O-000001-S1", A=3)
    assert parcels(done) == [("O-000001-S1", "WH-KOELN", "SHIPPED", [("A", 3)])]
    assert [(x.sku, x.quantity) for x in done.cancelled] == [("A", 2)]
    assert (done.state, done.payment.refunded) == (opb.ORDER_STATE_SHIPPED, 2 * 1990)
    assert [r["amount"] for r in shop.peer.refunds.values()] == [2 * 1990]
    assert shop.available("WH-BERLIN", "A") == 3  # nothing held for a parcel that cannot be
    assert subjects(shop, order.id) == [
        "We have received your order web-9003",
        "Payment confirmed for order web-9003",
        "Your parcel O-000001-S1 is on its way",
        "Part of your order web-9003 cannot be delivered",
        "Refund of EUR 39.80 for order web-9003",
    ]
