"""The inventory port: what the services need from a stock store, and the records it carries.

`InventoryStore` is the one protocol both stores implement (`adapters/memory/inventory.py` in
process, `adapters/redis/inventory.py` shared by every server process), held to the same
promises by one test suite (tests/adapters/test_store.py). It keeps the network, the rules,
stock positions per (node, sku), holds per reservation and node, reservation records and
idempotency keys. The services above it (`service/reservations.py`, `service/expiry.py`) are
written against this module only, so the vocabulary they share with the stores lives here too:
the reservation states and which of them still hold stock (`OPEN_STATES`) or still expire
(`EXPIRING_STATES`).

Node capacity. `Node.capacity` is the number of shipments a node can send per **UTC day**: every
hold a reservation takes at a node spends one shipment of the UTC day of the hold (the store
keeps a counter per node and day, moved in the same atomic step as the hold), a release or an
expiry gives it back to that day (a hold taken yesterday and released today gives nothing back to
today), and a fulfilment keeps it spent. A hold that would spend more shipments than the node has
that day is refused like one short of stock (`HoldOutcome.no_capacity`), and every planning read
reports the shipments each node has spent today (`StockRead.shipments`), so the planner fences a
node whose day is full. The count starts at 0 at each UTC midnight.

Crash safety. Every change of holds is one atomic step per node, and on a single Redis the
per-sku view changes in that same step. Ending a reservation is three steps that each survive a
crash: the record goes to RELEASING (saying what it ends as), the holds are given back, the
record goes to RELEASED or EXPIRED; whoever next touches a RELEASING record (a retry, a read, the
sweeper, `allocation-engine repair`) finishes it.

Incoming supply. A purchase order or transfer line on its way to a node is a `SupplyLot`, kept
with the node's stock (in Redis in the node's hash slot), so one atomic step at a node can hold
shelf units and lot units together. A hold's `lots` (lot id -> units) are refused like shelf
units when the lot has fewer units not yet held (a PO is never oversold); release, expiry and
fulfil give them back the same way (fulfil takes them off the lot, as shipping takes units off
on_hand). Receiving a lot puts its units on the shelf and turns the holds against it into shelf
holds, earliest hold first; revising it (late, or cut) reports the reservations whose promise no
longer holds. Lots keep their expected DATE; the planner turns it into the engine's day.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
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

    `expiry_due` is true when some reservation is past its `expires_at` but not yet swept (or
    its release was cut short), so the caller sweeps and reads again before trusting `levels`.
    `shipments` is node id -> shipments spent today (UTC) by holds, for nodes that spent any.
    """

    levels: Mapping[str, Sequence[Level]]
    nodes_version: int
    rules_revision: int
    expiry_due: bool
    shipments: Mapping[str, int] = field(default_factory=dict)


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
    clamped: tuple[Adjustment, ...]  # deltas cut short: on_hand stays within 0..MAX_UNITS


@dataclass(frozen=True)
class Hold:
    """Units of one reservation held at one node; `expires_at` None = held until shipped.

    `lines` are shelf units per sku, `lots` units held against incoming lots of the node (lot
    id -> units). `capacity` is the node's shipments per UTC day (None = unlimited): the hold is
    refused when the node has spent them all today."""

    node_id: str
    reservation_id: str
    lines: Mapping[str, int]
    expires_at: float | None
    capacity: int | None = None
    lots: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class HoldOutcome:
    """Whether a hold was taken; `levels` are the node's positions of the hold's skus after it
    (or, when refused, as they are: what the planner should have seen), `lots_free` the units
    not yet held of each lot the hold asked for, likewise (0 for a lot the node does not have)."""

    held: bool
    levels: tuple[Level, ...]
    no_capacity: bool = False  # refused because the node spent its shipments of the day
    lots_free: Mapping[str, int] = field(default_factory=dict)


class SupplyKind(StrEnum):
    PO = "po"  # a purchase order line from a supplier
    TRANSFER = "transfer"  # stock moving from another node of the network


@dataclass(frozen=True)
class SupplyLot:
    """`units` of `sku` still expected at `node_id` on `expected`; `held` of them are promised
    to reservations (never more than `units`, unless a revision cut the lot below its holds)."""

    id: str
    node_id: str
    sku: str
    units: int
    expected: date
    kind: SupplyKind = SupplyKind.PO
    held: int = 0

    @property
    def free(self) -> int:
        """Units of the lot a new hold may still take."""
        return max(0, self.units - self.held)


