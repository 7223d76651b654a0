"""The in-memory order store and outbox: the embedded default (`make run`).

One lock makes every commit atomic, as the Lua function does in Redis: the order, its timeline
and the event log change together or not at all. The log keeps every event with an entry id
(its position); the outbox hands entries to consumers and takes them back when a consumer does
not acknowledge them within `lease_seconds` (it crashed or its receiver failed). Nothing
survives a restart: that is what the Redis store is for.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from allocation_engine.errors import NotFound
from allocation_engine.orders.change import OrderChange
from allocation_engine.orders.machines import OrderState
from allocation_engine.orders.model import Customer, Event, OrderRecord
from allocation_engine.ports.orders import CustomerExists, Delivery, ExternalIdTaken, StaleVersion


@dataclass
class _Entry:
    event: Event
    acked: bool = False
    claimed_at: float | None = None  # monotonic time of the last hand-out


@dataclass
class _State:
    orders: dict[str, OrderRecord] = field(default_factory=dict)
    external: dict[tuple[str, str], str] = field(default_factory=dict)
    customers: dict[str, Customer] = field(default_factory=dict)
    emails: dict[str, str] = field(default_factory=dict)
    timelines: dict[str, list[Event]] = field(default_factory=dict)
    log: list[_Entry] = field(default_factory=list)
    delivered: set[str] = field(default_factory=set)
    sequence: int = 0
    first_open: int = 0  # every log entry before this one is acknowledged


class MemoryOrders:
    """`OrderStore` and `Outbox` in process memory."""

    def __init__(self, lease_seconds: float = 30.0) -> None:
        self.lease_seconds = lease_seconds
        self._lock = threading.Condition()
        self._s = _State()

    # OrderStore

    def new_order_id(self) -> str:
        with self._lock:
            self._s.sequence += 1
            return f"O-{self._s.sequence:06d}"

    def load(self, order_id: str) -> OrderRecord:
        with self._lock:
            record = self._s.orders.get(order_id)
        if record is None:
            raise NotFound("order_id", order_id)
        return record

    def find_external(self, channel: str, external_id: str) -> str | None:
        with self._lock:
            return self._s.external.get((channel, external_id))

    def customer(self, customer_id: str) -> Customer | None:
        with self._lock:
            return self._s.customers.get(customer_id)

    def customer_by_email(self, email: str) -> Customer | None:
        with self._lock:
            customer_id = self._s.emails.get(email)
            return None if customer_id is None else self._s.customers.get(customer_id)

    def put_customer(self, customer: Customer, read_email: str | None) -> None:
        s = self._s
        with self._lock:
            stored = s.customers.get(customer.id)
            if (stored is None) != (read_email is None) or (
                stored is not None and stored.email != read_email
            ):
                raise StaleVersion(customer.id)
            owner = s.emails.get(customer.email) if customer.email else None
            if owner is not None and owner != customer.id:
                raise CustomerExists(owner)
            if stored is not None and stored.email and stored.email != customer.email:
                del s.emails[stored.email]
            if customer.email:
                s.emails[customer.email] = customer.id
            s.customers[customer.id] = customer

    def commit(self, change: OrderChange) -> None:
        record, s = change.record, self._s
        with self._lock:
            current = s.orders.get(record.id)
            if (0 if current is None else current.version) != change.expected_version:
                raise StaleVersion(record.id)
            if current is None:
                other = s.external.get((record.channel, record.external_id))
                if other is not None:
                    raise ExternalIdTaken(other)
                new = change.new_customer
                if new is not None:
                    if new.id in s.customers:
                        raise CustomerExists(new.id)
                    if new.email and new.email in s.emails:
                        raise CustomerExists(s.emails[new.email])
                    s.customers[new.id] = new
                    if new.email:
                        s.emails[new.email] = new.id
                s.external[(record.channel, record.external_id)] = record.id
            s.orders[record.id] = record
            s.timelines.setdefault(record.id, []).extend(change.events)
            s.log.extend(_Entry(event) for event in change.events)
            self._lock.notify_all()

    def timeline(self, order_id: str) -> list[Event]:
        with self._lock:
            if order_id not in self._s.orders:
                raise NotFound("order_id", order_id)
            return list(self._s.timelines[order_id])

    def list_orders(
        self, customer_id: str | None, state: OrderState | None, offset: int, limit: int
    ) -> list[OrderRecord]:
        with self._lock:
            found = [
                r
                for r in self._s.orders.values()
                if (customer_id is None or r.customer_id == customer_id)
                and (state is None or r.state is state)
            ]
        found.sort(key=lambda r: (r.created_at, r.id), reverse=True)
        return found[offset : offset + limit]

    # Outbox

    def claim(self, consumer: str, count: int, wait_seconds: float) -> Sequence[Delivery]:
        deadline = time.monotonic() + wait_seconds
        with self._lock:
            while True:
                now = time.monotonic()
                out = []
                for i in range(self._s.first_open, len(self._s.log)):
                    entry = self._s.log[i]
                    if entry.acked or (
                        entry.claimed_at is not None and now - entry.claimed_at < self.lease_seconds
                    ):
                        continue
                    entry.claimed_at = now
                    out.append(Delivery(str(i), entry.event))
                    if len(out) == count:
                        break
                if out or now >= deadline:
                    return out
                self._lock.wait(deadline - now)

    def ack(self, entry_id: str) -> None:
        with self._lock:
            s = self._s
            s.log[int(entry_id)].acked = True
            while s.first_open < len(s.log) and s.log[s.first_open].acked:
                s.first_open += 1

    def delivered(self, key: str) -> bool:
        with self._lock:
            return key in self._s.delivered

    def mark_delivered(self, key: str) -> None:
        with self._lock:
            self._s.delivered.add(key)
