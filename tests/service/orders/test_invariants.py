"""A hypothesis stateful test: random sequences of orders, payments, shipments, short picks,
rejected parcels and their reroutes, deliveries, returns, inspections, cancellations and stock
receipts never reach an inconsistent state.

After every step, for every order: refunded <= captured, what is owed plus credit notes is the
order total, money back is exactly the accepted returns plus the units cancelled because no node
could send them, shipped <= allocated (in live parcels) and allocated + cancelled <= ordered per
sku, delivered <= shipped, received back <= delivered, and every received unit inspected is
restocked or written off. And for every stock position: on_hand is exactly what was counted in,
less what shipped from it, less what a node wrote off (a parcel rejected for no stock or damage,
the units a short pick did not find), plus what was restocked there (no stock from nothing, none
lost); reserved is exactly the units of live parcels allocated there and not yet shipped. A step
the workflow refuses changes nothing.
"""

from __future__ import annotations

from collections import Counter
from functools import partial
from typing import Any

from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from allocation_engine.adapters.clock import FakeClock
from allocation_engine.adapters.memory.inventory import MemoryStore
from allocation_engine.adapters.memory.orders import MemoryOrders
from allocation_engine.adapters.payments.fake_provider import FakeCardProvider
from allocation_engine.engine import InvalidInput
from allocation_engine.errors import IllegalTransition, PaymentRefused
from allocation_engine.orders.commands import (
    REJECT_REASONS,
    CancelOrder,
    Inspection,
    InspectReturn,
    ReceiveReturn,
    RecordDelivery,
    RecordPayment,
    RecordShipment,
    RejectShipment,
    RequestReturn,
    ResumeOrder,
    ReturnItem,
)
from allocation_engine.orders.events import EventType
from allocation_engine.orders.machines import (
    LIVE_SHIPMENTS,
    OrderState,
    PaymentState,
    ReturnState,
    ShipmentState,
)
from allocation_engine.orders.model import OrderRecord, ShipmentItem
from allocation_engine.orders.payments import PaymentEvent, PaymentEventKind
from allocation_engine.ports.inventory import Adjustment
from tests.support.orders import NODES, STOCK, World, b2b, b2c, make_world

SKUS = ("A", "B", "C")
LINES = st.dictionaries(st.sampled_from(SKUS), st.integers(1, 5), min_size=1, max_size=3)
SHIPPED = frozenset({ShipmentState.SHIPPED, ShipmentState.DELIVERED})
DELIVERED = frozenset({ShipmentState.DELIVERED})
OPEN = frozenset({ReturnState.REQUESTED, ReturnState.PARTIALLY_RECEIVED})
ARRIVED = frozenset({ReturnState.RECEIVED, ReturnState.PARTIALLY_RECEIVED})
UNPAID = frozenset({PaymentState.PENDING, PaymentState.FAILED, PaymentState.INVOICED})
HELD = frozenset({ShipmentState.PENDING, ShipmentState.RELEASED})
WRITTEN_OFF = frozenset({"no_stock", "damaged", "short_pick"})  # leave the node's on_hand
# The provider has the last word on money: `pay` reports payments as a trusted system would,
# without the provider knowing, so a later refund can be refused there. The flow must then
# change nothing, which `attempt` checks like any other refusal.
REFUSED = (IllegalTransition, InvalidInput, PaymentRefused)

PEER = FakeCardProvider()  # one test peer for every example; started with the first


