"""Rejects, short picks and reroutes through `OrderFlow`, on the memory stores and on Redis.

The network (tests/support/orders.py): WH-KOELN holds A=10, B=4; WH-BERLIN A=3, C=6; ST-BONN
(a store) B=2. Every test checks the stock as well as the order: no unit is lost or doubled.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import replace
from datetime import timedelta

import pytest

from allocation_engine.adapters.clock import FakeClock
from allocation_engine.adapters.memory.inventory import MemoryStore
from allocation_engine.adapters.memory.orders import MemoryOrders
from allocation_engine.adapters.payments.fake_provider import FakeCardProvider
from allocation_engine.engine import Node, NodeType, Order, OrderLine
from allocation_engine.engine.rules import default_rules_text
from allocation_engine.errors import IllegalTransition, InvalidInput, NotFound
from allocation_engine.orders.commands import (
    AcceptShipment,
    CancelOrder,
    RecordPayment,
    RecordShipment,
    RejectShipment,
    ResumeOrder,
)
from allocation_engine.orders.definition import default_workflows_text, parse_workflows
from allocation_engine.orders.events import EventType
from allocation_engine.orders.machines import OrderState, PaymentState, ShipmentState
from allocation_engine.orders.model import FlowStatus, Item, OrderRecord, ShipmentItem
from allocation_engine.orders.payments import PaymentEvent, PaymentEventKind
from allocation_engine.ports.inventory import SnapshotLine, SupplyLot
from allocation_engine.service.orders.flow import OrderFlow
from allocation_engine.service.orders.supply import SupplyNews
from tests.support.orders import COLOGNE, TEMPLATES, World, b2b, b2c, make_world


def templates(world: World, order_id: str) -> list[str]:
    return [
        e.data["template"]
        for e in world.flow.get(order_id).timeline
        if e.type == EventType.NOTIFICATION_REQUESTED
    ]


def ship(world: World, record: OrderRecord, shipment_id: str, **sent: int) -> OrderRecord:
    lines = tuple(ShipmentItem(sku, q) for sku, q in sent.items())
    return world.flow.record_shipment(
        RecordShipment(
            record.id, shipment_id, "DHL", f"T-{shipment_id}", f"ship-{shipment_id}", lines
        )
    )


def reject(world: World, record: OrderRecord, shipment_id: str, reason: str) -> OrderRecord:
    return world.flow.reject_shipment(
        RejectShipment(record.id, shipment_id, reason, f"reject-{shipment_id}", note="bin empty")
    )


def publish(world: World, **fences: str) -> None:
    text = default_rules_text()
    for key, value in fences.items():
        assert f"{key} = " in text
        text = text.replace(f"\n{key} = false", f"\n{key} = {value}")
    world.services.store.put_rules(text)


def parcels(record: OrderRecord) -> list[tuple[str, str, str, list[tuple[str, int]]]]:
    return [
        (s.id, s.node_id, s.state.value, [(x.sku, x.quantity) for x in s.lines])
        for s in record.shipments
    ]


def test_a_rejected_parcel_is_rerouted_to_other_nodes_and_released_at_once(
    any_world: World,
) -> None:
    """Given a consumer order released to WH-KOELN, when Koeln rejects it for no stock, then
    Koeln's held units are written off there, the order is re-planned without Koeln (A from
    Berlin, B from Bonn), both parcels go to their WMS at once, and once they ship the order is
    shipped; the customer gets no e-mail for the reroute itself."""
    world = any_world
    record = world.flow.place(b2c("w-1", A=2, B=1)).record
    assert parcels(record) == [("O-000001-S1", "WH-KOELN", "RELEASED", [("A", 2), ("B", 1)])]
    record = reject(world, record, "O-000001-S1", "no_stock")
    assert world.on_hand("WH-KOELN", "A") == (8, 0)  # the node's count corrected
    assert world.on_hand("WH-KOELN", "B") == (3, 0)
    assert parcels(record) == [
        ("O-000001-S1", "WH-KOELN", "REJECTED", [("A", 2), ("B", 1)]),
        ("O-000001-S2", "ST-BONN", "RELEASED", [("B", 1)]),
        ("O-000001-S3", "WH-BERLIN", "RELEASED", [("A", 2)]),
    ]
    assert (record.state, record.status, record.reroutes) == (
        OrderState.RELEASED,
        FlowStatus.WAITING,
        1,
    )
    assert world.on_hand("WH-BERLIN", "A") == (3, 2)
    assert world.on_hand("ST-BONN", "B") == (2, 1)
    again = reject(world, record, "O-000001-S1", "no_stock")  # the node retried its message
    assert again.version == record.version
    record = ship(world, record, "O-000001-S2")
    assert record.state is OrderState.PARTIALLY_SHIPPED
    record = ship(world, record, "O-000001-S3")
    assert (record.state, record.step) == (OrderState.SHIPPED, 6)  # await_delivery
    assert world.on_hand("WH-BERLIN", "A") == (1, 0)
    assert world.on_hand("ST-BONN", "B") == (1, 0)
    timeline = [e.type for e in world.flow.get(record.id).timeline]
    assert timeline.count(EventType.SHIPMENT_REJECTED) == 1
    rerouted = [e for e in world.flow.get(record.id).timeline if e.type == EventType.ORDER_REROUTED]
    assert [e.data["excluded_nodes"] for e in rerouted] == [["WH-KOELN"]]
    assert templates(world, record.id) == [
        "order_received",
        "payment_confirmed",
        "shipment_sent",
        "shipment_sent",
    ]


def test_no_capacity_gives_the_units_back_to_the_node(world: World) -> None:
    record = world.flow.place(b2c("w-1", A=2)).record
    reject(world, record, "O-000001-S1", "no_capacity")
    assert world.on_hand("WH-KOELN", "A") == (10, 0)  # still there, free for the next order
    assert world.on_hand("WH-BERLIN", "A") == (3, 2)


def test_a_short_pick_ships_what_left_and_reroutes_the_rest(any_world: World) -> None:
    """Given 5 x A released to Koeln, when Koeln ships 3, then the parcel is shipped with 3, the
    two it did not find leave its on_hand too, and 2 go out from Berlin at once."""
    world = any_world
    record = world.flow.place(b2c("w-1", A=5)).record
    record = ship(world, record, "O-000001-S1", A=3)
    assert world.on_hand("WH-KOELN", "A") == (5, 0)
    assert parcels(record) == [
        ("O-000001-S1", "WH-KOELN", "SHIPPED", [("A", 3)]),
        ("O-000001-S2", "WH-BERLIN", "RELEASED", [("A", 2)]),
    ]
    assert record.shipments[0].reason == "short_pick"
    assert record.state is OrderState.PARTIALLY_SHIPPED
    record = ship(world, record, "O-000001-S2")
    assert record.state is OrderState.SHIPPED
    assert world.on_hand("WH-BERLIN", "A") == (1, 0)


@pytest.mark.parametrize(
    ("sent", "field"),
    [
        ({"B": 1}, "lines[0].sku"),
        ({"A": 6}, "lines[0].quantity"),
        ({"A": -1}, "lines[0].quantity"),
        ({"A": 0}, "lines"),
    ],
)
def test_a_short_pick_with_impossible_lines_is_refused(
    world: World, sent: dict[str, int], field: str
) -> None:
    record = world.flow.place(b2c("w-1", A=5)).record
    with pytest.raises(InvalidInput) as refused:
        ship(world, record, "O-000001-S1", **sent)
    assert refused.value.problems[0].field == field
    assert world.flow.get(record.id).record.version == record.version
    assert world.on_hand("WH-KOELN", "A") == (10, 5)


def test_a_reject_names_a_bad_reason_and_an_unknown_parcel(world: World) -> None:
    record = world.flow.place(b2c("w-1", A=1)).record
    with pytest.raises(InvalidInput) as refused:
        reject(world, record, "O-000001-S1", "tired")
    assert "reason" in str(refused.value) and "tired" in str(refused.value)
    with pytest.raises(NotFound):
        reject(world, record, "O-000001-S9", "no_stock")
    shipped = ship(world, record, "O-000001-S1")
    with pytest.raises(IllegalTransition):
        reject(world, shipped, "O-000001-S1", "no_stock")  # a parcel that left cannot be rejected
    assert world.on_hand("WH-KOELN", "A") == (9, 0)


def test_ship_complete_cancels_the_short_rest_of_a_consumer_order_and_refunds_it(
    any_world: World,
) -> None:
    """Given ship complete, when Koeln picks 3 of 5 cups, then the 2 cannot follow in another
    parcel: the consumer workflow cancels them and refunds 2 x 19.90, the rest of the order
    goes on, and the customer is told exactly that (and of the parcel)."""
    world = any_world
    publish(world, ship_complete="true")
    record = world.flow.place(b2c("w-1", A=5)).record
    record = ship(world, record, "O-000001-S1", A=3)
    assert record.cancelled == (ShipmentItem("A", 2),)
    assert record.state is OrderState.SHIPPED
    assert (record.payment.state, record.payment.refunded) == (
        PaymentState.PARTIALLY_REFUNDED,
        2 * 1990,
    )
    assert [r["amount"] for r in world.peer.refunds.values()] == [2 * 1990]
    assert world.on_hand("WH-BERLIN", "A") == (3, 0)  # nothing held elsewhere
    assert templates(world, record.id) == [
        "order_received",
        "payment_confirmed",
        "shipment_sent",
        "order_partially_cancelled",
        "refund_issued",
    ]


def test_ship_complete_holds_a_business_order_for_an_operator(world: World) -> None:
    publish(world, ship_complete="true")
    record = world.flow.place(b2b("e-1", A=5)).record
    record = ship(world, record, "O-000001-S1", A=3)
    assert (record.status, record.state) == (FlowStatus.BLOCKED, OrderState.PARTIALLY_SHIPPED)
    assert record.blocked_reason.startswith("reroute not possible: ship complete")
    assert "order_delayed" in templates(world, record.id)
    assert world.on_hand("WH-BERLIN", "A") == (3, 0)


def test_a_held_order_whose_parcels_were_all_rejected_can_still_be_cancelled(
    world: World,
) -> None:
    """A business order: Koeln rejects (damaged), no other node has 6 cups: held for an
    operator, who cancels it; nothing is held anywhere afterwards."""
    record = world.flow.place(b2b("e-1", A=6)).record
    record = reject(world, record, "O-000001-S1", "damaged")
    assert (record.status, record.state) == (FlowStatus.BLOCKED, OrderState.RELEASED)
    cancelled = world.flow.cancel(CancelOrder(record.id, "cs-1", "customer gave up"))
    assert (cancelled.state, cancelled.status) == (OrderState.CANCELLED, FlowStatus.CANCELLED)
    assert cancelled.payment.state is PaymentState.VOIDED
    assert world.on_hand("WH-KOELN", "A") == (4, 0)  # the damaged six written off
    assert world.on_hand("WH-BERLIN", "A") == (3, 0)
    released = world.flow.place(b2b("e-2", A=2)).record
    with pytest.raises(IllegalTransition):  # at the warehouse: too late, as before
        world.flow.cancel(CancelOrder(released.id, "cs-2"))


def test_a_business_order_no_node_can_serve_now_is_backordered_from_a_purchase_order(
    any_world: World,
) -> None:
    """Koeln finds none of the 6 cups; Berlin has 3; a purchase order of 10 is due at Berlin in
    three days. The published rules ship from the shelf only, but the business workflow's
    reroute falls back to a backorder: the parcel waits for the purchase order, the customer is
    told the day, and it goes to Berlin's WMS when the goods are received."""
    world = any_world
    due = world.services.planner.today() + timedelta(days=3)
    world.services.supply.put("po", "po", [SupplyLot("PO-9", "WH-BERLIN", "A", 10, due)])
    world.services.supply_listeners.append(SupplyNews(world.flow, world.services.reservations))
    record = world.flow.place(b2b("e-1", A=6)).record
    record = reject(world, record, "O-000001-S1", "no_stock")
    assert record.status is FlowStatus.WAITING
    assert parcels(record)[1:] == [("O-000001-S2", "WH-BERLIN", "PENDING", [("A", 6)])]
    assert record.shipments[1].ready_on == due.isoformat()
    assert "shipment_backordered" in templates(world, record.id)
    assert world.on_hand("WH-BERLIN", "A") == (3, 3)  # the shelf's 3, then 3 of the lot
    # A shop holds 2 more of the lot itself (Reserve, no order): the receipt passes it by.
    cart = Order("cart-1", (OrderLine("A", 2),), COLOGNE, accepts_backorder=True)
    away = replace(cart, excluded_nodes=frozenset({"WH-KOELN", "ST-BONN"}))
    world.services.reservations.reserve("shop-1", "shop-1", away)
    world.services.supply.receive("gr", "gr", "PO-9", 10)
    after = world.flow.get(record.id).record
    assert parcels(after)[1:] == [("O-000001-S2", "WH-BERLIN", "RELEASED", [("A", 6)])]
    assert world.on_hand("WH-BERLIN", "A") == (13, 8)


