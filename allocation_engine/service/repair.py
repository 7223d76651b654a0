"""Repair: finds what a crash left half-done in the inventory store and finishes it.

A SIGKILL of a server process can stop a reservation between its steps (see `expiry.py` and
`reservations.py`). A retry with the same key finishes its own reservation, and every sweep
finishes releases a crash cut short; `repair` is the sweep of everything, for an operator
(`allocation-engine repair --redis-url ...`) or a schedule:

1. every reservation due to the sweeper is settled: RELEASING ones are finished (holds given
   back, record final), overdue HELD/PENDING ones expired;
2. every hold at every node of the network is checked against its reservation: a hold whose
   reservation is settled (released, expired, fulfilled, failed) or missing is given back, as
   is a hold of a HELD or COMMITTED reservation at a node its plan does not ship from; a hold
   of a PENDING reservation is left to the call taking it (or to its takeover and expiry);
3. every node's planning views are reconciled with the per-node authority (on Redis Cluster
   the views are written in a second step that a crash can cut off).

Each fix is one of the idempotent store operations the services use, so running repair twice,
or while servers serve, changes nothing more: a second run finds nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from allocation_engine.ports.inventory import (
    OPEN_STATES,
    InventoryStore,
    ReservationState,
)
from allocation_engine.service.expiry import expire, finish, is_overdue

DUE_BATCH = 1000


@dataclass(frozen=True)
class FreedHold:
    node_id: str
    reservation_id: str
    units: int
    why: str  # "missing", the reservation's state, or "not in plan"


@dataclass
class RepairReport:
    """What one run fixed."""

    releases_finished: list[str] = field(default_factory=list)
    expired: list[str] = field(default_factory=list)
    holds_freed: list[FreedHold] = field(default_factory=list)
    views_fixed: int = 0
    nodes: int = 0

    @property
    def fixed(self) -> int:
        return (
            len(self.releases_finished)
            + len(self.expired)
            + len(self.holds_freed)
            + self.views_fixed
        )


def repair(store: InventoryStore, now: float) -> RepairReport:
    """Finds and fixes what crashes left behind; see the module docstring."""
    report = RepairReport()
    _settle_due(store, now, report)
    for node in store.load_nodes().nodes:
        report.nodes += 1
        for hold in store.node_holds(node.id):
            record = store.get_reservation(hold.reservation_id)
            why = None
            if record is None:
                why = "missing"
            elif record.state is ReservationState.RELEASING:
                finish(store, record)
                report.releases_finished.append(record.id)
                continue
            elif record.state not in OPEN_STATES:
                why = record.state.value
            elif record.state is not ReservationState.PENDING and node.id not in record.holds:
                why = "not in plan"
            if why is not None:
                store.release([node.id], hold.reservation_id, {node.id: list(hold.lines)})
                report.holds_freed.append(
                    FreedHold(node.id, hold.reservation_id, sum(hold.lines.values()), why)
                )
        report.views_fixed += store.reconcile_views(node.id)
    return report


def _settle_due(store: InventoryStore, now: float, report: RepairReport) -> None:
    seen: set[str] = set()
    while True:
        due = [rid for rid in store.due_reservations(now, DUE_BATCH) if rid not in seen]
        if not due:
            return
        for rid in due:
            seen.add(rid)
            record = store.get_reservation(rid)
            if record is None:
                continue
            if record.state is ReservationState.RELEASING:
                finish(store, record)
                report.releases_finished.append(rid)
            elif is_overdue(record, now):
                expire(store, record, now)
                report.expired.append(rid)
