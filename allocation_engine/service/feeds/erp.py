"""ERP inventory files: stock snapshots, stock deltas and purchase orders, each a CSV file that
is applied whole and once.

Which kind a file is, its header says (see docs/feeds.md):

- snapshot `node_id,sku,on_hand[,safety_stock]`: the whole physical stock of every node it
  names. Each listed position's on_hand is set (safety stock too where given); a position of such
  a node the file leaves out is set to 0 (the ERP no longer counts it). Holds are never touched.
  The snapshot's version is the last run of digits in the file's name (`stock-20261204031500.csv`)
  unless the caller gives one; a file older than the newest snapshot applied is refused.
- delta `node_id,sku,delta,reason`: on_hand movements; rows of one position add up.
- purchase orders `po_id,node_id,sku,units,expected_date`: incoming supply, one lot per
  purchase order and sku (lot id `<po_id>/<sku>`) created or set to the file's units and date
  (0 units cancels the line); the store keeps what is already promised against a lot.

A file is checked whole before anything changes (a bad row refuses it, naming the line, the
field and the value), then applied. Its idempotency key is its SHA-256 (with the version for a
snapshot, so the same counts sent as a newer snapshot still apply): a file applied before is
answered with its first report and changes nothing. Applying is itself safe to repeat, so a
process that crashed half-way is finished by feeding the same file again: the snapshot is staged
and committed as one (a commit cut short is finished by the same version), and deltas and
purchase orders go in chunks whose keys are derived from the file's, which a node that applied
one skips.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass
from datetime import timedelta
from enum import StrEnum
from pathlib import Path

from allocation_engine.engine.limits import MAX_ID_CHARS, MAX_UNITS, MAX_VERSION
from allocation_engine.engine.supply import MAX_SUPPLY_DAYS
from allocation_engine.errors import InvalidInput
from allocation_engine.ports.inventory import (
    Adjustment,
    InventoryStore,
    SnapshotLine,
    SupplyKind,
    SupplyLot,
)
from allocation_engine.service.feeds.table import FileProblems, header_of, read_rows
from allocation_engine.service.inventory import InventoryFeeds
from allocation_engine.service.planner import Planner
from allocation_engine.service.supply import SupplyFeeds

_RowReader = Callable[[Path, "hashlib._Hash", FileProblems, set[tuple[str, str]]], Iterator[object]]
"""A pass over a file's rows: (path, digest, problems, positions seen) -> one item per row."""

CHUNK_POSITIONS = 5_000
"""Positions per staged snapshot chunk and per adjust call."""


class FeedKind(StrEnum):
    SNAPSHOT = "snapshot"
    DELTA = "delta"
    PURCHASE_ORDERS = "purchase_orders"


# kind -> (required columns, optional columns), in the order docs/feeds.md writes them
COLUMNS: dict[FeedKind, tuple[tuple[str, ...], tuple[str, ...]]] = {
    FeedKind.SNAPSHOT: (("node_id", "sku", "on_hand"), ("safety_stock",)),
    FeedKind.DELTA: (("node_id", "sku", "delta", "reason"), ()),
    FeedKind.PURCHASE_ORDERS: (("po_id", "node_id", "sku", "units", "expected_date"), ()),
}


@dataclass(frozen=True)
class FeedReport:
    """What applying one file did. `replayed`: the file had been applied before, and this is
    the report of that first time (nothing changed now)."""

    file: str
    kind: str
    sha256: str
    rows: int
    applied: int  # positions set or moved
    skipped: int = 0  # snapshot positions a newer snapshot had already set
    zeroed: int = 0  # snapshot positions of a named node the file left out
    clamped: int = 0  # deltas cut short at 0 (or at the most units a position holds)
    version: int | None = None
    replayed: bool = False

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> FeedReport:
        return cls(**json.loads(text))


def kind_of(path: Path) -> FeedKind:
    """The kind of ERP file its header names, or InvalidInput saying which headers exist."""
    header = set(header_of(path))
    for kind, (required, optional) in COLUMNS.items():
        if set(required) <= header <= set(required) | set(optional):
            return kind
    known = "; ".join(
        ",".join(required) + "".join(f"[,{c}]" for c in optional)
        for required, optional in COLUMNS.values()
    )
    raise InvalidInput.one("line 1, field header", ",".join(sorted(header)), f"must be {known}")


def version_in_name(path: Path) -> int:
    """The snapshot version a file's name carries: its last run of digits."""
    runs = re.findall(r"[0-9]+", path.stem)
    if not runs or len(runs[-1]) > len(str(MAX_VERSION)) or not 1 <= int(runs[-1]) <= MAX_VERSION:
        raise InvalidInput.one(
            "file",
            path.name,
            f"a snapshot's name must end in its version (1..{MAX_VERSION}), "
            "e.g. stock-20261204031500.csv",
        )
    return int(runs[-1])


