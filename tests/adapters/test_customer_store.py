"""`OrderStore.put_customer` over both order stores: a compare-and-set on the account as read,
the e-mail index moving with it, another account's e-mail refused, nothing written on a refusal,
and an account stored before terms existed read with none."""

from __future__ import annotations

import pytest
import redis

from allocation_engine.adapters.memory.orders import MemoryOrders
from allocation_engine.adapters.redis import keys
from allocation_engine.adapters.redis.orders import RedisOrders
from allocation_engine.engine import CustomerType
from allocation_engine.engine.order import DeliveryMode
from allocation_engine.orders.model import Customer, DeliveryPreferences, PriceTerms
from allocation_engine.ports.orders import CustomerExists, OrderStore, StaleVersion

ADA = Customer(
    "C-1",
    "ada@example.com",
    "Ada",
    "en",
    CustomerType.B2B,
    1.5,
    PriceTerms(30, 250),
    DeliveryPreferences(DeliveryMode.CLICK_AND_COLLECT, "ST-MUC"),
)


@pytest.fixture(params=["memory", "redis"])
def orders(request: pytest.FixtureRequest) -> OrderStore:
    if request.param == "memory":
        return MemoryOrders()
    return RedisOrders.from_url(request.getfixturevalue("redis_url"))


def test_an_account_round_trips_and_its_email_moves(orders: OrderStore) -> None:
    """Given an account created, when its e-mail changes, then the new e-mail finds it with its
    terms and preferences, and the old one finds nobody."""
    orders.put_customer(ADA, None)
    assert orders.customer("C-1") == ADA
    moved = Customer(**{**ADA.__dict__, "email": "ada@acme.example"})
    orders.put_customer(moved, ADA.email)
    assert orders.customer_by_email("ada@acme.example") == moved
    assert orders.customer_by_email(ADA.email) is None


def test_a_stale_read_and_a_taken_email_write_nothing(orders: OrderStore) -> None:
    """Given an account, when a writer read none (or another e-mail), then StaleVersion; when
    another account has the e-mail, then CustomerExists naming it; the account stays."""
    orders.put_customer(ADA, None)
    with pytest.raises(StaleVersion):
        orders.put_customer(ADA, None)
    with pytest.raises(StaleVersion):
        orders.put_customer(ADA, "old@example.com")
    with pytest.raises(CustomerExists) as taken:
        orders.put_customer(Customer("C-2", ADA.email), None)
    assert taken.value.customer_id == "C-1"
    assert orders.customer("C-2") is None and orders.customer_by_email(ADA.email) == ADA


def test_an_account_stored_before_terms_existed_reads_with_none(redis_url: str) -> None:
    """Given an account JSON written by an older version, when read, then it has no terms and
    no delivery preference."""
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    client.set(
        keys.customer("C-9"),
        '{"created_at":1.0,"customer_type":"B2C","email":"x@example.com","id":"C-9",'
        '"language":"de","name":"X"}',
    )
    found = RedisOrders.from_url(redis_url).customer("C-9")
    assert found == Customer("C-9", "x@example.com", "X", "de", CustomerType.B2C, 1.0)
