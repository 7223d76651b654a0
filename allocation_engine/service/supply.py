"""Incoming supply: purchase order and transfer lines on their way to nodes, and what can be
promised by when.

The ERP feeds lots in (`put`), the WMS says when they arrive (`receive`: the units go on the
shelf and the reservations that held them now hold shelf stock) or that they are late or cut
(`revise`: the answer names the reservations whose promise no longer holds, for the caller to
re-plan or tell the customer). `available_to_promise` is what a shop shows as "ships by": per node,
the units promisable by each date, on-hand available first, then the free units of each lot on
its expected date. Every write is checked whole before the store sees it, and every problem is
reported with the field that holds it; each is idempotent by key, a key reused for another
request is a conflict.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, timedelta

from allocation_engine.engine.limits import MAX_UNITS
from allocation_engine.engine.supply import MAX_SUPPLY_DAYS
from allocation_engine.errors import ProblemCollector
from allocation_engine.ports.inventory import (
    InventoryStore,
    ReceiveOutcome,
    ReviseOutcome,
    SupplyLot,
)
from allocation_engine.service.inventory import CONTROL, require_key
from allocation_engine.service.planner import Planner

SupplyListener = Callable[[Sequence[str], str, bool], None]
"""Hears (reservation ids in promise order, the receipt's or revision's key, whether their
promise broke) after a receipt or a revision: the order workflow releases, re-promises or
reroutes the parcels they hold. It runs before the call answers, so a caller that retries a
call it got no answer for (the receipt is idempotent: it answers the same) is heard again."""


class SupplyFeeds:
    def __init__(
        self,
        store: InventoryStore,
        planner: Planner,
        listeners: Sequence[SupplyListener] = (),
    ) -> None:
        self._store = store
        self._planner = planner
        self._listeners = tuple(listeners)

    def put(self, key: str, fingerprint: str, lots: Sequence[SupplyLot]) -> tuple[SupplyLot, ...]:
        """Creates lots or sets their units, date and kind; returns them as stored (with the
        units held against them). A lot's units may not go below what is held of it."""
        require_key(key)
        problems = ProblemCollector()
        if not lots:
            problems.add("lots", [], "at least one lot is required")
        index = self._planner.network().index
        seen: set[str] = set()
        for i, lot in enumerate(lots):
            _check_id(problems, f"lots[{i}].id", lot.id)
            _check_id(problems, f"lots[{i}].sku", lot.sku)
            if lot.node_id not in index:
                problems.add(f"lots[{i}].node_id", lot.node_id, "unknown node")
            if lot.id in seen:
                problems.add(f"lots[{i}].id", lot.id, "repeats an earlier lot")
            seen.add(lot.id)
            _check_units(problems, f"lots[{i}].units", lot.units)
            self._check_date(problems, f"lots[{i}].expected", lot.expected)
        problems.raise_if_any()
        self._store.claim_key(f"put_supply:{key}", fingerprint)
        return self._store.put_supply(key, lots)

    def lots(self, skus: Sequence[str] = (), node_id: str = "") -> tuple[SupplyLot, ...]:
        """Lots not yet fully received, of `skus` and at `node_id` when given."""
        return self._store.list_supply(list(skus) or None, node_id or None)

    def receive(self, key: str, fingerprint: str, lot_id: str, units: int) -> ReceiveOutcome:
        """`units` of the lot arrived at its node (NotFound for an unknown lot)."""
        require_key(key)
        problems = ProblemCollector()
        _check_id(problems, "lot_id", lot_id)
        if not 1 <= units <= MAX_UNITS:
            problems.add("units", units, f"must be an integer in [1, {MAX_UNITS}]")
        problems.raise_if_any()
        self._store.claim_key(f"receive_supply:{key}", fingerprint)
        outcome = self._store.receive_supply(key, lot_id, units, self._planner.now())
        for listen in self._listeners:
            listen(outcome.reservations, f"receive:{key}", False)
        return outcome

    def revise(
        self,
        key: str,
        fingerprint: str,
        lot_id: str,
        units: int | None = None,
        expected: date | None = None,
    ) -> ReviseOutcome:
        """The lot comes later or with fewer units (0 = cancelled); answers the reservations
        whose promise no longer holds."""
        require_key(key)
        problems = ProblemCollector()
        _check_id(problems, "lot_id", lot_id)
        if units is None and expected is None:
            problems.add("units", None, "give units, expected or both")
        if units is not None:
            _check_units(problems, "units", units)
        if expected is not None:
            self._check_date(problems, "expected", expected)
        problems.raise_if_any()
        self._store.claim_key(f"revise_supply:{key}", fingerprint)
        outcome = self._store.revise_supply(key, lot_id, units, expected)
        for listen in self._listeners:
            listen(outcome.broken, f"revise:{key}", True)
        return outcome

    def available_to_promise(
        self, sku: str, node_id: str = "", horizon_days: int = MAX_SUPPLY_DAYS
    ) -> dict[str, list[tuple[date, int]]]:
        """node id -> [(date, units promisable by then)], cumulative and by date: on-hand
        available today, then the units of each lot not yet held on its expected date (an
        overdue lot counts today), up to `horizon_days` from today. Nodes with neither are
        left out."""
        problems = ProblemCollector()
        _check_id(problems, "sku", sku)
        if node_id and node_id not in self._planner.network().index:
            problems.add("node_id", node_id, "unknown node")
        if not 0 <= horizon_days <= MAX_SUPPLY_DAYS:
            problems.add(
                "horizon_days", horizon_days, f"must be an integer in [0, {MAX_SUPPLY_DAYS}]"
            )
        problems.raise_if_any()
        today = self._planner.today()
        last = today + timedelta(days=horizon_days)
        by_node: dict[str, dict[date, int]] = {}
        for level in self._planner.read([sku]).levels[sku]:
            if not node_id or level.node_id == node_id:
                by_node.setdefault(level.node_id, {today: 0})[today] += level.available
        for lot in self._store.list_supply([sku], node_id or None):
            due = max(today, lot.expected)
            if lot.free and due <= last:
                dates = by_node.setdefault(lot.node_id, {today: 0})
                dates[due] = dates.get(due, 0) + lot.free
        out = {}
        for nid in sorted(by_node):
            total, steps = 0, []
            for day in sorted(by_node[nid]):
                total += by_node[nid][day]
                steps.append((day, total))
            if total:
                out[nid] = steps
        return out

    def _check_date(self, problems: ProblemCollector, field: str, expected: date) -> None:
        """A lot is expected at most `MAX_SUPPLY_DAYS` from today (overdue is allowed)."""
        last = self._planner.today() + timedelta(days=MAX_SUPPLY_DAYS)
        if expected > last:
            problems.add(
                field, expected.isoformat(), f"must be at most {MAX_SUPPLY_DAYS} days from today"
            )


def _check_id(problems: ProblemCollector, field: str, value: str) -> None:
    if not value or CONTROL.search(value):
        problems.add(field, value, "must be a non-empty string without control characters")


def _check_units(problems: ProblemCollector, field: str, units: int) -> None:
    if not 0 <= units <= MAX_UNITS:
        problems.add(field, units, f"must be an integer in [0, {MAX_UNITS}]")
