"""Placing one order from many calls at once, and after a call died half-way, repeats nothing.

Placing stores the order first and calls nobody before that write; the payment is opened, the
stock held and the money captured afterwards, keyed by the stored order. So however many calls
race for one (channel, external id), and wherever one of them dies, there is one order, one
PaymentIntent opened and captured once at the card peer, and one stock hold of the order's units.
A call that dies after the write leaves the order stored with its payment not opened; a retry
of PlaceOrder with the same request, or ResumeOrder, finishes it.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from typing import Any, cast

import pytest

from allocation_engine.adapters.memory.orders import MemoryOrders
from allocation_engine.adapters.redis.orders import RedisOrders
from allocation_engine.engine import Order
from allocation_engine.errors import IllegalTransition, ProviderUnavailable
from allocation_engine.orders.commands import CancelOrder, PlaceOrder, RecordPayment, ResumeOrder
from allocation_engine.orders.definition import default_workflows
from allocation_engine.orders.machines import OrderState, PaymentState
from allocation_engine.orders.model import FlowStatus, OrderRecord
from allocation_engine.orders.payments import PaymentEvent, PaymentEventKind
from allocation_engine.ports.orders import OrderStore
from allocation_engine.ports.payments import PaymentOpened, PaymentProvider, PaymentRequest
from allocation_engine.ports.stock import Stock, StockHold
from allocation_engine.service.orders.flow import OrderFlow, Placed
from allocation_engine.service.orders.steps import Gateways
from tests.support.orders import NODES, TEMPLATES, World, b2b, b2c

THREADS = 8
ROUNDS = 3


def intents(world: World, order_id: str) -> list[dict[str, Any]]:
    """The PaymentIntents the card peer holds for one order."""
    return [i for i in world.peer.intents.values() if i["metadata"].get("order_id") == order_id]


def captures(world: World, order_id: str) -> int:
    """How often the card peer captured money for one order (one succeeded event each)."""
    return sum(
        1
        for e in world.peer.events
        if e["type"] == "payment_intent.succeeded"
        and e["data"]["object"]["metadata"].get("order_id") == order_id
    )


def reserved(world: World) -> Counter[str]:
    """Units reserved per sku over every node, from the inventory's authority."""
    held: Counter[str] = Counter()
    for node in NODES:
        for level in world.services.store.node_stock(node.id):
            held[level.sku] += level.reserved
    return +held


def units(command: PlaceOrder) -> Counter[str]:
    return Counter({item.sku: item.quantity for item in command.items})


class Gate:
    """The order store, except that the first `find_external` of each racing thread answers
    only once all `threads` have looked: every racer finds no order and goes on to create
    one, the worst interleaving, every round (not only when the scheduler happens to)."""

    def __init__(self, inner: MemoryOrders | RedisOrders, threads: int) -> None:
        self.inner = inner
        self.looked = threading.Barrier(threads, timeout=60)
        self.seen: set[int] = set()

    def find_external(self, channel: str, external_id: str) -> str | None:
        found = self.inner.find_external(channel, external_id)
        if threading.get_ident() not in self.seen:
            self.seen.add(threading.get_ident())
            self.looked.wait()
        return found

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def gated(world: World, threads: int) -> OrderFlow:
    """The world's flow over a `Gate` for `threads` racers."""
    store = cast(OrderStore, Gate(world.orders, threads))
    return OrderFlow(default_workflows(TEMPLATES), store, world.flow.gateways, world.clock)


