"""Inventory feeds: the network of nodes, snapshots, adjustments, and availability reads.

Every write is checked as a whole before the store sees it, and every problem is reported with
the field that holds it, so a bad feed changes nothing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence

from allocation_engine.engine import InvalidInput, Network, Node
from allocation_engine.errors import ProblemCollector
from allocation_engine.ports.inventory import (
    Adjustment,
    AdjustOutcome,
    InventoryStore,
    Level,
    NetworkRecord,
    SnapshotLine,
    SnapshotOutcome,
    StagedSnapshot,
)
from allocation_engine.service.planner import Planner

# Ids travel inside bulk arguments with control characters as separators (see redis_store.py).
CONTROL = re.compile(r"[\x00-\x1f]")


class InventoryFeeds:
    def __init__(self, store: InventoryStore, planner: Planner) -> None:
        self._store = store
        self._planner = planner

    def upsert_nodes(self, key: str, fingerprint: str, nodes: Sequence[Node]) -> int:
        """Adds or replaces nodes; returns the network version. Idempotent by key."""
        require_key(key)
        if not nodes:
            raise InvalidInput.one("nodes", [], "at least one node is required")
        Network.of(nodes)  # refuses duplicate ids within the request
        problems = ProblemCollector()
        for i, node in enumerate(nodes):
            if CONTROL.search(node.id):
                problems.add(f"nodes[{i}].id", node.id, "must not hold control characters")
        problems.raise_if_any()
        claim = self._store.claim_key(f"upsert_nodes:{key}", fingerprint)
        if claim.result is not None:
            return int(claim.result)
        version = self._store.upsert_nodes(nodes)
        self._store.complete_key(f"upsert_nodes:{key}", str(version))
        return version

    def nodes(self) -> NetworkRecord:
        return self._store.load_nodes()

    def begin_snapshot(self, version: int) -> SnapshotFeed:
        """A snapshot streamed in chunks that changes nothing until its end: each chunk is
        checked and staged in the store (`add`), and only `commit` applies them (node by node:
        a commit cut short by a crash is finished by sending the same version again); a stream
        refused anywhere (a bad chunk, another version, an unknown node, a cancelled call) is
        `abort`ed and leaves stock exactly as it was. An older version is refused at once."""
        self._check_snapshot(version, ())
        return SnapshotFeed(self, version, self._store.stage_snapshot(version))

    def _check_snapshot(self, version: int, lines: Sequence[SnapshotLine]) -> None:
        problems = ProblemCollector()
        if not isinstance(version, int) or version < 1:
            problems.add("version", version, "must be an integer >= 1")
        self._check_positions(
            problems,
            "positions",
            ((line.node_id, line.sku) for line in lines),
        )
        for i, line in enumerate(lines):
            if line.on_hand < 0:
                problems.add(f"positions[{i}].on_hand", line.on_hand, "must be >= 0")
            if line.safety_stock is not None and line.safety_stock < 0:
                problems.add(f"positions[{i}].safety_stock", line.safety_stock, "must be >= 0")
        problems.raise_if_any()

    def adjust(
        self, key: str, fingerprint: str, adjustments: Sequence[Adjustment]
    ) -> AdjustOutcome:
        """Applies on_hand deltas once per key; a retry answers as the first call did."""
        require_key(key)
        problems = ProblemCollector()
        if not adjustments:
            problems.add("adjustments", [], "at least one adjustment is required")
        self._check_positions(problems, "adjustments", ((a.node_id, a.sku) for a in adjustments))
        for i, a in enumerate(adjustments):
            if a.safety_stock is not None and a.safety_stock < 0:
                problems.add(f"adjustments[{i}].safety_stock", a.safety_stock, "must be >= 0")
        problems.raise_if_any()
        claim = self._store.claim_key(f"adjust:{key}", fingerprint)
        if claim.result is not None:
            return _outcome_from_json(claim.result)
        outcome = self._store.adjust(key, adjustments)
        self._store.complete_key(f"adjust:{key}", _outcome_to_json(outcome))
        return outcome

    def availability(
        self, skus: Sequence[str], node_ids: Sequence[str] = ()
    ) -> Mapping[str, Sequence[Level]]:
        """Positions per sku across nodes (only `node_ids` when given), overdue holds swept."""
        problems = ProblemCollector()
        if not skus:
            problems.add("skus", [], "at least one sku is required")
        for i, sku in enumerate(skus):
            if not sku:
                problems.add(f"skus[{i}]", sku, "must be a non-empty string")
        problems.raise_if_any()
        read = self._planner.read(list(dict.fromkeys(skus)))
        wanted = set(node_ids)
        return {
            sku: [lv for lv in levels if not wanted or lv.node_id in wanted]
            for sku, levels in read.levels.items()
        }

    def _check_positions(
        self, problems: ProblemCollector, field: str, positions: Iterable[tuple[str, str]]
    ) -> None:
        """Known node, non-empty sku without control characters, no position twice. A snapshot
        chunk holds thousands of positions, so the common all-good case is checked in bulk."""
        pairs = list(positions)
        index = self._planner.network().index
        if (
            {node_id for node_id, _ in pairs} <= index.keys()
            and len(set(pairs)) == len(pairs)
            and all(sku for _, sku in pairs)
            and not CONTROL.search("".join(sku for _, sku in pairs))
        ):
            return
        seen: set[tuple[str, str]] = set()
        for i, (node_id, sku) in enumerate(pairs):
            if node_id not in index:
                problems.add(f"{field}[{i}].node_id", node_id, "unknown node")
            if not sku or CONTROL.search(sku):
                problems.add(
                    f"{field}[{i}].sku",
                    sku,
                    "must be a non-empty string without control characters",
                )
            if (node_id, sku) in seen:
                problems.add(f"{field}[{i}]", f"{node_id}/{sku}", "repeats an earlier position")
            seen.add((node_id, sku))


class SnapshotFeed:
    """One snapshot stream being staged (see `InventoryFeeds.begin_snapshot`)."""

    def __init__(self, feeds: InventoryFeeds, version: int, staged: StagedSnapshot) -> None:
        self._feeds, self.version, self._staged = feeds, version, staged

    def add(self, lines: Sequence[SnapshotLine]) -> None:
        """Checks one chunk whole (fields named within it) and stages it."""
        self._feeds._check_snapshot(self.version, lines)
        self._staged.add(lines)

    def commit(self) -> SnapshotOutcome:
        """Applies every staged chunk; a newer snapshot applied meanwhile refuses it whole."""
        return self._staged.commit()

    def abort(self) -> None:
        """Drops what was staged; stock stays as it was."""
        self._staged.abort()


def require_key(key: str) -> None:
    if not key:
        raise InvalidInput.one("idempotency_key", key, "is required")


def _outcome_to_json(outcome: AdjustOutcome) -> str:
    return json.dumps(
        {
            "levels": [list(level) for level in outcome.levels],
            "clamped": [
                [a.node_id, a.sku, a.on_hand_delta, a.safety_stock] for a in outcome.clamped
            ],
        }
    )


def _outcome_from_json(text: str) -> AdjustOutcome:
    data = json.loads(text)
    return AdjustOutcome(
        tuple(Level(*level) for level in data["levels"]),
        tuple(Adjustment(*a) for a in data["clamped"]),
    )
