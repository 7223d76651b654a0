"""A server SIGKILLed in the middle of a RejectShipment, or of a supply receipt that releases
backordered parcels, leaves nothing a retry cannot finish.

The server under test is a real `allocation-engine serve` process whose Redis connection goes
through `tests.support.crash.KillingProxy`, which kills it instead of forwarding a chosen
command: the node's hold given back, the reroute's hold, its reservation record, its commit, or
the order's own write. The node's WMS then retries the same RejectShipment (same key) on another
server process, and the test checks that the order was rerouted exactly once, that every unit
held at every node belongs to a live parcel of the order, and nothing else is held. Likewise the
WMS retries a goods receipt the dying server took (it answers after it told the orders), and the
waiting parcel is released once.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import grpc
import pytest

from allocation_engine.adapters.redis.inventory import RedisStore
from allocation_engine.adapters.redis.orders import RedisOrders
from allocation_engine.engine import Node, NodeType
from allocation_engine.engine.rules import default_rules_text
from allocation_engine.ports.inventory import OPEN_STATES, SnapshotLine
from allocation_engine.proto.allocation.v1 import common_pb2 as cpb
from allocation_engine.proto.allocation.v1 import inventory_pb2 as ipb
from allocation_engine.proto.allocation.v1 import inventory_pb2_grpc as ipb_grpc
from allocation_engine.proto.allocation.v1 import orders_pb2 as opb
from allocation_engine.proto.allocation.v1 import orders_pb2_grpc as opb_grpc
from tests.support.crash import KillingProxy, serve

pytestmark = pytest.mark.redis

NODES = [
    Node("WH-FRA", NodeType.WAREHOUSE, 50.11, 8.68, "DE"),
    Node("WH-BER", NodeType.WAREHOUSE, 52.52, 13.40, "DE"),
    Node("WH-HAM", NodeType.WAREHOUSE, 53.55, 9.99, "DE"),
]
STOCK = [SnapshotLine(n.id, sku, 40) for n in NODES for sku in ("A", "B")]
COLOGNE = cpb.ShipTo(latitude=50.94, longitude=6.96, country="DE", postal_code="50667")

# Where a reject can be cut (the n-th such command the dying server sends): before the node's
# hold is given back, before the reroute holds, before its record says HELD, before it is
# committed, before the record says COMMITTED, before the order is written.
CUTS: list[tuple[bytes, int]] = [
    (b"ae_release", 0),
    (b"ae_hold", 0),
    (b"ae_replace_reservation", 0),
    (b"ae_pin", 0),
    (b"ae_replace_reservation", 1),
    (b"wf_commit", 0),
]


def place(
    orders: opb_grpc.OrderServiceStub, external_id: str, sku: str = "", units: int = 0
) -> opb.OrderView:
    """A business order on invoice: allocated and released at once (5 A and 3 B, or `units`
    of `sku`)."""
    lines = (
        [opb.PricedLine(sku=sku, quantity=units, unit_price=100)]
        if sku
        else [
            opb.PricedLine(sku="A", quantity=5, unit_price=100),
            opb.PricedLine(sku="B", quantity=3, unit_price=100),
        ]
    )
    return orders.PlaceOrder(
        opb.PlaceOrderRequest(
            channel="erp",
            external_order_id=external_id,
            customer=opb.CustomerRef(id="ACME", email="buyer@acme.example"),
            customer_type=cpb.CUSTOMER_TYPE_B2B,
            lines=lines,
            ship_to=COLOGNE,
            address=opb.Address(name="ACME GmbH", street="Industriestr. 5", city="Koeln"),
        ),
        timeout=30,
    ).order


def reject(orders: opb_grpc.OrderServiceStub, order: opb.OrderView) -> opb.OrderView:
    return orders.RejectShipment(
        opb.RejectShipmentRequest(
            order_id=order.id,
            shipment_id=order.shipments[0].id,
            reason=opb.REJECT_REASON_NO_CAPACITY,
            idempotency_key=f"wms-reject-{order.id}",
        ),
        timeout=15,
    ).order


def retried(orders: opb_grpc.OrderServiceStub, order: opb.OrderView) -> opb.OrderView:
    """The WMS retries until it gets an answer (a dead call's reservation lease may ask it to
    come back later: ABORTED)."""
    deadline = time.monotonic() + 60
    while True:
        try:
            return reject(orders, order)
        except grpc.RpcError as error:
            code = error.code()  # type: ignore[attr-defined]
            if code not in (grpc.StatusCode.ABORTED, grpc.StatusCode.UNAVAILABLE):
                raise
            assert time.monotonic() < deadline, error
            time.sleep(0.5)


def held_units(store: RedisStore) -> Counter[tuple[str, str]]:
    """Units held per (node, sku); every hold belongs to an open reservation."""
    held: Counter[tuple[str, str]] = Counter()
    for node in NODES:
        for hold in store.node_holds(node.id):
            record = store.get_reservation(hold.reservation_id)
            assert record is not None and record.state in OPEN_STATES, hold
            for sku, units in hold.lines.items():
                held[node.id, sku] += units
    return held


def test_a_reject_killed_at_any_step_reroutes_once_when_retried(redis_url: str) -> None:
    store = RedisStore.from_url(redis_url)
    store.upsert_nodes(NODES)
    store.apply_snapshot(1, STOCK)
    records = RedisOrders.from_url(redis_url)
    proxy = KillingProxy(redis_url)
    survivor, survivor_address = serve(redis_url)
    try:
        with grpc.insecure_channel(survivor_address) as channel:
            orders = opb_grpc.OrderServiceStub(channel)
            for round_, (pattern, nth) in enumerate(random.Random(14).sample(CUTS, 4)):
                order = place(orders, f"PO-{round_}")
                ((first, node),) = [(s.id, s.node_id) for s in order.shipments]
                victim, address = serve(f"redis://127.0.0.1:{proxy.port}/0")
                proxy.arm(victim, pattern, nth)
                try:
                    with grpc.insecure_channel(address) as dying:
                        with pytest.raises(grpc.RpcError) as cut:
                            reject(opb_grpc.OrderServiceStub(dying), order)
                        assert cut.value.code() == grpc.StatusCode.UNAVAILABLE  # type: ignore[attr-defined]
                    assert proxy.fired.wait(10), f"the cut {pattern!r}#{nth} was never reached"
                finally:
                    victim.kill()
                    victim.wait()
                after = retried(orders, order)
                assert after.reroutes == 1, pattern
                assert after.shipments[0].id == first
                assert after.shipments[0].state == opb.SHIPMENT_STATE_REJECTED
                live = after.shipments[1:]
                assert live and all(s.state == opb.SHIPMENT_STATE_RELEASED for s in live)
                assert node not in {s.node_id for s in live}
                units = Counter({x.sku: 0 for x in order.shipments[0].lines})
                for s in live:
                    units.update({x.sku: x.quantity for x in s.lines})
                assert units == Counter(A=5, B=3)
                assert reject(orders, order).version == after.version  # a later retry: nothing
            # Every unit held anywhere is a live parcel's of one of the orders: the dead
            # calls' holds were taken over or given back, none left behind.
            expected: Counter[tuple[str, str]] = Counter()
            for record in records.list_orders(None, None, 0, 50):
                for s in record.live_shipments:
                    for x in s.lines:
                        expected[s.node_id, x.sku] += x.quantity
            assert held_units(store) == expected
            for node in NODES:
                for level in store.node_stock(node.id):
                    assert level.reserved == expected[node.id, level.sku], level
    finally:
        survivor.kill()
        survivor.wait()
        proxy.close()


# Where a receipt can be cut: before the lot is received, before the order is told.
RECEIPT_CUTS: list[tuple[bytes, int]] = [(b"ae_supply_receive", 0), (b"wf_commit", 0)]


@pytest.mark.parametrize(("pattern", "nth"), RECEIPT_CUTS)
def test_a_receipt_killed_before_the_orders_heard_of_it_releases_them_when_retried(
    redis_url: str, pattern: bytes, nth: int
) -> None:
    store = RedisStore.from_url(redis_url)
    store.upsert_nodes(NODES)
    store.apply_snapshot(1, STOCK)
    rules = default_rules_text().replace("\nenabled = false", "\nenabled = true")
    store.put_rules(rules)
    due = (datetime.now(UTC).date() + timedelta(days=4)).isoformat()
    proxy = KillingProxy(redis_url)
    survivor, survivor_address = serve(redis_url)
    try:
        with grpc.insecure_channel(survivor_address) as channel:
            orders = opb_grpc.OrderServiceStub(channel)
            inventory = ipb_grpc.InventoryServiceStub(channel)
            lot = ipb.SupplyLot(id="PO-1", node_id="WH-BER", sku="D", units=5, expected=due)
            inventory.PutSupply(ipb.PutSupplyRequest(idempotency_key="po", lots=[lot]))
            order = place(orders, "PO-D", "D", 2)
            assert [(s.state, s.ready_on) for s in order.shipments] == [
                (opb.SHIPMENT_STATE_PENDING, due)
            ]
            receipt = ipb.ReceiveSupplyRequest(idempotency_key="gr-1", lot_id="PO-1", units=5)
            victim, address = serve(f"redis://127.0.0.1:{proxy.port}/0")
            proxy.arm(victim, pattern, nth)
            try:
                with grpc.insecure_channel(address) as dying:
                    with pytest.raises(grpc.RpcError) as cut:
                        ipb_grpc.InventoryServiceStub(dying).ReceiveSupply(receipt, timeout=15)
                    assert cut.value.code() == grpc.StatusCode.UNAVAILABLE  # type: ignore[attr-defined]
                assert proxy.fired.wait(10), f"the cut {pattern!r}#{nth} was never reached"
            finally:
                victim.kill()
                victim.wait()
            answer = inventory.ReceiveSupply(receipt, timeout=15)  # the WMS retries
            assert list(answer.reservation_ids) == [order.reservation_id]
            after = orders.GetOrder(opb.GetOrderRequest(order_id=order.id)).order
            assert [s.state for s in after.shipments] == [opb.SHIPMENT_STATE_RELEASED]
            assert after.state == opb.ORDER_STATE_RELEASED
            assert inventory.ReceiveSupply(receipt, timeout=15) == answer  # again: the same
            (level,) = [lv for lv in store.node_stock("WH-BER") if lv.sku == "D"]
            assert (level.on_hand, level.reserved) == (5, 2)
            assert held_units(store)[("WH-BER", "D")] == 2
    finally:
        survivor.kill()
        survivor.wait()
        proxy.close()
