"""One suite for both order stores (memory and Redis): atomic commits with compare-and-set,
unique external ids and customers, timelines, listings, and the outbox's at-least-once hand-out."""

from __future__ import annotations

import json
import time
from dataclasses import replace

import pytest
import redis

from allocation_engine.adapters.memory.orders import MemoryOrders
from allocation_engine.adapters.redis import keys
from allocation_engine.adapters.redis.order_records import order_from_json, order_to_json
from allocation_engine.adapters.redis.orders import RedisOrders
from allocation_engine.engine import Order, OrderLine
from allocation_engine.errors import NotFound
from allocation_engine.orders.change import OrderChange
from allocation_engine.orders.machines import OrderState
from allocation_engine.orders.model import Customer, Event, Item, OrderRecord, Payment
from allocation_engine.ports.orders import CustomerExists, ExternalIdTaken, StaleVersion
from tests.support.orders import ADDRESS, COLOGNE

Store = MemoryOrders | RedisOrders


@pytest.fixture(params=["memory", "redis", "redis-cluster"])
def store(request: pytest.FixtureRequest) -> Store:
    """An empty order store in memory, on a single Redis and on a real Redis Cluster."""
    if request.param == "memory":
        return MemoryOrders(lease_seconds=0.3)
    url = request.getfixturevalue(f"{request.param.replace('-', '_')}_url")
    return RedisOrders.from_url(url, lease_seconds=0.3)


def _record(
    order_id: str, customer: str = "C-1", external: str = "", at: float = 1.0
) -> OrderRecord:
    return OrderRecord(
        id=order_id,
        channel="web",
        external_id=external or f"ext-{order_id}",
        customer_id=customer,
        workflow="b2c-prepaid",
        order=Order(order_id, (OrderLine("A", 2),), COLOGNE),
        items=(Item("A", 2, 1990, "Espresso cup"),),
        currency="EUR",
        payment=Payment("card", 3980, reference="pi_1"),
        address=ADDRESS,
        version=1,
        events=2,
        created_at=at,
        updated_at=at,
        keys={"k-1": "f-1"},
    )


def _events(order_id: str, first: int, *types: str) -> tuple[Event, ...]:
    return tuple(Event(order_id, first + i, t, 1.0, {"n": first + i}) for i, t in enumerate(types))


def _create(store: Store, record: OrderRecord, customer: Customer | None = None) -> None:
    events = _events(record.id, 0, "order.placed", "notification.requested")
    store.commit(OrderChange(record, 0, record.state, events, customer))


def test_a_created_order_reads_back_equal_with_its_timeline(store: Store) -> None:
    """Given a new order with a new customer, when it is committed, then order, customer,
    external id and timeline read back as written."""
    ada = Customer("C-1", "ada@example.com", "Ada", "en")
    record = _record("O-1")
    _create(store, record, ada)
    assert store.load("O-1") == record
    assert store.customer("C-1") == ada
    assert store.customer_by_email("ada@example.com") == ada
    assert store.find_external("web", "ext-O-1") == "O-1"
    assert [e.type for e in store.timeline("O-1")] == ["order.placed", "notification.requested"]
    assert order_from_json(order_to_json(record)) == record


def test_a_stale_version_writes_nothing(store: Store) -> None:
    """Given an order at version 2, when a change read at version 1 is committed, then it is
    refused and neither the order nor its timeline nor the log change."""
    record = _record("O-1")
    _create(store, record, Customer("C-1", "ada@example.com"))
    moved = replace(record, version=2, state=OrderState.ALLOCATED)
    store.commit(OrderChange(moved, 1, OrderState.PLACED, _events("O-1", 2, "order.allocated")))
    late = replace(record, version=2, state=OrderState.CANCELLED)
    with pytest.raises(StaleVersion):
        store.commit(OrderChange(late, 1, OrderState.PLACED, _events("O-1", 3, "order.cancelled")))
    assert store.load("O-1") == moved
    assert [e.type for e in store.timeline("O-1")][-1] == "order.allocated"
    assert [d.event.type for d in store.claim("c", 10, 0)][-1] == "order.allocated"


def test_an_external_id_and_a_customer_are_taken_once(store: Store) -> None:
    """Given an order from web/ext-1 with customer ada@, when another order reuses the external
    id, or creates a customer with the same e-mail, then the commit is refused naming the one
    that exists, and nothing of it is written."""
    _create(store, _record("O-1", external="ext-1"), Customer("C-1", "ada@example.com"))
    with pytest.raises(ExternalIdTaken) as taken:
        _create(store, _record("O-2", external="ext-1"))
    assert taken.value.order_id == "O-1"
    with pytest.raises(CustomerExists) as exists:
        _create(store, _record("O-3", customer="C-9"), Customer("C-9", "ada@example.com"))
    assert exists.value.customer_id == "C-1"
    for missing in ("O-2", "O-3"):
        with pytest.raises(NotFound):
            store.load(missing)
    assert store.customer("C-9") is None


