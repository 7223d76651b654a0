"""The Redis order store and outbox: any server process can serve any order.

One FUNCTION (`wf_commit` in `orders.lua`) writes an order change: it checks the version
the caller read (compare-and-set), stores the order, updates the lists by customer and by state,
and appends the events to the order's timeline and to the `{wf}:log` stream, in one atomic step.
So a state change and the events that announce it are never apart: the outbox reads the stream
with a consumer group, and a crash after the commit loses nothing.

Every workflow key carries the hash tag `{wf}`, so on Redis Cluster they share one slot and one
shard. That is a deliberate trade: PlaceOrder must check the external id, the customer's e-mail
and the order in one atomic step, and lists by customer and state must change with the order;
across slots that would take a saga per order. Orders arrive at hundreds per second where stock
reads arrive at thousands, and one shard takes tens of thousands of such writes per second; the
inventory keys, which do need to scale out, are spread by node.

The outbox: `claim` first takes over entries another consumer left unacknowledged for longer
than the lease (it crashed, or its receiver failed), then reads new ones; `ack` acknowledges;
delivery receipts (`{wf}:delivered:<key>`) let receivers skip what they already did.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from importlib import resources
from typing import Any, cast

import redis

from allocation_engine.adapters.redis.inventory import _guarded
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

LOG = "{wf}:log"
GROUP = "outbox"
SEQUENCE = "{wf}:order-seq"
ALL = "{wf}:orders"
RECEIPT_SECONDS = 30 * 24 * 3600  # far longer than any entry stays unacknowledged


def _order(order_id: str) -> str:
    return f"{{wf}}:order:{order_id}"


def _timeline(order_id: str) -> str:
    return f"{{wf}}:timeline:{order_id}"


def _external(channel: str, external_id: str) -> str:
    return f"{{wf}}:ext:{len(channel)}:{channel}:{external_id}"


def _customer(customer_id: str) -> str:
    return f"{{wf}}:customer:{customer_id}"


def _email(email: str) -> str:
    return f"{{wf}}:email:{email}"


def _by_customer(customer_id: str) -> str:
    return f"{{wf}}:customer-orders:{customer_id}"


def _by_state(state: OrderState) -> str:
    return f"{{wf}}:state:{state.value}"


class RedisOrders:
    """`OrderStore` and `Outbox` on Redis 7."""

    def __init__(self, client: redis.Redis, lease_seconds: float = 30.0) -> None:
        self._redis = client
        self.lease_seconds = lease_seconds
        self._loaded = False
        self._group = False

    @classmethod
    def from_url(cls, url: str, lease_seconds: float = 30.0) -> RedisOrders:
        client = redis.Redis.from_url(
            url, decode_responses=True, socket_timeout=10.0, socket_connect_timeout=2.0
        )
        return cls(client, lease_seconds)

    # OrderStore

    @_guarded
    def new_order_id(self) -> str:
        return f"O-{int(self._redis.incr(SEQUENCE)):06d}"

    @_guarded
    def load(self, order_id: str) -> OrderRecord:
        doc = self._redis.hget(_order(order_id), "doc")
        if doc is None:
            raise NotFound("order_id", order_id)
        return order_from_json(str(doc))

    @_guarded
    def find_external(self, channel: str, external_id: str) -> str | None:
        found = self._redis.get(_external(channel, external_id))
        return None if found is None else str(found)

    @_guarded
    def customer(self, customer_id: str) -> Customer | None:
        doc = self._redis.get(_customer(customer_id))
        return None if doc is None else customer_from_json(str(doc))

    @_guarded
    def customer_by_email(self, email: str) -> Customer | None:
        customer_id = self._redis.get(_email(email))
        return None if customer_id is None else self.customer(str(customer_id))

    @_guarded
    def commit(self, change: OrderChange) -> None:
        record, new = change.record, change.new_customer
        keys = [
            _order(record.id),
            _timeline(record.id),
            LOG,
            _external(record.channel, record.external_id),
            ALL,
            _by_customer(record.customer_id),
            _by_state(change.previous_state),
            _by_state(record.state),
            _customer(record.customer_id),
            _email(new.email if new else ""),
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
        self._functions()
        answer = self._redis.fcall("wf_commit", len(keys), *keys, *args)
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

    @_guarded
    def timeline(self, order_id: str) -> list[Event]:
        pipe = self._redis.pipeline(transaction=False)
        pipe.exists(_order(order_id))
        pipe.lrange(_timeline(order_id), 0, -1)
        exists, docs = pipe.execute()
        if not exists:
            raise NotFound("order_id", order_id)
        return [event_from_json(doc) for doc in docs]

    @_guarded
    def list_orders(
        self, customer_id: str | None, state: OrderState | None, offset: int, limit: int
    ) -> list[OrderRecord]:
        if customer_id is not None:
            ids = cast(list[str], self._redis.zrevrange(_by_customer(customer_id), 0, -1))
            records = self._docs(ids)
            if state is not None:
                records = [r for r in records if r.state is state]
            return records[offset : offset + limit]
        key = ALL if state is None else _by_state(state)
        return self._docs(cast(list[str], self._redis.zrevrange(key, offset, offset + limit - 1)))

    def _docs(self, ids: Sequence[str]) -> list[OrderRecord]:
        pipe = self._redis.pipeline(transaction=False)
        for order_id in ids:
            pipe.hget(_order(order_id), "doc")
        return [order_from_json(doc) for doc in pipe.execute() if doc is not None]

    # Outbox

    @_guarded
    def claim(self, consumer: str, count: int, wait_seconds: float) -> Sequence[Delivery]:
        self._ensure_group()
        reclaimed: Any = self._redis.xautoclaim(
            LOG, GROUP, consumer, int(self.lease_seconds * 1000), "0-0", count=count
        )
        entries = [(entry_id, fields) for entry_id, fields in reclaimed[1] if fields]
        if not entries:
            block = int(wait_seconds * 1000)
            answer: Any = self._redis.xreadgroup(
                GROUP, consumer, {LOG: ">"}, count=count, block=block if block > 0 else None
            )
            entries = [entry for _, stream in answer for entry in stream] if answer else []
        return [Delivery(entry_id, event_from_json(fields["e"])) for entry_id, fields in entries]

    @_guarded
    def ack(self, entry_id: str) -> None:
        self._redis.xack(LOG, GROUP, entry_id)

    @_guarded
    def delivered(self, key: str) -> bool:
        return bool(self._redis.exists(f"{{wf}}:delivered:{key}"))

    @_guarded
    def mark_delivered(self, key: str) -> None:
        self._redis.set(f"{{wf}}:delivered:{key}", int(time.time()), ex=RECEIPT_SECONDS)

    def pending(self) -> int:
        """Entries handed out but not acknowledged (for tests and operators)."""
        self._ensure_group()
        return int(self._redis.xpending(LOG, GROUP)["pending"])

    # setup

    def _functions(self) -> None:
        if not self._loaded:
            code = resources.files(__package__).joinpath("orders.lua").read_text()
            self._redis.function_load(code, replace=True)
            self._loaded = True

    def _ensure_group(self) -> None:
        if self._group:
            return
        try:
            self._redis.xgroup_create(LOG, GROUP, id="0", mkstream=True)
        except redis.ResponseError as exists:
            if "BUSYGROUP" not in str(exists):
                raise
        self._group = True