class ErpFeeds:
    """Applies ERP files to the inventory (see the module docstring)."""

    def __init__(
        self,
        store: InventoryStore,
        inventory: InventoryFeeds,
        supply: SupplyFeeds,
        planner: Planner,
    ) -> None:
        self._store, self._inventory, self._supply = store, inventory, supply
        self._planner = planner

    def apply(self, path: Path, version: int | None = None) -> FeedReport:
        """Checks `path` whole, then applies it once; `version` overrides a snapshot's name."""
        kind = kind_of(path)
        if kind is FeedKind.SNAPSHOT:
            return self._snapshot(path, version if version is not None else version_in_name(path))
        if kind is FeedKind.DELTA:
            return self._delta(path)
        return self._purchase_orders(path)

    # snapshots

    def _snapshot(self, path: Path, version: int) -> FeedReport:
        if not 1 <= version <= MAX_VERSION:
            raise InvalidInput.one("version", version, f"must be an integer in 1..{MAX_VERSION}")
        sha, rows, listed = self._check(path, FeedKind.SNAPSHOT, self._snapshot_rows)
        key = f"feed:{sha}:v{version}"
        claim = self._store.claim_key(key, sha)
        if claim.result is not None:
            return _replayed(claim.result)
        feed = self._inventory.begin_snapshot(version)
        try:
            digest = hashlib.sha256()
            chunk: list[SnapshotLine] = []
            for line in self._snapshot_rows(path, digest, FileProblems(), set()):
                chunk.append(line)
                if len(chunk) >= CHUNK_POSITIONS:
                    feed.add(chunk)
                    chunk = []
            if chunk:
                feed.add(chunk)
            if digest.hexdigest() != sha:
                raise InvalidInput.one("file", path.name, "changed while it was being applied")
            zeros = [
                SnapshotLine(node_id, level.sku, 0)
                for node_id in sorted({node_id for node_id, _ in listed})
                for level in self._store.node_stock(node_id)
                if (node_id, level.sku) not in listed and level.on_hand != 0
            ]
            for start in range(0, len(zeros), CHUNK_POSITIONS):
                feed.add(zeros[start : start + CHUNK_POSITIONS])
            outcome = feed.commit()
        except BaseException:
            feed.abort()
            raise
        report = FeedReport(
            path.name,
            FeedKind.SNAPSHOT.value,
            sha,
            rows,
            outcome.applied,
            skipped=outcome.skipped,
            zeroed=len(zeros),
            version=version,
        )
        self._store.complete_key(key, report.to_json())
        return report

    def _snapshot_rows(
        self,
        path: Path,
        digest: hashlib._Hash,
        problems: FileProblems,
        listed: set[tuple[str, str]],
    ) -> Iterator[SnapshotLine]:
        """The snapshot lines of a file; `listed` gathers the positions, a repeat a problem."""
        nodes = self._planner.network().index
        required, optional = COLUMNS[FeedKind.SNAPSHOT]
        for line, row in read_rows(path, digest, required, optional, problems):
            node_id = self._node(problems, line, row["node_id"], nodes)
            sku = problems.ident(line, "sku", row["sku"])
            on_hand = problems.integer(line, "on_hand", row["on_hand"], 0, MAX_UNITS)
            safety_text = row.get("safety_stock", "").strip()
            safety = (
                problems.integer(line, "safety_stock", safety_text, 0, MAX_UNITS)
                if safety_text
                else None
            )
            if node_id is not None and sku is not None:
                if (node_id, sku) in listed:
                    problems.at(line, "sku", sku, f"repeats an earlier row of node {node_id}")
                listed.add((node_id, sku))
            if problems.problems:
                if problems.full:
                    return
                continue
            assert node_id is not None and sku is not None and on_hand is not None
            yield SnapshotLine(node_id, sku, on_hand, safety)

    # deltas

    def _delta(self, path: Path) -> FeedReport:
        moves: dict[tuple[str, str], int] = {}
        sha, rows, _ = self._check(
            path, FeedKind.DELTA, lambda p, d, pr, s: self._delta_rows(p, d, pr, moves)
        )
        claim = self._store.claim_key(f"feed:{sha}", sha)
        if claim.result is not None:
            return _replayed(claim.result)
        adjustments = [Adjustment(n, s, delta) for (n, s), delta in moves.items() if delta]
        clamped = 0
        for index, start in enumerate(range(0, len(adjustments), CHUNK_POSITIONS)):
            chunk_key = f"feed:{sha}/{index}"
            outcome = self._inventory.adjust(
                chunk_key, chunk_key, adjustments[start : start + CHUNK_POSITIONS]
            )
            clamped += len(outcome.clamped)
        report = FeedReport(
            path.name, FeedKind.DELTA.value, sha, rows, len(adjustments), clamped=clamped
        )
        self._store.complete_key(f"feed:{sha}", report.to_json())
        return report

    def _delta_rows(
        self,
        path: Path,
        digest: hashlib._Hash,
        problems: FileProblems,
        moves: dict[tuple[str, str], int],
    ) -> Iterator[None]:
        """Checks every delta row and adds it up per position into `moves`."""
        nodes = self._planner.network().index
        required, _ = COLUMNS[FeedKind.DELTA]
        for line, row in read_rows(path, digest, required, (), problems):
            node_id = self._node(problems, line, row["node_id"], nodes)
            sku = problems.ident(line, "sku", row["sku"])
            delta = problems.integer(line, "delta", row["delta"], -MAX_UNITS, MAX_UNITS)
            problems.text(line, "reason", row["reason"])
            if node_id is not None and sku is not None and delta is not None:
                total = moves.get((node_id, sku), 0) + delta
                if abs(total) > MAX_UNITS:
                    problems.at(
                        line,
                        "delta",
                        row["delta"].strip(),
                        f"brings the position's total movement past {MAX_UNITS} units",
                    )
                moves[(node_id, sku)] = total
            if problems.full:
                return
            yield None

    # purchase orders

    def _purchase_orders(self, path: Path) -> FeedReport:
        lots: list[SupplyLot] = []
        sha, rows, _ = self._check(
            path,
            FeedKind.PURCHASE_ORDERS,
            lambda p, d, pr, s: self._purchase_order_rows(p, d, pr, s, lots),
        )
        claim = self._store.claim_key(f"feed:{sha}", sha)
        if claim.result is not None:
            return _replayed(claim.result)
        for index, start in enumerate(range(0, len(lots), CHUNK_POSITIONS)):
            chunk_key = f"feed:{sha}/{index}"
            self._supply.put(chunk_key, chunk_key, lots[start : start + CHUNK_POSITIONS])
        report = FeedReport(path.name, FeedKind.PURCHASE_ORDERS.value, sha, rows, len(lots))
        self._store.complete_key(f"feed:{sha}", report.to_json())
        return report

    def _purchase_order_rows(
        self,
        path: Path,
        digest: hashlib._Hash,
        problems: FileProblems,
        seen: set[tuple[str, str]],
        lots: list[SupplyLot],
    ) -> Iterator[None]:
        """Checks every purchase-order row into `lots` (one lot per po_id and sku, its id
        `<po_id>/<sku>`); a po_id and sku twice, or a date past the horizon, is a problem."""
        nodes = self._planner.network().index
        last = self._planner.today() + timedelta(days=MAX_SUPPLY_DAYS)
        required, _ = COLUMNS[FeedKind.PURCHASE_ORDERS]
        for line, row in read_rows(path, digest, required, (), problems):
            po_id = problems.ident(line, "po_id", row["po_id"])
            node_id = self._node(problems, line, row["node_id"], nodes)
            sku = problems.ident(line, "sku", row["sku"])
            units = problems.integer(line, "units", row["units"], 0, MAX_UNITS)
            expected = problems.date(line, "expected_date", row["expected_date"])
            if expected is not None and expected > last:
                problems.at(
                    line,
                    "expected_date",
                    row["expected_date"].strip(),
                    f"must be at most {MAX_SUPPLY_DAYS} days from today",
                )
            if po_id is not None and sku is not None:
                if (po_id, sku) in seen:
                    problems.at(line, "sku", sku, f"repeats an earlier row of {po_id}")
                elif len(po_id) + 1 + len(sku) > MAX_ID_CHARS:
                    problems.at(
                        line,
                        "po_id",
                        po_id,
                        f"with the sku must be at most {MAX_ID_CHARS - 1} chars",
                    )
                seen.add((po_id, sku))
            if problems.full:
                return
            if not problems.problems:
                assert po_id and node_id and sku and units is not None and expected is not None
                lots.append(
                    SupplyLot(f"{po_id}/{sku}", node_id, sku, units, expected, SupplyKind.PO)
                )
            yield None

    # shared

    def _check(
        self, path: Path, kind: FeedKind, rows: _RowReader
    ) -> tuple[str, int, set[tuple[str, str]]]:
        """Reads the whole file once: its SHA-256, its row count and the positions it lists;
        InvalidInput with every problem found (up to MAX_PROBLEMS) when any row is bad."""
        digest = hashlib.sha256()
        problems = FileProblems()
        listed: set[tuple[str, str]] = set()
        count = sum(1 for _ in rows(path, digest, problems, listed))
        problems.raise_if_any()
        if count == 0:
            raise InvalidInput.one("file", path.name, f"holds no rows of a {kind} file")
        return digest.hexdigest(), count, listed

    @staticmethod
    def _node(problems: FileProblems, line: int, text: str, nodes: Mapping[str, int]) -> str | None:
        """A node id of the network."""
        node_id = problems.ident(line, "node_id", text)
        if node_id is not None and node_id not in nodes:
            problems.at(line, "node_id", node_id, "is not a node of the network")
            return None
        return node_id


def _replayed(result: str) -> FeedReport:
    first = FeedReport.from_json(result)
    return FeedReport(**{**asdict(first), "replayed": True})