def test_a_refund_the_provider_refuses_cancels_nothing_and_holds_the_order(world: World) -> None:
    """The payment was reported captured by a trusted system the provider knows nothing of, so
    it refuses the refund for cups no node can send: nothing is cancelled, the order is held,
    and the stock matches the parcel rejected (written off at Koeln, nothing held elsewhere)."""
    record = world.flow.place(b2c("w-1", payment_method="", A=4)).record
    paid = PaymentEvent(PaymentEventKind.CAPTURED, 4 * 1990, record.payment.reference)
    record = world.flow.record_payment(RecordPayment(record.id, "bank-1", paid))
    assert record is not None and record.state is OrderState.RELEASED
    record = reject(world, record, "O-000001-S1", "no_stock")
    assert (record.status, record.cancelled) == (FlowStatus.BLOCKED, ())
    assert record.blocked_reason.startswith("refund failed")
    assert record.payment.refunded == 0
    assert world.on_hand("WH-KOELN", "A") == (6, 0)
    assert world.on_hand("WH-BERLIN", "A") == (3, 0)
    types = [e.type for e in world.flow.get(record.id).timeline]
    assert EventType.LINES_CANCELLED not in types


def test_when_every_node_rejects_a_consumer_order_it_is_cancelled_and_refunded(
    world: World,
) -> None:
    """A = 4: Koeln rejects (no capacity), then Berlin cannot hold 4 and Bonn has none: no node
    can take them, so the consumer workflow cancels the whole order and refunds it."""
    record = world.flow.place(b2c("w-1", A=4)).record
    record = reject(world, record, "O-000001-S1", "no_capacity")
    assert (record.state, record.status) == (OrderState.CANCELLED, FlowStatus.CANCELLED)
    assert record.payment.state is PaymentState.REFUNDED
    assert world.on_hand("WH-KOELN", "A") == (10, 0)
    assert world.on_hand("WH-BERLIN", "A") == (3, 0)
    assert templates(world, record.id)[-3:] == [
        "order_partially_cancelled",
        "refund_issued",
        "order_cancelled",
    ]