def race(flow: OrderFlow, command: PlaceOrder, threads: int) -> list[Placed]:
    """`threads` calls placing `command` at the same moment; every answer."""
    start = threading.Barrier(threads, timeout=60)
    answers: list[Placed] = []
    errors: list[BaseException] = []

    def place() -> None:
        start.wait()
        try:
            answers.append(flow.place(command))
        except BaseException as failed:  # collected, so the test names it
            errors.append(failed)

    workers = [threading.Thread(target=place) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert errors == []
    return answers


@pytest.mark.parametrize("business", [False, True], ids=["b2c-card", "b2b-invoice"])
def test_racing_placements_of_one_order_make_one_order_one_payment_one_hold(
    any_world: World, business: bool
) -> None:
    """Given 8 threads placing the same order at once, all of them finding no order yet (3
    seeded rounds, one order each), then each round all get one order id, one call created it,
    the card peer opened and captured one PaymentIntent for it, and the stock reserved is
    exactly the units ordered, once."""
    chance = random.Random(7)
    expected: Counter[str] = Counter()
    for n in range(ROUNDS):
        lines = {"A": chance.randint(1, 2), "C": chance.randint(1, 2)}
        command = b2b(f"po-{n}", **lines) if business else b2c(f"w-{n}", **lines)
        answers = race(gated(any_world, THREADS), command, THREADS)
        assert len({a.record.id for a in answers}) == 1
        assert sum(a.created for a in answers) == 1
        record = any_world.flow.get(answers[0].record.id).record
        assert record.state is OrderState.RELEASED
        expected += units(command)
        assert reserved(any_world) == expected
        if business:
            assert record.payment.reference == f"INV-{record.id}"
            assert intents(any_world, record.id) == []
        else:
            assert [i["id"] for i in intents(any_world, record.id)] == [record.payment.reference]
            assert captures(any_world, record.id) == 1
            assert record.payment.state is PaymentState.CAPTURED
    assert len(any_world.flow.list_orders()) == ROUNDS


class Killed(BaseException):
    """The process died here: nothing of the call's own goes on (no handler catches it)."""


class Dying:
    """A card provider standing in for a process killed around one call: the call named in
    `die_at` either never reaches the peer ("before") or reaches it and the process dies
    before the answer is used ("after"). Once; `error` is what the caller sees instead."""

    def __init__(
        self, inner: PaymentProvider, die_at: str, when: str, error: type[BaseException] = Killed
    ) -> None:
        self.inner, self.die_at, self.when, self.error = inner, die_at, when, error

    def _call(self, name: str, call: Callable[[], Any]) -> Any:
        if name != self.die_at:
            return call()
        self.die_at = ""
        if self.when == "before":
            raise self.error(f"died before {name}")
        call()
        raise self.error(f"died after {name}")

    def check(self, payment_method: str) -> None:
        self.inner.check(payment_method)

    def open(self, request: PaymentRequest) -> PaymentOpened:
        answer: PaymentOpened = self._call("open", lambda: self.inner.open(request))
        return answer

    def capture(self, reference: str, amount: int, idempotency_key: str) -> None:
        self._call("capture", lambda: self.inner.capture(reference, amount, idempotency_key))

    def refund(self, reference: str, amount: int, idempotency_key: str) -> str:
        refund_id: str = self._call(
            "refund", lambda: self.inner.refund(reference, amount, idempotency_key)
        )
        return refund_id

    def cancel(self, reference: str, idempotency_key: str) -> None:
        self._call("cancel", lambda: self.inner.cancel(reference, idempotency_key))

    def parse_webhook(self, payload: bytes, signature: str) -> PaymentEvent | None:
        return self.inner.parse_webhook(payload, signature)


def dying_flow(
    world: World, die_at: str, when: str, error: type[BaseException] = Killed
) -> OrderFlow:
    """A second process on the same stores whose card calls die at `die_at`."""
    gateways = world.flow.gateways
    card = Dying(gateways.payments["card"], die_at, when, error)
    return OrderFlow(
        default_workflows(TEMPLATES),
        world.orders,
        Gateways(gateways.stock, {**gateways.payments, "card": card}),
        world.clock,
    )


def stored(world: World, command: PlaceOrder) -> OrderRecord:
    order_id = world.orders.find_external(command.channel, command.external_id)
    assert order_id is not None
    return world.flow.get(order_id).record


@pytest.mark.parametrize("when", ["before", "after"])
@pytest.mark.parametrize("die_at", ["open", "capture"])
@pytest.mark.parametrize("finish", ["place-again", "resume"])
def test_a_placement_that_died_after_storing_the_order_is_finished_once(
    any_world: World, die_at: str, when: str, finish: str
) -> None:
    """Given a placement that died at opening the payment or at capturing it, before the
    peer got the call or after it acted, then the order is stored with its payment not opened;
    when PlaceOrder is sent again (or ResumeOrder), then the order is finished with one
    PaymentIntent captured once and one hold of its units."""
    command = b2c("w-1", A=2, B=1)
    with pytest.raises(Killed):
        dying_flow(any_world, die_at, when).place(command)
    left = stored(any_world, command)
    assert (left.state, left.status, left.step) == (OrderState.PLACED, FlowStatus.WAITING, 0)
    assert not left.payment.opened
    assert left.payment.method == "pm_card_visa"
    # the dead call held the stock before it reached the capture: the finish adopts that hold
    assert reserved(any_world) == (units(command) if die_at == "capture" else Counter())
    if finish == "place-again":
        again = any_world.flow.place(command)
        assert (again.created, again.record.id) == (False, left.id)
    else:
        any_world.flow.resume(ResumeOrder(left.id, "resume-1"))
    record = any_world.flow.get(left.id).record
    assert (record.state, record.payment.state) == (OrderState.RELEASED, PaymentState.CAPTURED)
    assert (record.payment.opened, record.payment.method) == (True, "")
    assert [i["id"] for i in intents(any_world, record.id)] == [record.payment.reference]
    assert captures(any_world, record.id) == 1
    assert reserved(any_world) == units(command)
    assert any_world.flow.place(command).record == record  # and again: nothing moves


def test_a_provider_unreachable_at_opening_is_unavailable_and_the_retry_finishes(
    any_world: World,
) -> None:
    """Given a card peer that cannot be reached when the payment is opened, then PlaceOrder
    fails UNAVAILABLE with the order stored and unopened, holding nothing; when the shop sends
    the order again, then it is finished: one PaymentIntent, captured once, one hold."""
    command = b2c("w-1", A=1)
    with pytest.raises(ProviderUnavailable):
        dying_flow(any_world, "open", "before", ProviderUnavailable).place(command)
    left = stored(any_world, command)
    assert not left.payment.opened
    assert reserved(any_world) == Counter()
    record = any_world.flow.place(command).record
    assert record.payment.state is PaymentState.CAPTURED
    assert len(intents(any_world, record.id)) == captures(any_world, record.id) == 1
    assert reserved(any_world) == units(command)


def test_an_order_whose_placement_died_is_cancelled_with_its_payment_voided(
    any_world: World,
) -> None:
    """Given a placement that died after the peer authorized the card but before the answer
    came back, when the order is cancelled, then the authorization the dead call made is
    voided at the peer (found again under the order's key), no second one is made, and
    nothing is held."""
    command = b2c("w-1", A=1)
    with pytest.raises(Killed):
        dying_flow(any_world, "open", "after").place(command)
    left = stored(any_world, command)
    (authorized,) = intents(any_world, left.id)
    assert authorized["status"] == "requires_capture"
    record = any_world.flow.cancel(CancelOrder(left.id, "cancel-1"))
    assert (record.state, record.payment.state) == (OrderState.CANCELLED, PaymentState.VOIDED)
    assert record.payment.reference == authorized["id"]
    assert [i["status"] for i in intents(any_world, left.id)] == ["canceled"]
    assert reserved(any_world) == Counter()
    again = any_world.flow.place(command)  # the shop sends it again: it stays cancelled
    assert again.record == record
    assert len(intents(any_world, left.id)) == 1


def test_a_card_token_on_an_invoice_order_stores_nothing(world: World) -> None:
    """Given a business order (paid on invoice) that carries a card token, then it is refused
    naming payment_method before any order is stored."""
    from allocation_engine.engine import InvalidInput

    command = replace(b2b("po-1", A=1), payment_method="pm_card_visa")
    with pytest.raises(InvalidInput) as refused:
        world.flow.place(command)
    assert [p.field for p in refused.value.problems] == ["payment_method"]
    assert world.flow.list_orders() == []


def test_a_payment_method_the_provider_refuses_outright_leaves_a_failed_payment(
    world: World,
) -> None:
    """Given a card token the peer does not know (it answers 400 without a PaymentIntent), when
    the order is placed, then the order is there with its payment FAILED naming the reason,
    holding no stock; placing it again changes nothing."""
    command = b2c("w-1", payment_method="pm_card_unknown", A=1)
    placed = world.flow.place(command)
    record = placed.record
    assert placed.created
    assert (record.payment.state, record.payment.opened) == (PaymentState.FAILED, True)
    assert "resource_missing" in record.payment.failure
    assert (record.state, record.status) == (OrderState.PLACED, FlowStatus.WAITING)
    assert reserved(world) == Counter()
    assert world.flow.place(command).record == record


class CancelWhileHolding:
    """The stock port of a call that holds the stock and, before it can store that, loses the
    write to a cancellation of the order (made here, at that moment, by another call)."""

    def __init__(self, inner: Stock, cancel: Callable[[], object]) -> None:
        self.inner, self.cancel = inner, cancel

    def reserve(self, order: Order, idempotency_key: str) -> StockHold:
        hold = self.inner.reserve(order, idempotency_key)
        self.cancel()
        return hold

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_a_hold_taken_by_a_call_that_lost_to_a_cancellation_is_released(
    any_world: World,
) -> None:
    """Given an order waiting for payment, when the authorization arrives and, while its call
    holds the stock, another call cancels the order, then the authorization is refused (the
    payment is voided) and the hold that call took is released: nothing stays reserved."""
    record = any_world.flow.place(b2c("w-1", payment_method="", A=2)).record
    stock = CancelWhileHolding(
        any_world.flow.gateways.stock,
        lambda: any_world.flow.cancel(CancelOrder(record.id, "cancel-1")),
    )
    racing = OrderFlow(
        default_workflows(TEMPLATES),
        any_world.orders,
        Gateways(cast(Stock, stock), any_world.flow.gateways.payments),
        any_world.clock,
    )
    paid = PaymentEvent(
        PaymentEventKind.AUTHORIZED, record.payment.amount, record.payment.reference
    )
    with pytest.raises(IllegalTransition):
        racing.record_payment(RecordPayment(record.id, "auth-1", paid))
    cancelled = any_world.flow.get(record.id).record
    assert (cancelled.state, cancelled.payment.state) == (OrderState.CANCELLED, PaymentState.VOIDED)
    assert reserved(any_world) == Counter()


def test_a_webhook_that_overtakes_the_unopened_order_carries_it_on_once(
    any_world: World,
) -> None:
    """Given a placement that died after the peer authorized the card, when the provider's
    authorization event arrives before anyone retried, then the order is opened with that
    payment and carries on: captured once, one hold."""
    command = b2c("w-1", A=1)
    with pytest.raises(Killed):
        dying_flow(any_world, "open", "after").place(command)
    left = stored(any_world, command)
    (intent,) = intents(any_world, left.id)
    paid = PaymentEvent(PaymentEventKind.AUTHORIZED, intent["amount"], intent["id"])
    record = any_world.flow.record_payment(RecordPayment(left.id, "evt-1", paid))
    assert record is not None
    assert (record.state, record.payment.state) == (OrderState.RELEASED, PaymentState.CAPTURED)
    assert record.payment.reference == intent["id"]
    assert captures(any_world, left.id) == 1
    assert reserved(any_world) == units(command)


class DieAfterHolding:
    """The stock port of a call that takes the hold and dies before it can store it."""

    def __init__(self, inner: Stock) -> None:
        self.inner = inner

    def reserve(self, order: Order, idempotency_key: str) -> StockHold:
        self.inner.reserve(order, idempotency_key)
        raise Killed("after the hold, before the write")

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_a_hold_whose_call_died_before_recording_it_is_given_back_by_a_cancel(
    any_world: World,
) -> None:
    """Given an order waiting for payment, when the authorization's call takes the hold and
    dies before storing it, and the order is then cancelled before anyone retried, then the
    cancel gives that hold back by the key it was taken under: nothing stays reserved."""
    record = any_world.flow.place(b2c("w-1", payment_method="", A=2)).record
    dying = OrderFlow(
        default_workflows(TEMPLATES),
        any_world.orders,
        Gateways(
            cast(Stock, DieAfterHolding(any_world.flow.gateways.stock)),
            any_world.flow.gateways.payments,
        ),
        any_world.clock,
    )
    paid = PaymentEvent(
        PaymentEventKind.AUTHORIZED, record.payment.amount, record.payment.reference
    )
    with pytest.raises(Killed):
        dying.record_payment(RecordPayment(record.id, "auth-1", paid))
    assert reserved(any_world) == Counter({"A": 2})
    cancelled = any_world.flow.cancel(CancelOrder(record.id, "cancel-1"))
    assert cancelled.state is OrderState.CANCELLED
    assert reserved(any_world) == Counter()