class OrderLife(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.world: World
        self.orders: list[str] = []
        self.counted = Counter({(s.node_id, s.sku): s.on_hand for s in STOCK})
        self.keys = 0

    @initialize()
    def start(self) -> None:
        if not PEER._thread.is_alive():
            PEER.start()
        self.world = make_world(MemoryStore(), MemoryOrders(), PEER, FakeClock())

    # helpers

    def key(self) -> str:
        self.keys += 1
        return f"k-{self.keys}"

    def pick(self, data: st.DataObject, fits: Any = None) -> OrderRecord | None:
        """An order: mostly one for which the step makes sense (`fits`), sometimes any order,
        so that both the happy paths and the refusals are exercised."""
        records = [self.world.flow.get(o).record for o in self.orders]
        fitting = [r for r in records if fits is None or fits(r)]
        if fitting and data.draw(st.integers(0, 3)) > 0:
            return data.draw(st.sampled_from(fitting))
        return data.draw(st.sampled_from(records)) if records else None

    def attempt(self, order_id: str, name: str, action: Any) -> None:
        """Runs `action`; when the workflow refuses it, nothing at all may have changed."""
        before = (self.world.flow.get(order_id), self.stock())
        try:
            action()
        except REFUSED as refused:
            event(f"{name}: refused ({type(refused).__name__})")
            assert (self.world.flow.get(order_id), self.stock()) == before
        else:
            event(f"{name}: done")

    def stock(self) -> dict[tuple[str, str], tuple[int, int]]:
        return {
            (node.id, level.sku): (level.on_hand, level.reserved)
            for node in NODES
            for level in self.world.services.store.node_stock(node.id)
        }

    # rules

    @rule(lines=LINES, business=st.booleans(), card=st.sampled_from(["pm_card_visa", "", "x"]))
    def place(self, lines: dict[str, int], business: bool, card: str) -> None:
        number = len(self.orders) + 1
        if business:
            command = b2b(f"po-{number}", **lines)
        else:
            method = "pm_card_chargeDeclined" if card == "x" else card
            command = b2c(f"w-{number}", payment_method=method, **lines)
        self.orders.append(self.world.flow.place(command).record.id)

    @rule(data=st.data(), kind=st.sampled_from(list(PaymentEventKind)), exact=st.booleans())
    def pay(self, data: st.DataObject, kind: PaymentEventKind, exact: bool) -> None:
        record = self.pick(data, lambda r: r.payment.state in UNPAID)
        if record is None:
            return
        amount = record.payment.amount if exact else record.payment.amount + 1
        paid = PaymentEvent(kind, amount, record.payment.reference, reason="test")
        self.attempt(
            record.id,
            f"pay {kind.value}",
            lambda: self.world.flow.record_payment(RecordPayment(record.id, self.key(), paid)),
        )

    @rule(data=st.data(), deliver=st.booleans())
    def move_parcel(self, data: st.DataObject, deliver: bool) -> None:
        ready = ShipmentState.SHIPPED if deliver else ShipmentState.RELEASED
        record = self.pick(data, lambda r: any(s.state is ready for s in r.shipments))
        if record is None or not record.shipments:
            return
        waiting = [s for s in record.shipments if s.state is ready]
        shipment = data.draw(st.sampled_from(waiting or list(record.shipments)))
        if deliver:
            command: Any = RecordDelivery(record.id, shipment.id, self.key())
            self.attempt(record.id, "deliver", lambda: self.world.flow.record_delivery(command))
        else:
            command = RecordShipment(record.id, shipment.id, "DHL", "1", self.key())
            self.attempt(record.id, "ship", lambda: self.world.flow.record_shipment(command))

    @rule(data=st.data(), reason=st.sampled_from(REJECT_REASONS))
    def reject_parcel(self, data: st.DataObject, reason: str) -> None:
        released = ShipmentState.RELEASED
        record = self.pick(data, lambda r: any(s.state is released for s in r.shipments))
        if record is None or not record.shipments:
            return
        waiting = [s for s in record.shipments if s.state is released]
        shipment = data.draw(st.sampled_from(waiting or list(record.shipments)))
        command = RejectShipment(record.id, shipment.id, reason, self.key())
        self.attempt(record.id, "reject", lambda: self.world.flow.reject_shipment(command))

    @rule(data=st.data())
    def short_pick(self, data: st.DataObject) -> None:
        released = ShipmentState.RELEASED
        record = self.pick(data, lambda r: any(s.state is released for s in r.shipments))
        if record is None or not record.shipments:
            return
        waiting = [s for s in record.shipments if s.state is released]
        shipment = data.draw(st.sampled_from(waiting or list(record.shipments)))
        sent = tuple(
            ShipmentItem(x.sku, data.draw(st.integers(0, x.quantity))) for x in shipment.lines
        )
        command = RecordShipment(record.id, shipment.id, "DHL", "1", self.key(), sent)
        self.attempt(record.id, "short pick", lambda: self.world.flow.record_shipment(command))

    @rule(data=st.data(), sku=st.sampled_from(SKUS), quantity=st.integers(1, 4))
    def request_return(self, data: st.DataObject, sku: str, quantity: int) -> None:
        record = self.pick(data, lambda r: r.units_in(sku, DELIVERED) > 0)
        if record is None:
            return
        command = RequestReturn(record.id, (ReturnItem(sku, quantity),), self.key())
        self.attempt(record.id, "request return", lambda: self.world.flow.request_return(command))

    @rule(data=st.data(), node=st.sampled_from([n.id for n in NODES]), quantity=st.integers(1, 3))
    def receive_return(self, data: st.DataObject, node: str, quantity: int) -> None:
        record = self.pick(data, lambda r: any(t.state in OPEN for t in r.returns))
        if record is None or not record.returns:
            return
        ret = data.draw(st.sampled_from(record.returns))
        items = tuple(ReturnItem(line.sku, quantity) for line in ret.lines)
        command = ReceiveReturn(record.id, ret.id, node, items, self.key())
        self.attempt(record.id, "receive return", lambda: self.world.flow.receive_return(command))

    @rule(data=st.data())
    def inspect_return(self, data: st.DataObject) -> None:
        record = self.pick(data, lambda r: any(t.state in ARRIVED for t in r.returns))
        if record is None or not record.returns:
            return
        ret = data.draw(st.sampled_from(record.returns))
        inspections = []
        for line in ret.lines:
            if line.received:
                restock = data.draw(st.integers(0, line.received))
                inspections.append(Inspection(line.sku, restock, line.received - restock))
        command = InspectReturn(record.id, ret.id, tuple(inspections), self.key())
        self.attempt(record.id, "inspect", lambda: self.world.flow.inspect_return(command))

    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        record = self.pick(data)
        if record is not None:
            command = CancelOrder(record.id, self.key())
            self.attempt(record.id, "cancel", lambda: self.world.flow.cancel(command))

    @rule(data=st.data())
    def resume(self, data: st.DataObject) -> None:
        record = self.pick(data)
        if record is not None:
            command = ResumeOrder(record.id, self.key())
            self.attempt(record.id, "resume", lambda: self.world.flow.resume(command))

    @rule(data=st.data(), steps=st.integers(1, 8))
    def progress(self, data: st.DataObject, steps: int) -> None:
        """Moves one order up to `steps` steps along its happy path, so that deep states are
        reached in short runs: pay what is owed, ship, deliver, return, receive, inspect."""
        record = self.pick(data)
        for _ in range(steps):
            if record is None:
                return
            name, action = _next_step(record, self.key(), data)
            if action is None:
                return
            self.attempt(record.id, f"progress: {name}", partial(action, self.world.flow))
            record = self.world.flow.get(record.id).record

    @rule(
        node=st.sampled_from([n.id for n in NODES]), sku=st.sampled_from(SKUS), n=st.integers(1, 5)
    )
    def goods_in(self, node: str, sku: str, n: int) -> None:
        key = self.key()
        self.world.services.inventory.adjust(key, key, [Adjustment(node, sku, n)])
        self.counted[(node, sku)] += n

    # invariants

    @invariant()
    def money_adds_up(self) -> None:
        for order_id in self.orders:
            r = self.world.flow.get(order_id).record
            p = r.payment
            assert 0 <= p.refunded <= p.captured <= r.total, p
            assert p.amount + p.credited == r.total, p
            if r.state is OrderState.CANCELLED:  # whatever was collected went back
                assert p.refunded == p.captured, p
            else:  # money goes back for accepted returns and units no node could send only
                price = {item.sku: item.unit_price for item in r.items}
                given_up = sum(x.quantity * price[x.sku] for x in r.cancelled)
                back = sum(t.refund for t in r.returns) + given_up
                assert back == p.refunded + p.credited, (r.returns, r.cancelled, p)

    @invariant()
    def units_add_up(self) -> None:
        for order_id in self.orders:
            r = self.world.flow.get(order_id).record
            for item in r.items:
                allocated = r.units_in(item.sku, LIVE_SHIPMENTS)
                given_up = sum(x.quantity for x in r.cancelled if x.sku == item.sku)
                shipped = r.units_in(item.sku, SHIPPED)
                delivered = r.units_in(item.sku, DELIVERED)
                back = [ln for t in r.returns if (ln := t.line(item.sku)) is not None]
                received = sum(ln.received for ln in back)
                assert delivered <= shipped <= allocated <= allocated + given_up <= item.quantity
                assert received <= delivered
                assert all(ln.received <= ln.requested for ln in back)
            for t in r.returns:
                for ln in t.lines:
                    settled = ln.restocked + ln.written_off
                    assert settled == (ln.received if t.state is ReturnState.INSPECTED else 0)

    @invariant()
    def stock_adds_up(self) -> None:
        shipped: Counter[tuple[str, str]] = Counter()
        held: Counter[tuple[str, str]] = Counter()
        restocked: Counter[tuple[str, str]] = Counter()
        written_off: Counter[tuple[str, str]] = Counter()
        for order_id in self.orders:
            r = self.world.flow.get(order_id).record
            for s in r.shipments:
                for x in s.lines:
                    if s.state in SHIPPED:
                        shipped[(s.node_id, x.sku)] += x.quantity
                    elif s.state in HELD:
                        held[(s.node_id, x.sku)] += x.quantity
            for t in r.returns:
                for ln in t.lines:
                    restocked[(t.node_id, ln.sku)] += ln.restocked
            for e in self.world.flow.get(order_id).timeline:
                if e.type == EventType.SHIPMENT_REJECTED and e.data["reason"] in WRITTEN_OFF:
                    for x in e.data["lines"]:
                        written_off[(e.data["node_id"], x["sku"])] += x["quantity"]
        stock = self.stock()
        for position in set(stock) | set(self.counted):
            expected = (
                self.counted[position]
                - shipped[position]
                - written_off[position]
                + restocked[position]
            )
            assert stock.get(position, (0, 0)) == (expected, held[position]), position


def _next_step(record: OrderRecord, key: str, data: st.DataObject) -> tuple[str, Any]:
    """The next step of `record` along its happy path, as (name, flow -> result)."""
    p = record.payment
    by_state = {
        state: [s for s in record.shipments if s.state is state]
        for state in (ShipmentState.RELEASED, ShipmentState.SHIPPED)
    }
    arrived = [t for t in record.returns if t.state in ARRIVED]
    expected = [t for t in record.returns if t.state in OPEN]
    returnable = [(i.sku, n) for i in record.items if (n := _returnable(record, i.sku)) > 0]
    if p.state in UNPAID:
        kind = PaymentEventKind.CAPTURED if p.provider == "invoice" else PaymentEventKind.AUTHORIZED
        paid = RecordPayment(record.id, key, PaymentEvent(kind, p.amount, p.reference))
        return "pay", lambda flow: flow.record_payment(paid)
    if by_state[ShipmentState.RELEASED]:
        ship = RecordShipment(record.id, by_state[ShipmentState.RELEASED][0].id, "DHL", "1", key)
        return "ship", lambda flow: flow.record_shipment(ship)
    if by_state[ShipmentState.SHIPPED]:
        deliver = RecordDelivery(record.id, by_state[ShipmentState.SHIPPED][0].id, key)
        return "deliver", lambda flow: flow.record_delivery(deliver)
    if arrived:
        t = arrived[0]
        verdicts = []
        for x in t.lines:
            if x.received:
                restock = data.draw(st.integers(0, x.received))
                verdicts.append(Inspection(x.sku, restock, x.received - restock))
        inspect = InspectReturn(record.id, t.id, tuple(verdicts), key)
        return "inspect", lambda flow: flow.inspect_return(inspect)
    if expected:
        t = expected[0]
        items = tuple(
            ReturnItem(x.sku, x.requested - x.received) for x in t.lines if x.requested > x.received
        )
        node = data.draw(st.sampled_from([n.id for n in NODES]))
        receive = ReceiveReturn(record.id, t.id, node, items, key)
        return "receive", lambda flow: flow.receive_return(receive)
    if returnable:
        items = tuple(ReturnItem(sku, n) for sku, n in returnable)
        ask = RequestReturn(record.id, items, key)
        return "return", lambda flow: flow.request_return(ask)
    return "", None


def _returnable(record: OrderRecord, sku: str) -> int:
    """Delivered units not yet claimed by a return, as the workflow counts them."""
    claimed = sum(
        (line.received if t.state is ReturnState.INSPECTED else line.requested)
        for t in record.returns
        if (line := t.line(sku)) is not None
    )
    return record.units_in(sku, DELIVERED) - claimed


OrderLife.TestCase.settings = settings(
    max_examples=100,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestOrderLife = OrderLife.TestCase