# How both stores refuse a lot in put_supply (a field `lots[i].id` / `lots[i].units`).
LOT_OF_OTHER = "is a lot of node {} and sku {}"
LOT_BELOW_HELD = "lot {} has {} units held against it; its units cannot go below them"


@dataclass(frozen=True)
class ReceiveOutcome:
    """What receiving a lot did: the node's position of its sku after it, the lot as it stands
    (None when fully received), the reservations that held the lot in promise order (earliest
    hold first) and those of them now fully on the shelf (holding no lot units any more)."""

    level: Level
    lot: SupplyLot | None
    reservations: tuple[str, ...]
    on_shelf: tuple[str, ...]


@dataclass(frozen=True)
class ReviseOutcome:
    """The lot after a revision and the reservations whose promise no longer holds (in promise
    order): held beyond the new units, or promised before the new date."""

    lot: SupplyLot
    broken: tuple[str, ...]


class ReservationState(StrEnum):
    PENDING = "PENDING"  # holds are being taken
    HELD = "HELD"
    COMMITTED = "COMMITTED"
    RELEASED = "RELEASED"
    EXPIRED = "EXPIRED"
    FULFILLED = "FULFILLED"
    FAILED = "FAILED"  # not enough stock; a retry with the same key gets the same shortfalls
    # Being ended: its holds are being given back; `release_as` says what it ends as (RELEASED
    # or EXPIRED). Never answered to a caller: whoever reads it finishes the release first.
    RELEASING = "RELEASING"


# The states of a reservation that still holds (or is taking) stock at its nodes; release gives
# that stock back. The others are final: nothing of them is held any more (or ever was).
OPEN_STATES: frozenset[ReservationState] = frozenset(
    {
        ReservationState.PENDING,
        ReservationState.HELD,
        ReservationState.COMMITTED,
        ReservationState.RELEASING,
    }
)
# The open states whose holds still run out at `expires_at` (COMMITTED pinned its holds): a
# reservation in one of them past its expiry is due to be swept to EXPIRED.
EXPIRING_STATES: frozenset[ReservationState] = OPEN_STATES - {
    ReservationState.COMMITTED,
    ReservationState.RELEASING,
}
# What the sweeper settles: overdue expiring reservations, and releases a crash cut short (a
# RELEASING record is due at once: stores schedule it at time 0).
SWEPT_STATES: frozenset[ReservationState] = EXPIRING_STATES | {ReservationState.RELEASING}
# The final states a release ends in.
RELEASED_STATES: frozenset[ReservationState] = frozenset(
    {ReservationState.RELEASED, ReservationState.EXPIRED}
)


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
    release_as: ReservationState | None = None  # set while RELEASING: RELEASED or EXPIRED

    @property
    def holds(self) -> dict[str, dict[str, int]]:
        """node id -> sku -> shelf units, as the plan draws them (a shipment's units taken from
        incoming lots are in `lot_holds`; a node holding lot units only maps to no skus)."""
        out: dict[str, dict[str, int]] = {}
        if self.plan is not None:
            for shipment in self.plan.shipments:
                lines = out.setdefault(shipment.node_id, {})
                for line in shipment.lines:
                    lines[line.sku] = lines.get(line.sku, 0) + line.quantity
                for take in shipment.lots:
                    lines[take.sku] -= take.units
                    if not lines[take.sku]:
                        del lines[take.sku]
        return out

    @property
    def lot_holds(self) -> dict[str, dict[str, int]]:
        """node id -> lot id -> units the plan takes from incoming lots (nodes with some)."""
        out: dict[str, dict[str, int]] = {}
        if self.plan is not None:
            for shipment in self.plan.shipments:
                for take in shipment.lots:
                    lots = out.setdefault(shipment.node_id, {})
                    lots[take.lot_id] = lots.get(take.lot_id, 0) + take.units
        return out


