"""Plans orders against the store's current stock.

The network (1,000 nodes and more) and the rule set are parsed once and cached by the version the
store reports with every stock read, so a request pays for them only after a change: UpsertNodes
bumps the network version, PutRules the rules revision, and the next request of every server
process rebuilds.

Node capacity (shipments per UTC day, see `ports/inventory.py`) is spent by live holds; every
stock read reports what each node spent today, and `plan` fences a node with none left by handing
the engine the network with its remaining capacity (a copy of one array per request).

Backorders. When the rules in force enable them (or the order accepts a backorder), `plan` also
reads the incoming lots of the order's skus and hands the engine what of each is not yet held,
its expected date turned into days from today (UTC, by the clock port; a lot already overdue
counts as due today).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime

import numpy as np
from opentelemetry import trace

from allocation_engine.engine import (
    Budget,
    Inventory,
    Network,
    Order,
    Plan,
    RuleSet,
    allocate,
    parse_rules,
)
from allocation_engine.engine.network import UNLIMITED, NodeType
from allocation_engine.engine.supply import MAX_SUPPLY_DAYS, IncomingLot
from allocation_engine.ports.clock import Clock
from allocation_engine.ports.inventory import InventoryStore, StockRead
from allocation_engine.service.deadline import Deadline
from allocation_engine.service.expiry import expire_due

TRACER = trace.get_tracer("allocation_engine.service")

# Share of the caller's remaining deadline the solver may use; the rest is for the round trips.
SOLVER_SHARE = 0.8


@dataclass(frozen=True)
class CurrentRules:
    rules: RuleSet
    revision: int  # 0 = the server's own default, nothing published yet


@dataclass(frozen=True)
class Snapshot:
    """What one planning read saw, ready for the engine: the network with the capacity left
    today, the available stock of the skus read, the rule set in force and (backorders on) the
    incoming lots not yet held. Orders of those skus planned on one snapshot see the same stock
    (the delivery options of one cart)."""

    read: StockRead
    network: Network
    inventory: Inventory
    rules: RuleSet
    lots: tuple[IncomingLot, ...]


class Planner:
    def __init__(
        self,
        store: InventoryStore,
        clock: Clock,
        default_rules: RuleSet,
        channel_fences: Mapping[str, frozenset[NodeType]] | None = None,
    ) -> None:
        """`channel_fences`: the node types each sales channel may be served from (its
        channels.toml entry), applied on top of every published rule set's own fences."""
        self._store = store
        self._clock = clock
        self._fences = dict(channel_fences or {})
        self._default = default_rules.fenced_by_channels(self._fences)
        self._lock = threading.Lock()
        self._network: tuple[int, Network] | None = None
        self._rules = CurrentRules(self._default, 0)

    def read(self, skus: Sequence[str]) -> StockRead:
        """Stock of `skus` as of now: overdue holds are swept first, so they never count."""
        read = self._store.stock(skus, self._clock.now())
        if read.expiry_due:
            expire_due(self._store, self._clock.now())
            read = self._store.stock(skus, self._clock.now())
        return read

    def now(self) -> float:
        return self._clock.now()

    def today(self) -> date:
        """The UTC date of the clock's now: day 0 of the engine's incoming lots."""
        return datetime.fromtimestamp(self._clock.now(), UTC).date()

    def lots(self, skus: Sequence[str], network: Network) -> list[IncomingLot]:
        """The incoming lots of `skus` at nodes of `network`, each with its units not yet held,
        due in days from today (overdue = today; lots due past the engine's horizon left out)."""
        today = self.today()
        out = []
        for lot in self._store.list_supply(list(skus)):
            day = max(0, (lot.expected - today).days)
            if lot.free and lot.node_id in network.index and day <= MAX_SUPPLY_DAYS:
                out.append(IncomingLot(lot.id, lot.node_id, lot.sku, lot.free, day))
        return out

    def network(self, version: int | None = None) -> Network:
        """The network at `version` (None = ask the store which version is current)."""
        if version is None:
            version = self._store.stock((), self._clock.now()).nodes_version
        cached = self._network
        if cached is not None and cached[0] == version:
            return cached[1]
        with self._lock:
            record = self._store.load_nodes()
            self._network = (record.version, Network.of(record.nodes))
            return self._network[1]

    def capacity(self, node_id: str) -> int | None:
        """The node's shipments per day as the cached network has it (None = unlimited)."""
        cached = self._network
        network = cached[1] if cached is not None else self.network()
        index = network.index.get(node_id)
        return None if index is None else network.nodes[index].capacity

    def rules(self, revision: int | None = None) -> CurrentRules:
        """The published rule set at `revision` (None = ask the store which is current)."""
        if revision is not None and revision == self._rules.revision:
            return self._rules
        stored = self._store.get_rules()
        current = (
            CurrentRules(self._default, 0)
            if stored is None
            else CurrentRules(
                parse_rules(stored.text).fenced_by_channels(self._fences), stored.revision
            )
        )
        self._rules = current
        return current

    def plan(
        self,
        order: Order,
        rules: RuleSet | None = None,
        deadline: Deadline | None = None,
    ) -> Plan:
        """An optimal plan for `order` from current stock (published rules unless given).

        The rule set's time limit bounds the whole call, the stock read included, and so does
        the caller's `deadline` (less a share kept for the answer's round trip): the engine gets
        one budget of the lesser and answers within it (FEASIBLE, when it cuts the search short).
        """
        started = time.monotonic()
        with TRACER.start_as_current_span("planning read") as span:
            span.set_attribute("order.id", order.id)
            view = self.snapshot(order.skus, rules, backorder=order.accepts_backorder)
        return self.plan_on(view, order, deadline, started)

    def snapshot(
        self, skus: Sequence[str], rules: RuleSet | None = None, *, backorder: bool = False
    ) -> Snapshot:
        """One read of `skus` for planning, under `rules` (the published ones unless given),
        with backorders on when `backorder` (an order that accepts waiting for supply)."""
        read = self.read(skus)
        network = _remaining(self.network(read.nodes_version), read.shipments)
        chosen = rules or self.rules(read.rules_revision).rules
        if backorder and not chosen.backorders.enabled:
            chosen = replace(chosen, backorders=replace(chosen.backorders, enabled=True))
        inventory = Inventory.from_units(
            network,
            {
                sku: [(lv.node_id, lv.available) for lv in levels if lv.node_id in network.index]
                for sku, levels in read.levels.items()
                if levels
            },
        )
        lots = self.lots(skus, network) if chosen.backorders.enabled else []
        return Snapshot(read, network, inventory, chosen, tuple(lots))

    def plan_on(
        self,
        view: Snapshot,
        order: Order,
        deadline: Deadline | None = None,
        started: float | None = None,
    ) -> Plan:
        """An optimal plan for `order` (whose skus `view` read) on that snapshot; the rule
        set's time limit counts from `started` (now unless given), as in `plan`."""
        started = time.monotonic() if started is None else started
        network, inventory, chosen = view.network, view.inventory, view.rules
        seconds = chosen.time_limit_seconds - (time.monotonic() - started)
        if deadline is not None:
            deadline.check("planning")
            left = deadline.remaining()
            if left is not None:
                seconds = min(seconds, left * SOLVER_SHARE)
        budget = Budget(max(0.0, seconds))
        with TRACER.start_as_current_span("allocate") as span:
            try:
                plan = allocate(order, network, inventory, chosen, budget=budget, lots=view.lots)
            finally:
                phase_spans(budget)
            span.set_attribute("plan.status", plan.status.value)
            span.set_attribute("plan.candidates", plan.candidates)
            span.set_attribute("plan.solver_candidates", plan.solver_candidates)
        return plan


def phase_spans(budget: Budget) -> None:
    """The engine's steps (reduction, search, solve) as child spans of the current one, from
    the times its budget noted (the engine itself does not trace)."""
    offset = time.time_ns() - time.monotonic_ns()
    for name, began, ended in budget.phases:
        step = TRACER.start_span(name, start_time=int(began * 1e9) + offset)
        step.end(end_time=int(ended * 1e9) + offset)


def _remaining(network: Network, spent: Mapping[str, int]) -> Network:
    """`network` with each node's capacity less the shipments it spent today."""
    if not spent:
        return network
    capacity = network.capacity.copy()
    for node_id, used in spent.items():
        i = network.index.get(node_id)
        if i is not None and capacity[i] != UNLIMITED:
            capacity[i] = max(0, int(capacity[i]) - used)
    if np.array_equal(capacity, network.capacity):
        return network
    return replace(network, capacity=capacity)
