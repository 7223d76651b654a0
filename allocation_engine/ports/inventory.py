"""The inventory port: what the services need from a stock store, and the records it carries.

`InventoryStore` is the one protocol both stores implement (`adapters/memory/inventory.py` in
process, `adapters/redis/inventory.py` shared by every server process), held to the same
promises by one test suite (tests/adapters/test_store.py). It keeps the network, the rules,
stock positions per (node, sku), holds per reservation and node, reservation records and
idempotency keys. The services above it (`service/reservations.py`, `service/expiry.py`) are
written against this module only, so the vocabulary they share with the stores lives here too:
the reservation states and which of them still hold stock (`OPEN_STATES`) or still expire
(`EXPIRING_STATES`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import NamedTuple, Protocol

from allocation_engine.engine.network import Node
from allocation_engine.engine.plan import Plan
from allocation_engine.errors import Shortfall


class Level(NamedTuple):
    """One (node, sku) position as stored. `reserved` counts unexpired holds only."""

    node_id: str
    sku: str
    on_hand: int
    reserved: int
    safety_stock: int

    @property
    def available(self) -> int:
        return max(0, self.on_hand - self.reserved - self.safety_stock)


@dataclass(frozen=True)
class StockRead:
    """What one planning read returns: the positions of the asked skus and the versions that
    tell the caller whether its cached network and rules are still current.

    `expiry_due` is true when some reservation is past its `expires_at` but not yet swept, so
    the caller sweeps and reads again before trusting `levels`.
    """

    levels: Mapping[str, Sequence[Level]]
    nodes_version: int
    rules_revision: int
    expiry_due: bool


@dataclass(frozen=True)
class SnapshotLine:
    """Physical stock of one position, as an ERP or WMS counted it (safety None = keep)."""

    node_id: str
    sku: str
    on_hand: int
    safety_stock: int | None = None


@dataclass(frozen=True)
class SnapshotOutcome:
    applied: int
    skipped: int  # a newer snapshot had already set these positions


@dataclass(frozen=True)
class Adjustment:
    """An on_hand delta for one position (safety_stock set = replace it)."""

    node_id: str
    sku: str
    on_hand_delta: int
    safety_stock: int | None = None


@dataclass(frozen=True)
class AdjustOutcome:
    levels: tuple[Level, ...]
    clamped: tuple[Adjustment, ...]  # deltas cut short because on_hand cannot go below 0


@dataclass(frozen=True)
class Hold:
    """Units of one reservation held at one node; `expires_at` None = held until shipped."""

    node_id: str
    reservation_id: str
    lines: Mapping[str, int]
    expires_at: float | None


@dataclass(frozen=True)
class HoldOutcome:
    """Whether a hold was taken; `levels` are the node's positions of the hold's skus after it
    (or, when refused, as they are: what the planner should have seen)."""

    held: bool
    levels: tuple[Level, ...]


class ReservationState(StrEnum):
    PENDING = "PENDING"  # holds are being taken
    HELD = "HELD"
    COMMITTED = "COMMITTED"
    RELEASED = "RELEASED"
    EXPIRED = "EXPIRED"
    FULFILLED = "FULFILLED"
    FAILED = "FAILED"  # not enough stock; a retry with the same key gets the same shortfalls


# The states of a reservation that still holds (or is taking) stock at its nodes; release gives
# that stock back. The others are final: nothing of them is held any more (or ever was).
OPEN_STATES: frozenset[ReservationState] = frozenset(
    {ReservationState.PENDING, ReservationState.HELD, ReservationState.COMMITTED}
)
# The open states whose holds still run out at `expires_at` (COMMITTED pinned its holds): a
# reservation in one of them past its expiry is due to be swept to EXPIRED.
EXPIRING_STATES: frozenset[ReservationState] = OPEN_STATES - {ReservationState.COMMITTED}


@dataclass(frozen=True)
class ReservationRecord:
    """A reservation as the store keeps it. `attempt` counts plans tried; `owner` and
    `lease_until` say which call is taking the holds, so a retry can tell a live call from one
    that crashed."""

    id: str
    idempotency_key: str
    fingerprint: str
    order_id: str
    state: ReservationState
    created_at: float
    expires_at: float
    attempt: int = 0
    plan: Plan | None = None
    shortfalls: tuple[Shortfall, ...] = ()
    owner: str = ""
    lease_until: float = 0.0

    @property
    def holds(self) -> dict[str, dict[str, int]]:
        """node id -> sku -> units, as the plan draws them."""
        out: dict[str, dict[str, int]] = {}
        if self.plan is not None:
            for shipment in self.plan.shipments:
                lines = out.setdefault(shipment.node_id, {})
                for line in shipment.lines:
                    lines[line.sku] = lines.get(line.sku, 0) + line.quantity
        return out


@dataclass(frozen=True)
class StoredRules:
    revision: int
    text: str


@dataclass(frozen=True)
class KeyClaim:
    """The state of an idempotency key: new (claimed now), or seen, with the first result when
    that call finished."""

    new: bool
    result: str | None = None


@dataclass(frozen=True)
class NetworkRecord:
    version: int
    nodes: tuple[Node, ...] = field(default=())


class InventoryStore(Protocol):
    """Nodes, stock, holds, reservations, rules and idempotency keys. See the module docstring."""

    # network
    def upsert_nodes(self, nodes: Sequence[Node]) -> int:
        """Adds or replaces nodes by id; returns the new network version."""
        ...

    def load_nodes(self) -> NetworkRecord: ...

    # rules
    def get_rules(self) -> StoredRules | None: ...

    def put_rules(self, text: str, expected_revision: int | None = None) -> int:
        """Publishes a rule set; returns its revision. A stale expected_revision is a conflict."""
        ...

    # stock
    def stock(self, skus: Sequence[str], now: float) -> StockRead:
        """Every position of `skus` (nodes that hold none are left out), in one round trip."""
        ...

    def node_stock(self, node_id: str) -> tuple[Level, ...]:
        """Every position of one node, from the per-node authority (for audits and tests)."""
        ...

    def apply_snapshot(self, version: int, lines: Sequence[SnapshotLine]) -> SnapshotOutcome:
        """Sets on_hand (and safety stock where given); never touches holds. A version older
        than the newest one applied raises VersionConflict and changes nothing."""
        ...

    def adjust(self, key: str, adjustments: Sequence[Adjustment]) -> AdjustOutcome:
        """Applies on_hand deltas; a node that already applied `key` skips it."""
        ...

    # holds (each idempotent per reservation id and node)
    def hold(self, holds: Sequence[Hold], now: float) -> list[HoldOutcome]:
        """Takes each hold atomically at its node if every line is available, else refuses it.
        Holds past their expiry at a node stop counting first."""
        ...

    def release(self, node_ids: Sequence[str], reservation_id: str) -> None: ...

    def pin(self, node_ids: Sequence[str], reservation_id: str, now: float) -> list[bool]:
        """Makes unexpired holds permanent (commit); False where the hold is gone or expired."""
        ...

    def fulfil(self, node_ids: Sequence[str], reservation_id: str) -> None:
        """The shipment left: the held units leave on_hand and reserved together."""
        ...

    # reservation records
    def create_reservation(self, record: ReservationRecord) -> ReservationRecord:
        """Stores `record` unless one with its id exists; returns whichever is stored."""
        ...

    def get_reservation(self, reservation_id: str) -> ReservationRecord | None: ...

    def replace_reservation(
        self, record: ReservationRecord, expected: ReservationState, expected_attempt: int
    ) -> bool:
        """Compare-and-set: replaces the record if its state and attempt are as expected."""
        ...

    def due_reservations(self, now: float, limit: int) -> list[str]:
        """Ids of reservations whose expires_at has passed and that may still hold stock."""
        ...

    # idempotency keys
    def claim_key(self, key: str, fingerprint: str) -> KeyClaim:
        """Claims `key` for a request; the same key with another fingerprint is a conflict."""
        ...

    def complete_key(self, key: str, result: str) -> None: ...

    def ping(self) -> None:
        """Raises StoreUnavailable when the store cannot be reached."""
        ...