def test_past_the_cap_a_held_order_reroutes_again_when_an_operator_resumes_it(
    world: World,
) -> None:
    """A workflow allowing one reroute: the second reject holds the order (the customer is told
    it is delayed); ResumeOrder grants one more reroute and the order goes on."""
    text = default_workflows_text().replace(
        'max_reroutes = 2\notherwise = "cancel"', 'max_reroutes = 1\notherwise = "hold"'
    )
    assert text != default_workflows_text()
    flow = OrderFlow(
        parse_workflows(text, TEMPLATES), world.orders, world.flow.gateways, world.clock
    )
    held = World(flow, world.services, world.orders, world.peer, world.clock)
    record = reject(held, flow.place(b2c("w-1", A=1)).record, "O-000001-S1", "no_capacity")
    (_, second) = record.shipments
    assert (second.node_id, second.state) == ("WH-BERLIN", ShipmentState.RELEASED)
    record = flow.reject_shipment(RejectShipment(record.id, second.id, "damaged", "r-2"))
    assert record.status is FlowStatus.BLOCKED
    assert "cap of 1 reroutes" in record.blocked_reason
    assert world.on_hand("WH-BERLIN", "A") == (2, 0)  # the damaged cup is written off
    assert world.on_hand("WH-KOELN", "A") == (10, 0)
    # WH-KOELN and WH-BERLIN both failed this order; only Koeln had stock: a reroute now finds
    # none, and says so (the order stays held).
    record = flow.resume(ResumeOrder(record.id, "resume-1"))
    assert record.status is FlowStatus.BLOCKED
    assert "no other node can send them" in record.blocked_reason
    assert record.extra_reroutes == 1


