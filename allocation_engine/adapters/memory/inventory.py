"""The in-memory `InventoryStore`: the embedded default, so `make run` needs nothing else.

One process, one lock: every operation runs under it, which makes each one atomic just as a Lua
script is in Redis. It keeps the same data the Redis store keeps (positions with the snapshot
version that set them, holds with their expiry, reservation records, idempotency keys) so the
shared store test suite holds both to the same behaviour, incoming lots with their node (and an
index lot id -> node) included. Nothing survives a restart.

There is one layout here (no per-sku view beside the positions), so views cannot drift and
`reconcile_views` has nothing to do; a staged snapshot is kept beside the stock until commit.
"""

from __future__ import annotations

import heapq
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date

from allocation_engine.engine.limits import MAX_UNITS
from allocation_engine.engine.network import Node
from allocation_engine.errors import (
    IdempotencyConflict,
    NotFound,
    ProblemCollector,
    VersionConflict,
)
from allocation_engine.ports.inventory import (
    EXPIRING_STATES,
    LOT_BELOW_HELD,
    LOT_OF_OTHER,
    Adjustment,
    AdjustOutcome,
    Hold,
    HoldOutcome,
    KeyClaim,
    Level,
    NetworkRecord,
    ReceiveOutcome,
    ReservationRecord,
    ReservationState,
    ReviseOutcome,
    SnapshotLine,
    SnapshotOutcome,
    StagedSnapshot,
    StockRead,
    StoredRules,
    SupplyLot,
)

DAY = 86400.0


