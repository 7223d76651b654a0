"""The Redis order store and outbox: any server process can serve any order.

One FUNCTION (`wf_commit` in `orders.lua`) writes an order change: it checks the version
the caller read (compare-and-set), stores the order, updates the lists by customer and by state,
and appends the events to the order's timeline and to the `{wf}:log` stream, in one atomic step.
So a state change and the events that announce it are never apart: the outbox reads the stream
with a consumer group, and a crash after the commit loses nothing.

Every workflow key carries the hash tag `{wf}`, so on Redis Cluster they share one slot and one
shard (`keys.py` builds every name and says why one shard is enough). The library is loaded, and
reloaded when Redis lost it, by `functions.py`, so a Redis restart costs one retried call.

The outbox: `claim` first takes over entries another consumer left unacknowledged for longer
than the lease (it crashed, or its receiver failed), then reads new ones; `ack` acknowledges;
delivery receipts (`{wf}:delivered:<key>`) let receivers skip what they already did.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, cast

import redis
from redis.cluster import RedisCluster

from allocation_engine.adapters.redis import keys
from allocation_engine.adapters.redis.connection import guarded, open_client
from allocation_engine.adapters.redis.functions import FunctionLibrary
from allocation_engine.adapters.redis.order_records import (
    customer_from_json,
    customer_to_json,
    event_from_json,
    event_to_json,
    order_from_json,
    order_to_json,
)
from allocation_engine.errors import NotFound
from allocation_engine.orders.change import OrderChange
from allocation_engine.orders.machines import OrderState
from allocation_engine.orders.model import Customer, Event, OrderRecord
from allocation_engine.ports.orders import CustomerExists, Delivery, ExternalIdTaken, StaleVersion

GROUP = "outbox"  # the consumer group of the outbox on the log stream
RECEIPT_SECONDS = 30 * 24 * 3600  # far longer than any entry stays unacknowledged


class RedisOrders:
    """`OrderStore` and `Outbox` on Redis 7."""

    def __init__(self, client: redis.Redis | RedisCluster, lease_seconds: float = 30.0) -> None:
        self._redis = client
        self.lease_seconds = lease_seconds
        self._library = FunctionLibrary.shipped(client, "orders.lua")
        self._group = False

    @classmethod
    def from_url(cls, url: str, lease_seconds: float = 30.0) -> RedisOrders:
        """A store on the Redis or Redis Cluster `url` names (see `connection.open_client`)."""
        return cls(open_client(url, socket_timeout=10.0), lease_seconds)

    # OrderStore

    @guarded
    def new_order_id(self) -> str:
        return f"O-{int(self._redis.incr(keys.ORDER_SEQUENCE)):06d}"

    @guarded
    def load(self, order_id: str) -> OrderRecord:
        doc = self._redis.hget(keys.order(order_id), "doc")
        if doc is None:
            raise NotFound("order_id", order_id)
        return order_from_json(str(doc))

    @guarded
    def find_external(self, channel: str, external_id: str) -> str | None:
        found = self._redis.get(keys.external(channel, external_id))
        return None if found is None else str(found)

    @guarded
    def customer(self, customer_id: str) -> Customer | None:
        doc = self._redis.get(keys.customer(customer_id))
        return None if doc is None else customer_from_json(str(doc))

    @guarded
    def customer_by_email(self, email: str) -> Customer | None:
        customer_id = self._redis.get(keys.email(email))
        return None if customer_id is None else self.customer(str(customer_id))

    @guarded
    def put_customer(self, customer: Customer, read_email: str | None) -> None:
        names = [
            keys.customer(customer.id),
            keys.email(customer.email),
            keys.email(read_email or ""),
        ]
        args = [
            customer_to_json(customer),
            customer.id,
            customer.email,
            "NEW" if read_email is None else "OLD",
            read_email or "",
        ]
        match self._library.call("wf_put_customer", names, args):
            case ["OK"]:
                return
            case ["STALE"]:
                raise StaleVersion(customer.id)
            case ["CUSTOMER", owner]:
                raise CustomerExists(owner)
            case answer:
                raise RuntimeError(f"wf_put_customer answered {answer!r}")

    @guarded
    def commit(self, change: OrderChange) -> None:
        record, new = change.record, change.new_customer
        names = [
            keys.order(record.id),
            keys.timeline(record.id),
            keys.ORDER_LOG,
            keys.external(record.channel, record.external_id),
            keys.ALL_ORDERS,
            keys.customer_orders(record.customer_id),
            keys.orders_in_state(change.previous_state),
            keys.orders_in_state(record.state),
            keys.customer(record.customer_id),
            keys.email(new.email if new else ""),
        ]
        args = [
            change.expected_version,
            record.id,
            order_to_json(record),
            record.version,
            record.state.value,
            record.created_at,
            customer_to_json(new) if new else "",
            record.customer_id,
            new.email if new else "",
            *(event_to_json(e) for e in change.events),
        ]
        answer = self._library.call("wf_commit", names, args)
        match answer:
            case ["OK"]:
                return
            case ["STALE", _]:
                raise StaleVersion(record.id)
            case ["EXTERNAL", order_id]:
                raise ExternalIdTaken(order_id)
            case ["CUSTOMER", customer_id]:
                raise CustomerExists(customer_id)
        raise RuntimeError(f"wf_commit answered {answer!r}")

    @guarded
    def timeline(self, order_id: str) -> list[Event]:
        pipe = self._redis.pipeline(transaction=False)
        pipe.exists(keys.order(order_id))
        pipe.lrange(keys.timeline(order_id), 0, -1)
        exists, docs = pipe.execute()
        if not exists:
            raise NotFound("order_id", order_id)
        return [event_from_json(doc) for doc in docs]

    @guarded
    def list_orders(
        self, customer_id: str | None, state: OrderState | None, offset: int, limit: int
    ) -> list[OrderRecord]:
        if customer_id is not None:
            ids = cast(list[str], self._redis.zrevrange(keys.customer_orders(customer_id), 0, -1))
            records = self._docs(ids)
            if state is not None:
                records = [r for r in records if r.state is state]
            return records[offset : offset + limit]
        key = keys.ALL_ORDERS if state is None else keys.orders_in_state(state)
        return self._docs(cast(list[str], self._redis.zrevrange(key, offset, offset + limit - 1)))

    def _docs(self, ids: Sequence[str]) -> list[OrderRecord]:
        pipe = self._redis.pipeline(transaction=False)
        for order_id in ids:
            pipe.hget(keys.order(order_id), "doc")
        return [order_from_json(doc) for doc in pipe.execute() if doc is not None]

    # Outbox

    @guarded
    def claim(self, consumer: str, count: int, wait_seconds: float) -> Sequence[Delivery]:
        self._ensure_group()
        reclaimed: Any = self._redis.xautoclaim(
            keys.ORDER_LOG, GROUP, consumer, int(self.lease_seconds * 1000), "0-0", count=count
        )
        entries = [(entry_id, fields) for entry_id, fields in reclaimed[1] if fields]
        if not entries:
            block = int(wait_seconds * 1000)
            answer: Any = self._redis.xreadgroup(
                GROUP,
                consumer,
                {keys.ORDER_LOG: ">"},
                count=count,
                block=block if block > 0 else None,
            )
            entries = [entry for _, stream in answer for entry in stream] if answer else []
        return [Delivery(entry_id, event_from_json(fields["e"])) for entry_id, fields in entries]

    @guarded
    def ack(self, entry_id: str) -> None:
        self._redis.xack(keys.ORDER_LOG, GROUP, entry_id)

    @guarded
    def delivered(self, key: str) -> bool:
        return bool(self._redis.exists(keys.delivered(key)))

    @guarded
    def mark_delivered(self, key: str) -> None:
        self._redis.set(keys.delivered(key), int(time.time()), ex=RECEIPT_SECONDS)

    def pending(self) -> int:
        """Entries handed out but not acknowledged (for tests and operators)."""
        self._ensure_group()
        return int(self._redis.xpending(keys.ORDER_LOG, GROUP)["pending"])

    # setup

    def _ensure_group(self) -> None:
        if self._group:
            return
        try:
            self._redis.xgroup_create(keys.ORDER_LOG, GROUP, id="0", mkstream=True)
        except redis.ResponseError as exists:
            if "BUSYGROUP" not in str(exists):
                raise
        self._group = True