def test_orders_are_listed_newest_first_by_customer_and_by_state(store: Store) -> None:
    """Given three orders of two customers, one moved on to ALLOCATED, when listed, then each
    filter gives its orders newest first, and paging continues where it stopped."""
    _create(store, _record("O-1", "C-1", at=1.0), Customer("C-1", "a@example.com"))
    _create(store, _record("O-2", "C-2", at=2.0), Customer("C-2", "b@example.com"))
    _create(store, _record("O-3", "C-1", at=3.0))
    moved = replace(store.load("O-1"), version=2, state=OrderState.ALLOCATED)
    store.commit(OrderChange(moved, 1, OrderState.PLACED, ()))

    def ids(records: list[OrderRecord]) -> list[str]:
        return [r.id for r in records]

    assert ids(store.list_orders(None, None, 0, 10)) == ["O-3", "O-2", "O-1"]
    assert ids(store.list_orders("C-1", None, 0, 10)) == ["O-3", "O-1"]
    assert ids(store.list_orders(None, OrderState.PLACED, 0, 10)) == ["O-3", "O-2"]
    assert ids(store.list_orders(None, OrderState.ALLOCATED, 0, 10)) == ["O-1"]
    assert ids(store.list_orders("C-1", OrderState.ALLOCATED, 0, 10)) == ["O-1"]
    assert ids(store.list_orders(None, None, 1, 1)) == ["O-2"]


def test_unknown_orders_are_not_found(store: Store) -> None:
    with pytest.raises(NotFound):
        store.load("O-404")
    with pytest.raises(NotFound):
        store.timeline("O-404")


def test_the_outbox_hands_out_each_event_until_it_is_acknowledged(store: Store) -> None:
    """Given two events in the log, when one consumer takes them and acknowledges only the
    first, then after the lease the second is handed out again (here to another consumer),
    and once acknowledged it never comes back."""
    _create(store, _record("O-1"), Customer("C-1", "ada@example.com"))
    first = store.claim("worker-1", 10, 0)
    assert [d.event.seq for d in first] == [0, 1]
    store.ack(first[0].entry_id)
    assert store.claim("worker-2", 10, 0) == []  # still leased to worker-1
    time.sleep(0.4)
    again = store.claim("worker-2", 10, 0.5)
    assert [d.event.seq for d in again] == [1]
    store.ack(again[0].entry_id)
    time.sleep(0.4)
    assert store.claim("worker-2", 10, 0.1) == []


def test_delivery_receipts_are_kept(store: Store) -> None:
    assert not store.delivered("mail:O-1/1")
    store.mark_delivered("mail:O-1/1")
    assert store.delivered("mail:O-1/1")
    assert not store.delivered("mail:O-1/2")


def test_the_redis_order_store_reloads_its_functions_after_a_redis_restart(
    redis_url: str,
) -> None:
    """Given an order committed, when Redis forgets its functions (FUNCTION FLUSH, as after a
    restart without persistence), then the next commit loads them again and succeeds."""
    store = RedisOrders.from_url(redis_url, lease_seconds=0.3)
    record = _record("O-1")
    _create(store, record, Customer("C-1", "ada@example.com"))
    redis.Redis.from_url(redis_url).function_flush()
    moved = replace(record, version=2, state=OrderState.ALLOCATED)
    store.commit(OrderChange(moved, 1, OrderState.PLACED, _events("O-1", 2, "order.allocated")))
    assert store.load("O-1") == moved
    assert [e.type for e in store.timeline("O-1")][-1] == "order.allocated"


def test_a_script_error_in_the_redis_order_store_is_raised_and_writes_nothing(
    redis_url: str,
) -> None:
    """Given an order key overwritten with a string, when a change of that order is committed,
    then the FUNCTION's error reaches the caller (not taken for a lost library) and neither the
    timeline nor the log got an entry."""
    store = RedisOrders.from_url(redis_url, lease_seconds=0.3)
    client = redis.Redis.from_url(redis_url)
    client.set(keys.order("O-1"), "not a hash")
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        _create(store, _record("O-1"))
    assert client.exists(keys.timeline("O-1"), keys.ORDER_LOG) == 0


def test_an_unopened_payment_reads_back_and_an_older_record_reads_as_opened(
    store: Store,
) -> None:
    """Given an order stored before its payment was opened (placing writes first), then it
    reads back unopened with its card token; a record written before orders were stored
    unopened (no such fields) reads back as opened, with no token."""
    record = replace(
        _record("O-1"), payment=Payment("card", 3980, opened=False, method="pm_card_visa")
    )
    _create(store, record, Customer("C-1", "ada@example.com"))
    assert store.load("O-1") == record
    assert order_from_json(order_to_json(record)) == record
    older = json.loads(order_to_json(_record("O-2")))
    del older["payment"]["opened"], older["payment"]["method"]
    payment = order_from_json(json.dumps(older)).payment
    assert (payment.opened, payment.method) == (True, "")