def test_accept_is_a_receipt_on_the_timeline(world: World) -> None:
    record = world.flow.place(b2c("w-1", A=1)).record
    accepted = world.flow.accept_shipment(AcceptShipment(record.id, "O-000001-S1", "ack-1"))
    assert accepted.shipments == record.shipments
    types = [e.type for e in world.flow.get(record.id).timeline]
    assert types.count(EventType.SHIPMENT_ACCEPTED) == 1
    shipped = ship(world, accepted, "O-000001-S1")
    with pytest.raises(IllegalTransition):
        world.flow.accept_shipment(AcceptShipment(record.id, "O-000001-S1", "ack-2"))
    assert shipped.state is OrderState.SHIPPED


def test_a_bulk_order_of_200_lines_over_1000_nodes_is_rerouted_whole(
    card_peer: FakeCardProvider, clock: FakeClock
) -> None:
    """The largest order the contract admits (200 lines) on a network of 1,000 warehouses,
    each line's 40 units more than any node holds: the first parcel is rejected, the rest of
    its units are re-planned without that node, and every unit is held exactly once."""
    rng = random.Random(3)
    nodes = [
        Node(f"WH-{i:04d}", NodeType.WAREHOUSE, rng.uniform(47.5, 54.5), rng.uniform(6, 15), "DE")
        for i in range(1000)
    ]
    skus = [f"S{i:03d}" for i in range(200)]
    store = MemoryStore()
    store.upsert_nodes(nodes)
    store.apply_snapshot(
        1, [SnapshotLine(n.id, sku, 30) for n in nodes for sku in rng.sample(skus, 20)]
    )
    world = make_world(store, MemoryOrders(), card_peer, clock)
    bulk = replace(b2b("bulk-1"), items=tuple(Item(sku, 40, 100, sku) for sku in skus))
    record = world.flow.place(bulk).record
    assert record.state is OrderState.RELEASED
    first = record.shipments[0]
    record = reject(world, record, first.id, "no_capacity")
    assert record.reroutes == 1 and not record.unrouted()
    rerouted = [s for s in record.live_shipments if s.reservation_id]
    assert first.node_id not in {s.node_id for s in rerouted}
    moved: Counter[str] = Counter()
    for s in rerouted:
        moved.update({x.sku: x.quantity for x in s.lines})
    assert moved == Counter({x.sku: x.quantity for x in first.lines})
    held = {(n.id, level.sku): level.reserved for n in nodes for level in store.node_stock(n.id)}
    for s in record.live_shipments:
        for x in s.lines:
            held[(s.node_id, x.sku)] -= x.quantity
    assert set(held.values()) == {0}