class StagedSnapshot(Protocol):
    """A snapshot being streamed in: lines are staged in the store (not in the server process)
    and nothing of them is visible until `commit`; `abort` (or a crash, after the store's
    staging retention) leaves stock exactly as it was."""

    def add(self, lines: Sequence[SnapshotLine]) -> None: ...

    def commit(self) -> SnapshotOutcome: ...

    def abort(self) -> None: ...


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

    def stage_snapshot(self, version: int) -> StagedSnapshot:
        """Starts staging snapshot `version` (VersionConflict at once when a newer one was
        applied). Its lines change nothing until commit, which admits the version again (a
        newer snapshot committed meanwhile refuses it) and then applies them node by node."""
        ...

    def adjust(self, key: str, adjustments: Sequence[Adjustment]) -> AdjustOutcome:
        """Applies on_hand deltas; a node that already applied `key` skips it. on_hand stays
        within 0..MAX_UNITS; a delta cut short there is reported in `clamped`."""
        ...

    # holds (each idempotent per reservation id and node)
    def hold(self, holds: Sequence[Hold], now: float) -> list[HoldOutcome]:
        """Takes each hold atomically at its node if every line is available, else refuses it.
        Holds past their expiry at a node stop counting first. A hold of the same reservation
        already at the node counts as held when its lines are the same (a retry), and is
        refused when they differ (a stale hold of an overtaken call: the saga gives it back)."""
        ...

    def release(
        self,
        node_ids: Sequence[str],
        reservation_id: str,
        expected: Mapping[str, Iterable[str]] | None = None,
    ) -> None:
        """Gives the reservation's holds at `node_ids` back (and their shipments of the day).
        `expected` (node id -> the skus the caller thinks the hold has) only saves round trips;
        the hold as stored is what is given back."""
        ...

    def pin(self, node_ids: Sequence[str], reservation_id: str, now: float) -> list[bool]:
        """Makes unexpired holds permanent (commit); False where the hold is gone or expired."""
        ...

    def fulfil(
        self,
        node_ids: Sequence[str],
        reservation_id: str,
        expected: Mapping[str, Iterable[str]] | None = None,
    ) -> None:
        """The shipment left: the held units leave on_hand and reserved together (its shipment
        stays spent). `expected` as for `release`."""
        ...

    def node_holds(self, node_id: str) -> tuple[Hold, ...]:
        """Every hold at one node, unexpired or not (for the repair audit)."""
        ...

    def reconcile_views(self, node_id: str) -> int:
        """Rewrites the planning view of every position of the node that disagrees with the
        per-node authority; returns how many it rewrote (0 where there is one layout only)."""
        ...

    # incoming supply (lots live with their node's stock; see the module docstring)
    def put_supply(self, key: str, lots: Sequence[SupplyLot]) -> tuple[SupplyLot, ...]:
        """Creates lots or sets their units, date and kind (`held` is the store's own); a node
        that already applied `key` skips it. Refuses (InvalidInput naming `lots[i]`, changing
        nothing at that node) a lot whose units would go below what is held against it, or whose
        id is a lot of another node or sku. Returns the lots as stored."""
        ...

    def list_supply(
        self, skus: Sequence[str] | None = None, node_id: str | None = None
    ) -> tuple[SupplyLot, ...]:
        """Lots not yet fully received (of `skus`, at `node_id`, when given), by node and id."""
        ...

    def receive_supply(self, key: str, lot_id: str, units: int, now: float) -> ReceiveOutcome:
        """`units` of the lot arrived: they go on_hand at its node, the rest stays expected, and
        holds against it become shelf holds (earliest hold first; holds past their expiry get
        none). A repeat of `key` at the node answers as the first call and changes nothing.
        NotFound for an unknown lot."""
        ...

    def revise_supply(
        self, key: str, lot_id: str, units: int | None = None, expected: date | None = None
    ) -> ReviseOutcome:
        """Sets the lot's units (may go below its holds) and/or expected date; answers the
        reservations whose promise no longer holds. A repeat of `key` answers as the first
        call. NotFound for an unknown lot."""
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
        """Ids of reservations whose expires_at has passed and that may still hold stock, and
        of RELEASING ones (due at once)."""
        ...

    # idempotency keys
    def claim_key(self, key: str, fingerprint: str) -> KeyClaim:
        """Claims `key` for a request; the same key with another fingerprint is a conflict."""
        ...

    def complete_key(self, key: str, result: str) -> None: ...

    def ping(self) -> None:
        """Raises StoreUnavailable when the store cannot be reached."""
        ...
