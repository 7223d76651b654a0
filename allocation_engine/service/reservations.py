"""Reservations: plan an order and hold its stock, then commit, release or let it expire.

Reserve is a saga over nodes. Each node's hold is atomic in the store and keyed by the
reservation id, and the reservation id is derived from the idempotency key, so every step can be
repeated after a crash without holding anything twice:

1. Plan, then create the reservation record (PENDING, with that plan) under the id of the key,
   or find the one a first call created: same fingerprint -> carry on or answer as that call
   did; other fingerprint -> conflict.
2. The first plan (or the given one) is stored with the record when it is created; later
   plans replace it by compare-and-set on the attempt number, so only the owner writes.
3. Hold at every node of the plan (its shelf units and what it takes from incoming lots, one
   atomic step per node). If a node refuses, the stock moved after the planning read:
   give back what was taken (compensation; giving back twice is harmless) and plan again from
   fresh numbers, up to `MAX_ATTEMPTS` times. The per-node hold is the authority: nothing is
   ever held beyond what a node has, whatever the planner saw.
4. Mark the record HELD.

A call that finds the record PENDING under a live lease waits for it, at most until its lease or
the caller's deadline runs out, then answers ReservationInProgress (ABORTED, with how long to wait);
under an expired lease (the first call died), it takes over: it gives back the holds of the dead
call's plan and starts again. A call that gives up half-way (deadline, store error) drops its
lease, so a retry takes over at once. Ending a reservation (release, expiry) is crash-safe in
three steps, see `expiry.py`. Records and holds carry `expires_at`; `expiry.py` cleans up after
reservations whose time is up.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Sequence
from dataclasses import replace

from allocation_engine.engine import InsufficientStock, InvalidInput, Order, Plan, Shortfall, Status
from allocation_engine.errors import (
    IdempotencyConflict,
    IllegalState,
    NotFound,
    ProblemCollector,
    ReservationInProgress,
    StoreError,
)
from allocation_engine.ports.clock import Clock
from allocation_engine.ports.inventory import (
    OPEN_STATES,
    Hold,
    HoldOutcome,
    InventoryStore,
    ReservationRecord,
    ReservationState,
)
from allocation_engine.service.deadline import Deadline
from allocation_engine.service.expiry import end, expire, finish, is_overdue
from allocation_engine.service.planner import Planner

MAX_ATTEMPTS = 5
LEASE_SECONDS = 10.0  # a PENDING record whose owner is silent this long is taken over
WAIT_SECONDS = 0.005  # poll interval while another call owns the record
AWAIT_SECONDS = 2.0  # longest a retry waits for a live first call before answering "in progress"
DEADLINE_MARGIN = 0.05  # what a waiting retry keeps of the caller's deadline to answer in


def reservation_id(idempotency_key: str) -> str:
    """The reservation id for a key: the same key always names the same reservation."""
    return "res-" + hashlib.sha256(idempotency_key.encode()).hexdigest()[:24]


class Reservations:
    def __init__(
        self,
        store: InventoryStore,
        planner: Planner,
        clock: Clock,
        default_ttl_seconds: float = 900.0,
        max_ttl_seconds: float = 7 * 24 * 3600,
    ) -> None:
        self._store = store
        self._planner = planner
        self._clock = clock
        self.default_ttl = default_ttl_seconds
        self.max_ttl = max_ttl_seconds

    # Reserve
    def reserve(
        self,
        idempotency_key: str,
        fingerprint: str,
        order: Order,
        ttl_seconds: float = 0,
        plan: Plan | None = None,
        strict_plan: bool = False,
        deadline: Deadline | None = None,
    ) -> ReservationRecord:
        """Holds stock for `order` and returns the HELD reservation.

        Raises InsufficientStock (with shortfalls) when the order cannot be held, and
        IdempotencyConflict when the key was used for another request.
        """
        deadline = deadline or Deadline()
        ttl = self._ttl(ttl_seconds)
        if plan is not None:
            self._check_plan(plan, order)
        first = plan or self._planner.plan(order, deadline=deadline)
        now, token = self._clock.now(), uuid.uuid4().hex
        fresh = ReservationRecord(
            id=reservation_id(idempotency_key),
            idempotency_key=idempotency_key,
            fingerprint=fingerprint,
            order_id=order.id,
            state=ReservationState.PENDING,
            created_at=now,
            expires_at=now + ttl,
            attempt=1,
            plan=first,
            owner=token,
            lease_until=now + LEASE_SECONDS,
        )
        if first.status is Status.INFEASIBLE:
            fresh = replace(fresh, state=ReservationState.FAILED, shortfalls=first.shortfalls)
        record = self._store.create_reservation(fresh)
        if record.fingerprint != fingerprint:
            raise IdempotencyConflict(idempotency_key)
        if record.owner != token:
            record = self._own_or_await(record, token, deadline)
        if record.state is not ReservationState.PENDING:
            return self._settled(record)
        return self._hold(record, order, plan is not None and strict_plan, token, deadline)

    def _ttl(self, ttl_seconds: float) -> float:
        if ttl_seconds < 0 or ttl_seconds > self.max_ttl:
            raise InvalidInput.one("ttl_seconds", ttl_seconds, f"must be in [0, {self.max_ttl}]")
        return ttl_seconds or self.default_ttl

    def _check_plan(self, plan: Plan, order: Order) -> None:
        """A given plan must ship exactly the order's lines, from known nodes, and take from
        incoming lots only units of its own lines (the store then checks the lots hold them)."""
        problems = ProblemCollector()
        network = self._planner.network()
        shipped: dict[str, int] = {}
        for i, shipment in enumerate(plan.shipments):
            if shipment.node_id not in network.index:
                problems.add(f"plan.shipments[{i}].node_id", shipment.node_id, "unknown node")
            for j, line in enumerate(shipment.lines):
                if line.quantity <= 0:
                    problems.add(
                        f"plan.shipments[{i}].lines[{j}].quantity", line.quantity, "must be > 0"
                    )
                shipped[line.sku] = shipped.get(line.sku, 0) + line.quantity
            carried = {line.sku: line.quantity for line in shipment.lines}
            for j, take in enumerate(shipment.lots):
                where = f"plan.shipments[{i}].lots[{j}]"
                if take.sku not in carried:
                    problems.add(f"{where}.sku", take.sku, "not a line of this shipment")
                elif not 0 < take.units <= carried[take.sku]:
                    problems.add(
                        f"{where}.units",
                        take.units,
                        f"must be in [1, {carried[take.sku]}] (the shipment's units of it)",
                    )
                carried[take.sku] = carried.get(take.sku, 0) - max(take.units, 0)
        wanted = {line.sku: line.quantity for line in order.lines}
        for sku in sorted(set(shipped) | set(wanted)):
            if shipped.get(sku, 0) != wanted.get(sku, 0):
                problems.add(
                    f"plan.shipments[sku={sku}]",
                    shipped.get(sku, 0),
                    f"the order asks for {wanted.get(sku, 0)}",
                )
        problems.raise_if_any()

    def _own_or_await(
        self, record: ReservationRecord, token: str, deadline: Deadline
    ) -> ReservationRecord:
        """Waits for a live first call with this key, or takes over from a dead one.

        The wait is bounded by the first call's lease and by the caller's deadline (less a
        margin to answer in): when either runs out first and the first call is still at it,
        the answer is ReservationInProgress (ABORTED) saying when to retry, not a timeout."""
        give_up = time.monotonic() + min(LEASE_SECONDS, AWAIT_SECONDS)
        while record.state is ReservationState.PENDING:
            now = self._clock.now()
            if record.lease_until > now:
                left = deadline.remaining()
                if time.monotonic() > give_up or (left is not None and left < DEADLINE_MARGIN):
                    raise ReservationInProgress(
                        record.id, max(WAIT_SECONDS, min(record.lease_until - now, AWAIT_SECONDS))
                    )
                time.sleep(WAIT_SECONDS)
                record = self._require(record.id)
                continue
            taken = replace(
                record, attempt=record.attempt + 1, owner=token, lease_until=now + LEASE_SECONDS
            )
            if self._store.replace_reservation(taken, record.state, record.attempt):
                self._store.release(list(record.holds), record.id, record.holds)
                return replace(taken, plan=None)
            record = self._require(record.id)
        return record

    def _hold(
        self,
        record: ReservationRecord,
        order: Order,
        strict: bool,
        token: str,
        deadline: Deadline,
    ) -> ReservationRecord:
        """Holds the record's plan; when a node refuses, gives back and plans again. A call
        that stops half-way (its deadline passed, the store failed) drops its lease on the way
        out, so a retry takes over at once instead of waiting for the lease to run out."""
        try:
            return self._hold_plan(record, order, strict, token, deadline)
        except Exception:
            self._drop_lease(record.id, token)
            raise

    def _drop_lease(self, rid: str, token: str) -> None:
        try:
            current = self._store.get_reservation(rid)
            if (
                current is not None
                and current.state is ReservationState.PENDING
                and current.owner == token
            ):
                dropped = replace(current, lease_until=0.0)
                self._store.replace_reservation(dropped, current.state, current.attempt)
        except StoreError:  # the store is down: the lease runs out by itself
            return

    def _hold_plan(
        self,
        record: ReservationRecord,
        order: Order,
        strict: bool,
        token: str,
        deadline: Deadline,
    ) -> ReservationRecord:
        refused: list[tuple[Hold, HoldOutcome]] = []
        for attempt in range(MAX_ATTEMPTS):
            deadline.check("reserving")
            if record.plan is None or attempt > 0:
                plan = self._planner.plan(order, deadline=deadline)
                if plan.status is Status.INFEASIBLE:
                    return self._fail(record, plan.shortfalls)
                planned = replace(
                    record,
                    attempt=record.attempt + 1,
                    plan=plan,
                    lease_until=self._clock.now() + LEASE_SECONDS,
                )
                if not self._store.replace_reservation(planned, record.state, record.attempt):
                    return self._lost(record.id)
                record = planned
            lots = record.lot_holds
            holds = [
                Hold(
                    node_id,
                    record.id,
                    lines,
                    record.expires_at,
                    self._planner.capacity(node_id),
                    lots.get(node_id, {}),
                )
                for node_id, lines in record.holds.items()
            ]
            now = self._clock.now()
            if now >= record.expires_at:
                return self._settled(expire(self._store, record, now))
            outcomes = self._store.hold(holds, now)
            if all(o.held for o in outcomes):
                held = replace(record, state=ReservationState.HELD, owner=token, lease_until=0.0)
                if self._store.replace_reservation(held, record.state, record.attempt):
                    return held
                return self._lost(record.id)
            self._store.release(  # every node: a refusing one may keep a stale hold of ours
                [h.node_id for h in holds],
                record.id,
                record.holds,
            )
            refused = [(h, o) for h, o in zip(holds, outcomes, strict=True) if not o.held]
            if strict:
                break
        return self._fail(record, _shortfalls(refused, record))

    def _fail(
        self, record: ReservationRecord, shortfalls: Sequence[Shortfall]
    ) -> ReservationRecord:
        failed = replace(record, state=ReservationState.FAILED, shortfalls=tuple(shortfalls))
        if not self._store.replace_reservation(failed, record.state, record.attempt):
            return self._lost(record.id)
        raise InsufficientStock(shortfalls)

    def _lost(self, rid: str) -> ReservationRecord:
        """Another call changed the record under us (released, expired or took over): answer
        with the record as it stands; if it was released meanwhile, nothing of ours stays held."""
        record = self._require(rid)
        if record.state in (ReservationState.RELEASED, ReservationState.EXPIRED):
            self._store.release(list(record.holds), rid, record.holds)
        if record.state is ReservationState.PENDING:
            raise IllegalState(f"reservation {rid} was taken over by a retry of the same key")
        return self._settled(record)

    def _settled(self, record: ReservationRecord) -> ReservationRecord:
        """The answer for a finished first call: its reservation (a release a crash cut
        short finished first), or its shortfalls again."""
        if record.state is ReservationState.RELEASING:
            record = finish(self._store, record)
        return _settled(record)

    # Commit, release, fulfil, get
    def commit(
        self, reservation_id: str, idempotency_key: str, fingerprint: str
    ) -> ReservationRecord:
        """HELD -> COMMITTED: the holds stop expiring. An expired hold cannot be committed."""
        self._claim("commit", idempotency_key, fingerprint)
        record = self._current(reservation_id)
        if record.state is ReservationState.HELD:
            pinned = self._store.pin(list(record.holds), record.id, self._clock.now())
            committed = replace(record, state=ReservationState.COMMITTED)
            if all(pinned) and self._store.replace_reservation(
                committed, record.state, record.attempt
            ):
                return committed
            record = self._current(reservation_id)
            if record.state is ReservationState.HELD:  # a hold expired at a node just now
                record = expire(self._store, record, record.expires_at)
            elif record.state is not ReservationState.COMMITTED:
                self._store.release(list(record.holds), record.id, record.holds)
        if record.state is ReservationState.COMMITTED:
            return record
        raise IllegalState(
            f"reservation {reservation_id} is {record.state.value}: "
            "only a HELD reservation before its expires_at can be committed"
        )

    def release(
        self, reservation_id: str, idempotency_key: str, fingerprint: str
    ) -> ReservationRecord:
        """HELD, COMMITTED or PENDING -> RELEASED: the stock is free again at once.

        Crash-safe in three steps (see `expiry.py`): a retry after a crash at any point, with
        any key, finishes what the dead call began."""
        self._claim("release", idempotency_key, fingerprint)
        for _ in range(MAX_ATTEMPTS):
            record = self._current(reservation_id)
            if record.state is ReservationState.FULFILLED:
                raise IllegalState(f"reservation {reservation_id} has shipped; return it instead")
            if record.state not in OPEN_STATES:
                return record
            ended = end(self._store, record, ReservationState.RELEASED)
            if ended is not None:
                return ended
        raise IllegalState(f"reservation {reservation_id} keeps changing; retry")

    def fulfil(self, reservation_id: str) -> ReservationRecord:
        """COMMITTED -> FULFILLED when the WMS confirms the shipment: the held units leave both
        on_hand and reserved. (A later snapshot sets on_hand as counted, so it agrees.)"""
        record = self._current(reservation_id)
        if record.state is ReservationState.FULFILLED:
            return record
        if record.state is not ReservationState.COMMITTED:
            raise IllegalState(
                f"reservation {reservation_id} is {record.state.value}: only COMMITTED ships"
            )
        self._store.fulfil(list(record.holds), record.id, record.holds)
        fulfilled = replace(record, state=ReservationState.FULFILLED)
        if self._store.replace_reservation(fulfilled, record.state, record.attempt):
            return fulfilled
        return self._current(reservation_id)

    def fulfil_node(self, reservation_id: str, node_id: str) -> ReservationRecord:
        """One parcel of a COMMITTED reservation left its node: that node's held units leave
        on_hand and reserved, the other nodes' holds stay, and the record stays COMMITTED until
        `fulfil` ships the rest. Repeating it is harmless: a hold that left is gone."""
        record = self._current(reservation_id)
        if record.state is ReservationState.FULFILLED:
            return record
        if record.state is not ReservationState.COMMITTED:
            raise IllegalState(
                f"reservation {reservation_id} is {record.state.value}: only COMMITTED ships"
            )
        if node_id not in record.holds:
            raise InvalidInput.one("node_id", node_id, f"reservation {reservation_id} holds none")
        self._store.fulfil([node_id], record.id, record.holds)
        return record

    def release_node(self, reservation_id: str, node_id: str) -> ReservationRecord:
        """One node of a COMMITTED reservation will not ship (it rejected its parcel): its held
        units are free again at once, the other nodes' holds stay. Repeating it is harmless: a
        hold given back is gone; `fulfil` later ships only the holds that are left."""
        record = self._current(reservation_id)
        if record.state in (ReservationState.FULFILLED, ReservationState.RELEASED):
            return record
        if record.state is not ReservationState.COMMITTED:
            raise IllegalState(
                f"reservation {reservation_id} is {record.state.value}: only COMMITTED gives "
                "back a node"
            )
        if node_id not in record.holds:
            raise InvalidInput.one("node_id", node_id, f"reservation {reservation_id} holds none")
        self._store.release([node_id], record.id, record.holds)
        return record

    def get(self, reservation_id: str) -> ReservationRecord:
        return self._current(reservation_id)

    def _current(self, reservation_id: str) -> ReservationRecord:
        """The record as it stands, with an overdue one expired on the spot and a release a
        crash cut short finished."""
        record = self._require(reservation_id)
        now = self._clock.now()
        if record.state is ReservationState.RELEASING or is_overdue(record, now):
            return expire(self._store, record, now)
        return record

    def _require(self, reservation_id: str) -> ReservationRecord:
        record = self._store.get_reservation(reservation_id)
        if record is None:
            raise NotFound("reservation_id", reservation_id)
        return record

    def _claim(self, operation: str, key: str, fingerprint: str) -> None:
        """Commit and release are idempotent by their state changes; the key guards against
        its reuse for another request."""
        if not key:
            raise InvalidInput.one("idempotency_key", key, "is required")
        self._store.claim_key(f"{operation}:{key}", fingerprint)


def _settled(record: ReservationRecord) -> ReservationRecord:
    """The answer for a finished first call: its reservation, or its shortfalls again."""
    if record.state is ReservationState.FAILED:
        raise InsufficientStock(record.shortfalls)
    return record


def _shortfalls(
    refused: Sequence[tuple[Hold, HoldOutcome]], record: ReservationRecord
) -> list[Shortfall]:
    """What the refusing nodes were short of, on the shelf or in an incoming lot (named by the
    lot's sku), as the caller's shortfalls."""
    lot_skus = {
        take.lot_id: take.sku
        for shipment in (record.plan.shipments if record.plan else ())
        for take in shipment.lots
    }
    out = []
    for hold, outcome in refused:
        available = {level.sku: level.available for level in outcome.levels}
        for sku, units in hold.lines.items():
            if available.get(sku, 0) < units:
                out.append(Shortfall(sku, units, available.get(sku, 0)))
        for lot_id, units in hold.lots.items():
            if outcome.lots_free.get(lot_id, 0) < units:
                out.append(Shortfall(lot_skus[lot_id], units, outcome.lots_free.get(lot_id, 0)))
    return out