def _day(now: float) -> int:
    """The UTC day `now` falls in (days since the epoch): what node capacity counts per."""
    return int(now // DAY)


@dataclass
class _Position:
    on_hand: int = 0
    safety_stock: int = 0
    reserved: int = 0
    version: int = 0  # snapshot version that last set on_hand


@dataclass
class _Hold:
    lines: dict[str, int]
    expires_at: float | None
    day: int = 0  # the UTC day whose shipment the hold spent
    lots: dict[str, int] = field(default_factory=dict)  # lot id -> units still incoming
    promised: dict[str, date] = field(default_factory=dict)  # lot id -> its date when held
    created: float = 0.0  # when it was taken: the promise order of receiving and revising


@dataclass
class _Node:
    positions: dict[str, _Position] = field(default_factory=dict)
    holds: dict[str, _Hold] = field(default_factory=dict)
    applied: set[str] = field(default_factory=set)  # adjustment keys already applied
    expiries: list[tuple[float, str]] = field(default_factory=list)  # heap of (expires_at, id)
    shipments: tuple[int, int] = (0, 0)  # (UTC day, shipments spent that day)
    lots: dict[str, SupplyLot] = field(default_factory=dict)  # incoming lots by id
    answers: dict[str, ReceiveOutcome | ReviseOutcome] = field(default_factory=dict)  # by key

    def promise_order(self, lot_id: str) -> list[tuple[str, _Hold]]:
        """The holds against `lot_id`, earliest taken first."""
        mine = [(rid, h) for rid, h in self.holds.items() if h.lots.get(lot_id)]
        return sorted(mine, key=lambda pair: (pair[1].created, pair[0]))

    def spent(self, day: int) -> int:
        return self.shipments[1] if self.shipments[0] == day else 0


class MemoryStore:
    """`InventoryStore` in process memory, guarded by one lock."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._nodes: dict[str, Node] = {}
        self._nodes_version = 0
        self._rules: StoredRules | None = None
        self._stock: dict[str, _Node] = {}
        self._skus: dict[str, set[str]] = {}  # sku -> nodes holding a position of it
        self._snapshot_version = 0
        self._reservations: dict[str, ReservationRecord] = {}
        # (expires_at, id) of reservations that were expiring when pushed; entries whose record has
        # closed or moved on are dropped when they reach the top (lazy deletion).
        self._expiry: list[tuple[float, str]] = []
        self._keys: dict[str, tuple[str, str | None]] = {}
        self._lot_nodes: dict[str, tuple[str, str]] = {}  # lot id -> (node id, sku)

    # network
    def upsert_nodes(self, nodes: Sequence[Node]) -> int:
        with self._lock:
            for node in nodes:
                self._nodes[node.id] = node
            self._nodes_version += 1
            return self._nodes_version

    def load_nodes(self) -> NetworkRecord:
        with self._lock:
            return NetworkRecord(self._nodes_version, tuple(self._nodes.values()))

    # rules
    def get_rules(self) -> StoredRules | None:
        return self._rules

    def put_rules(self, text: str, expected_revision: int | None = None) -> int:
        with self._lock:
            current = self._rules.revision if self._rules else 0
            if expected_revision is not None and expected_revision != current:
                raise VersionConflict("expected_revision", expected_revision, current)
            self._rules = StoredRules(current + 1, text)
            return current + 1

    # stock
    def stock(self, skus: Sequence[str], now: float) -> StockRead:
        with self._lock:
            levels = {}
            for sku in skus:
                holders = sorted(self._skus.get(sku, ()))
                for node_id in holders:
                    self._sweep(node_id, now)
                levels[sku] = [self._level(node_id, sku) for node_id in holders]
            due = bool(self._due(now, 1))
            day = _day(now)
            shipments = {n: node.spent(day) for n, node in self._stock.items() if node.spent(day)}
            return StockRead(
                levels,
                self._nodes_version,
                self._rules.revision if self._rules else 0,
                due,
                shipments,
            )

    def node_stock(self, node_id: str) -> tuple[Level, ...]:
        with self._lock:
            node = self._stock.get(node_id, _Node())
            return tuple(self._level(node_id, sku) for sku in sorted(node.positions))

    def apply_snapshot(self, version: int, lines: Sequence[SnapshotLine]) -> SnapshotOutcome:
        with self._lock:
            if version < self._snapshot_version:
                raise VersionConflict("version", version, self._snapshot_version)
            self._snapshot_version = version
            applied = skipped = 0
            for line in lines:
                position = self._position(line.node_id, line.sku)
                if position.version > version:
                    skipped += 1
                    continue
                position.on_hand, position.version = line.on_hand, version
                if line.safety_stock is not None:
                    position.safety_stock = line.safety_stock
                applied += 1
            return SnapshotOutcome(applied, skipped)

    def stage_snapshot(self, version: int) -> StagedSnapshot:
        with self._lock:
            if version < self._snapshot_version:
                raise VersionConflict("version", version, self._snapshot_version)
        return _MemoryStage(self, version)

    def adjust(self, key: str, adjustments: Sequence[Adjustment]) -> AdjustOutcome:
        with self._lock:
            clamped = []
            touched = []
            for node_id in dict.fromkeys(a.node_id for a in adjustments):
                node = self._stock.setdefault(node_id, _Node())
                mine = [a for a in adjustments if a.node_id == node_id]
                touched += [(node_id, a.sku) for a in mine]
                if key in node.applied:
                    continue
                node.applied.add(key)
                for a in mine:
                    position = self._position(node_id, a.sku)
                    counted = min(MAX_UNITS, max(0, position.on_hand + a.on_hand_delta))
                    if counted != position.on_hand + a.on_hand_delta:
                        clamped.append(a)
                    position.on_hand = counted
                    if a.safety_stock is not None:
                        position.safety_stock = a.safety_stock
            levels = tuple(self._level(n, s) for n, s in dict.fromkeys(touched))
            return AdjustOutcome(levels, tuple(clamped))

    # holds
    def hold(self, holds: Sequence[Hold], now: float) -> list[HoldOutcome]:
        with self._lock:
            return [self._hold(h, now) for h in holds]

    def _hold(self, hold: Hold, now: float) -> HoldOutcome:
        self._sweep(hold.node_id, now)
        node = self._stock.setdefault(hold.node_id, _Node())
        existing = node.holds.get(hold.reservation_id)
        if existing is not None:  # the same lines count as held, other lines are refused
            same = existing.lines == dict(hold.lines) and existing.lots == dict(hold.lots)
            return self._outcome(hold, same)
        fits = hold.expires_at is None or hold.expires_at > now
        for sku, units in hold.lines.items():
            position = node.positions.get(sku)
            if position is None or _available(position) < units:
                fits = False
        for lot_id, units in hold.lots.items():
            lot = node.lots.get(lot_id)
            if lot is None or lot.free < units:
                fits = False
        day = _day(now)
        if fits and hold.capacity is not None and node.spent(day) >= hold.capacity:
            return self._outcome(hold, False, no_capacity=True)
        if fits:
            node.holds[hold.reservation_id] = _Hold(
                dict(hold.lines),
                hold.expires_at,
                day,
                dict(hold.lots),
                {lot_id: node.lots[lot_id].expected for lot_id in hold.lots},
                now,
            )
            node.shipments = (day, node.spent(day) + 1)
            if hold.expires_at is not None:
                heapq.heappush(node.expiries, (hold.expires_at, hold.reservation_id))
            for sku, units in hold.lines.items():
                node.positions[sku].reserved += units
            for lot_id, units in hold.lots.items():
                lot = node.lots[lot_id]
                node.lots[lot_id] = replace(lot, held=lot.held + units)
        return self._outcome(hold, fits)

    def _outcome(self, hold: Hold, held: bool, *, no_capacity: bool = False) -> HoldOutcome:
        """The answer to `hold`: its positions and its lots' free units as they stand now."""
        lots = self._stock[hold.node_id].lots
        free = {lot_id: lots[lot_id].free if lot_id in lots else 0 for lot_id in hold.lots}
        return HoldOutcome(held, self._levels(hold.node_id, hold.lines), no_capacity, free)

    def release(
        self,
        node_ids: Sequence[str],
        reservation_id: str,
        expected: Mapping[str, Iterable[str]] | None = None,
    ) -> None:
        with self._lock:
            for node_id in node_ids:
                self._drop(node_id, reservation_id, ship=False)

    def pin(self, node_ids: Sequence[str], reservation_id: str, now: float) -> list[bool]:
        with self._lock:
            out = []
            for node_id in node_ids:
                self._sweep(node_id, now)
                held = self._stock.get(node_id, _Node()).holds.get(reservation_id)
                if held is not None:
                    held.expires_at = None
                out.append(held is not None)
            return out

    def fulfil(
        self,
        node_ids: Sequence[str],
        reservation_id: str,
        expected: Mapping[str, Iterable[str]] | None = None,
    ) -> None:
        with self._lock:
            for node_id in node_ids:
                self._drop(node_id, reservation_id, ship=True)

    def node_holds(self, node_id: str) -> tuple[Hold, ...]:
        with self._lock:
            node = self._stock.get(node_id, _Node())
            return tuple(
                Hold(node_id, rid, dict(h.lines), h.expires_at, lots=dict(h.lots))
                for rid, h in sorted(node.holds.items())
            )

    def reconcile_views(self, node_id: str) -> int:
        return 0

    # incoming supply
    def put_supply(self, key: str, lots: Sequence[SupplyLot]) -> tuple[SupplyLot, ...]:
        with self._lock:
            problems = ProblemCollector()
            for i, lot in enumerate(lots):
                owner = self._lot_nodes.get(lot.id)
                if owner is not None and owner != (lot.node_id, lot.sku):
                    problems.add(f"lots[{i}].id", lot.id, LOT_OF_OTHER.format(*owner))
            fresh = [
                (i, lot)
                for i, lot in enumerate(lots)
                if f"supply:{key}" not in self._stock.get(lot.node_id, _Node()).applied
            ]
            for i, lot in fresh:
                held = self._held(lot)
                if lot.units < held:
                    problems.add(f"lots[{i}].units", lot.units, LOT_BELOW_HELD.format(lot.id, held))
            problems.raise_if_any()
            for _, lot in fresh:
                node = self._stock.setdefault(lot.node_id, _Node())
                node.lots[lot.id] = replace(lot, held=self._held(lot))
                self._lot_nodes[lot.id] = (lot.node_id, lot.sku)
            for node_id in {lot.node_id for _, lot in fresh}:
                self._stock[node_id].applied.add(f"supply:{key}")
            return tuple(
                self._stock[lot.node_id].lots.get(lot.id, replace(lot, units=0, held=0))
                for lot in lots
            )

    def list_supply(
        self, skus: Sequence[str] | None = None, node_id: str | None = None
    ) -> tuple[SupplyLot, ...]:
        with self._lock:
            wanted = None if skus is None else set(skus)
            return tuple(
                lot
                for nid, node in sorted(self._stock.items())
                if node_id is None or nid == node_id
                for _, lot in sorted(node.lots.items())
                if (wanted is None or lot.sku in wanted) and (lot.units or lot.held)
            )

    def receive_supply(self, key: str, lot_id: str, units: int, now: float) -> ReceiveOutcome:
        with self._lock:
            node_id, sku = self._lot_node(lot_id)
            node = self._stock[node_id]
            seen = node.answers.get(f"receive:{key}")
            if isinstance(seen, ReceiveOutcome):
                return seen
            if lot_id not in node.lots:  # received in full before
                raise NotFound("lot_id", lot_id)
            lot = node.lots[lot_id]
            position = self._position(node_id, sku)
            position.on_hand = min(MAX_UNITS, position.on_hand + units)
            left, order, on_shelf = units, [], []
            for rid, held in node.promise_order(lot_id):
                order.append(rid)
                if held.expires_at is not None and held.expires_at <= now:
                    continue  # expiring anyway: its lot units go back to the lot
                moved = min(left, held.lots[lot_id])
                left -= moved
                held.lots[lot_id] -= moved
                held.lines[sku] = held.lines.get(sku, 0) + moved
                position.reserved += moved
                lot = replace(lot, held=lot.held - moved)
                if not held.lots[lot_id]:
                    del held.lots[lot_id]
                    if not held.lots:  # nothing of it waits for supply any more
                        on_shelf.append(rid)
            lot = replace(lot, units=max(0, lot.units - units))
            node.lots[lot_id] = lot
            if not lot.units and not lot.held:  # received in full (the id stays known)
                del node.lots[lot_id]
            outcome = ReceiveOutcome(
                self._level(node_id, sku), node.lots.get(lot_id), tuple(order), tuple(on_shelf)
            )
            node.answers[f"receive:{key}"] = outcome
            return outcome

    def revise_supply(
        self, key: str, lot_id: str, units: int | None = None, expected: date | None = None
    ) -> ReviseOutcome:
        with self._lock:
            node_id, _ = self._lot_node(lot_id)
            node = self._stock[node_id]
            seen = node.answers.get(f"revise:{key}")
            if isinstance(seen, ReviseOutcome):
                return seen
            if lot_id not in node.lots:  # received in full before
                raise NotFound("lot_id", lot_id)
            lot = node.lots[lot_id]
            lot = replace(
                lot,
                units=lot.units if units is None else units,
                expected=lot.expected if expected is None else expected,
            )
            node.lots[lot_id] = lot
            broken, promised = [], 0
            for rid, held in node.promise_order(lot_id):
                promised += held.lots[lot_id]
                if promised > lot.units or held.promised[lot_id] < lot.expected:
                    broken.append(rid)
            outcome = ReviseOutcome(lot, tuple(broken))
            node.answers[f"revise:{key}"] = outcome
            return outcome

    def _held(self, lot: SupplyLot) -> int:
        """Units held against the stored lot of `lot`'s id (0 for a new one)."""
        stored = self._stock.get(lot.node_id, _Node()).lots.get(lot.id)
        return 0 if stored is None else stored.held

    def _lot_node(self, lot_id: str) -> tuple[str, str]:
        found = self._lot_nodes.get(lot_id)
        if found is None:
            raise NotFound("lot_id", lot_id)
        return found

    # reservation records
    def create_reservation(self, record: ReservationRecord) -> ReservationRecord:
        with self._lock:
            stored = self._reservations.setdefault(record.id, record)
            if stored is record and record.state in EXPIRING_STATES:
                heapq.heappush(self._expiry, (record.expires_at, record.id))
            return stored

    def get_reservation(self, reservation_id: str) -> ReservationRecord | None:
        return self._reservations.get(reservation_id)

    def replace_reservation(
        self, record: ReservationRecord, expected: ReservationState, expected_attempt: int
    ) -> bool:
        with self._lock:
            current = self._reservations.get(record.id)
            if current is None or (current.state, current.attempt) != (expected, expected_attempt):
                return False
            self._reservations[record.id] = record
            if record.state in EXPIRING_STATES:
                heapq.heappush(self._expiry, (record.expires_at, record.id))
            elif record.state is ReservationState.RELEASING:
                heapq.heappush(self._expiry, (0.0, record.id))
            return True

    def due_reservations(self, now: float, limit: int) -> list[str]:
        with self._lock:
            return self._due(now, limit)

    def _due(self, now: float, limit: int) -> list[str]:
        """Open reservations past expiry, earliest first (a planning read asks for one)."""
        while self._expiry and not self._current(*self._expiry[0]):
            heapq.heappop(self._expiry)
        if not self._expiry or self._expiry[0][0] > now:
            return []
        due = sorted({e for e in self._expiry if e[0] <= now and self._current(*e)})
        return [rid for _, rid in due[:limit]]

    def _current(self, expires_at: float, rid: str) -> bool:
        record = self._reservations.get(rid)
        if record is not None and record.state is ReservationState.RELEASING:
            return expires_at == 0.0
        return (
            record is not None
            and record.state in EXPIRING_STATES
            and record.expires_at == expires_at
        )

    # idempotency keys
    def claim_key(self, key: str, fingerprint: str) -> KeyClaim:
        with self._lock:
            seen = self._keys.get(key)
            if seen is None:
                self._keys[key] = (fingerprint, None)
                return KeyClaim(True)
            if seen[0] != fingerprint:
                raise IdempotencyConflict(key)
            return KeyClaim(False, seen[1])

    def complete_key(self, key: str, result: str) -> None:
        with self._lock:
            fingerprint, _ = self._keys[key]
            self._keys[key] = (fingerprint, result)

    def ping(self) -> None:
        return None

    # internals
    def _position(self, node_id: str, sku: str) -> _Position:
        node = self._stock.setdefault(node_id, _Node())
        if sku not in node.positions:
            node.positions[sku] = _Position()
            self._skus.setdefault(sku, set()).add(node_id)
        return node.positions[sku]

    def _level(self, node_id: str, sku: str) -> Level:
        p = self._stock[node_id].positions[sku]
        return Level(node_id, sku, p.on_hand, p.reserved, p.safety_stock)

    def _levels(self, node_id: str, skus: Iterable[str]) -> tuple[Level, ...]:
        node = self._stock.get(node_id, _Node())
        return tuple(self._level(node_id, sku) for sku in skus if sku in node.positions)

    def _sweep(self, node_id: str, now: float) -> None:
        """Drops the node's holds past their expiry: they stop counting at once."""
        node = self._stock.get(node_id)
        while node is not None and node.expiries and node.expiries[0][0] <= now:
            expires_at, rid = heapq.heappop(node.expiries)
            held = node.holds.get(rid)
            if held is not None and held.expires_at == expires_at:  # not pinned nor re-taken
                self._drop(node_id, rid, ship=False)

    def _drop(self, node_id: str, reservation_id: str, *, ship: bool) -> None:
        node = self._stock.get(node_id)
        held = node.holds.pop(reservation_id, None) if node else None
        if node is None or held is None:
            return
        if not ship and node.shipments[0] == held.day:
            node.shipments = (held.day, max(0, node.shipments[1] - 1))
        for sku, units in held.lines.items():
            position = node.positions[sku]
            position.reserved -= units
            if ship:
                position.on_hand = max(0, position.on_hand - units)
        for lot_id, units in held.lots.items():
            lot = node.lots.get(lot_id)
            if lot is not None:
                shipped = min(lot.units, units) if ship else 0
                node.lots[lot_id] = replace(lot, units=lot.units - shipped, held=lot.held - units)


class _MemoryStage:
    """A snapshot staged in memory: lines are checked and kept here, applied on commit."""

    def __init__(self, store: MemoryStore, version: int) -> None:
        self._store, self._version = store, version
        self._lines: dict[tuple[str, str], SnapshotLine] = {}

    def add(self, lines: Sequence[SnapshotLine]) -> None:
        for line in lines:
            self._lines[line.node_id, line.sku] = line

    def commit(self) -> SnapshotOutcome:
        lines, self._lines = list(self._lines.values()), {}
        return self._store.apply_snapshot(self._version, lines)

    def abort(self) -> None:
        self._lines = {}


def _available(position: _Position) -> int:
    return max(0, position.on_hand - position.reserved - position.safety_stock)
