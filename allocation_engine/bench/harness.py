"""The replay harness: plan orders one after another against stock under a rule set, and record.

Both audiences use it. Engineers (`allocation-engine bench`) replay generated orders with every
method to compare speed and cost; planners (`allocation-engine replay`) replay an order history
under one or two rule sets to see what a change would do. A replay draws stock down as it goes
(`Inventory.without`) and spends each node's shipment capacity, so later orders see what earlier
ones left.

`shadows` plan the same order on the same stock without drawing anything down: the way to compare
methods order by order on one common state (the leading method's trajectory).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace

from allocation_engine.bench.mip import allocate_mip
from allocation_engine.engine import (
    DeliveryMode,
    InvalidInput,
    Inventory,
    Network,
    Order,
    Plan,
    RuleSet,
    Status,
    allocate,
)
from allocation_engine.engine.network import UNLIMITED

Planner = Callable[[Order, Network, Inventory, RuleSet], Plan]
TIMEOUT = "TIMEOUT"  # status of an outcome whose method found no plan within its time limit
REFUSED = "REFUSED"  # the engine refused the order as given (e.g. a sku no node carries)


@dataclass(frozen=True)
class Outcome:
    """What one method did with one order (slim: plans hold whole-network arrays, this does not).

    `shipments` lists (node id, units, km) for real shipments; shipments from `unfilled` nodes (the
    F1 dummy) count as unfilled units, not as packages. `own_stock` names the click & collect
    pickup store when the plan served its own stock (priced as handling only, no package).
    """

    order_id: str
    method: str
    seconds: float
    status: str
    cost: float
    gap: float
    units_ordered: int
    units_filled: int
    shipments: tuple[tuple[str, int, float], ...]
    own_stock: str = ""

    @property
    def planned(self) -> bool:
        """The method returned a plan that ships the order (possibly partly)."""
        return self.status in (Status.OPTIMAL, Status.FEASIBLE)

    @property
    def packages(self) -> int:
        return len(self.shipments)

    @property
    def unit_km(self) -> float:
        return sum(units * km for _, units, km in self.shipments)


def outcome(
    order: Order, plan: Plan, seconds: float, unfilled: frozenset[str] = frozenset()
) -> Outcome:
    real = tuple(
        (s.node_id, s.units, s.distance_km) for s in plan.shipments if s.node_id not in unfilled
    )
    return Outcome(
        order_id=order.id,
        method=plan.method,
        seconds=seconds,
        status=plan.status.value,
        cost=plan.total_cost,
        gap=plan.optimality_gap,
        units_ordered=order.units,
        units_filled=sum(units for _, units, _ in real),
        shipments=real,
        own_stock=next(
            (s.node_id for s in plan.shipments if s.node_id == order.pickup_store_id), ""
        )
        if order.delivery_mode is DeliveryMode.CLICK_AND_COLLECT
        else "",
    )


def timed(
    method: str,
    planner: Planner,
    order: Order,
    network: Network,
    inventory: Inventory,
    rules: RuleSet,
    unfilled: frozenset[str] = frozenset(),
) -> tuple[Plan | None, Outcome]:
    """Runs one planner on one order and times it (wall clock, `time.perf_counter`).

    An order the planner refuses (InvalidInput: in a replayed history, typically a sku no node
    carries any more) or cannot plan in time is recorded as such, and planned by nobody."""
    start = time.perf_counter()
    try:
        plan = planner(order, network, inventory, rules)
    except (TimeoutError, InvalidInput) as failed:
        seconds = time.perf_counter() - start
        status = TIMEOUT if isinstance(failed, TimeoutError) else REFUSED
        return None, Outcome(
            order.id, method, seconds, status, math.nan, math.nan, order.units, 0, ()
        )
    seconds = time.perf_counter() - start
    return plan, replace(outcome(order, plan, seconds, unfilled), method=method)


EXACT_METHODS = ("engine", "reference")
PEER_METHODS = ("shopify", "salesforce")


def is_exact(method: str) -> bool:
    """Methods that prove optimality (the engine, the reference model and the MIP backends)."""
    return method in EXACT_METHODS or method.startswith("mip-")


def planner(method: str, time_limit: float | None = None) -> Planner:
    """The planner for a method name: an `allocate` method or `mip-<backend>` (e.g. mip-scip).

    `time_limit` (seconds) overrides the rule set's limit for the exact methods.
    """
    if method.startswith("mip-"):
        backend = method.removeprefix("mip-").upper()

        def mip(order: Order, network: Network, inventory: Inventory, rules: RuleSet) -> Plan:
            limit = rules.time_limit_seconds if time_limit is None else time_limit
            return allocate_mip(order, network, inventory, rules, backend=backend, time_limit=limit)

        return mip

    def engine(order: Order, network: Network, inventory: Inventory, rules: RuleSet) -> Plan:
        return allocate(order, network, inventory, rules, method=method, time_limit=time_limit)

    return engine


@dataclass
class Replay:
    """A replayed sequence: the leading method's outcomes and the shadows' on the same states."""

    method: str
    outcomes: list[Outcome] = field(default_factory=list)
    shadows: dict[str, list[Outcome]] = field(default_factory=dict)
    network: Network | None = None  # after the replay: capacities spent
    inventory: Inventory | None = None  # after the replay: stock drawn down


def replay(
    orders: Iterable[Order],
    network: Network,
    inventory: Inventory,
    rules: RuleSet,
    method: str,
    lead: Planner | None = None,
    *,
    unfilled: frozenset[str] = frozenset(),
    shadows: Mapping[str, Planner] | None = None,
    every: Mapping[str, int] | None = None,
    on_order: Callable[[], None] | None = None,
) -> Replay:
    """Plans `orders` in turn with `method` (or the planner `lead`), drawing stock down.

    An order the lead cannot plan (INFEASIBLE, or no plan in time) takes nothing. Each of
    `shadows` also plans every `every[name]`-th order (default: each) on the same stock.
    """
    lead = lead or planner(method)
    result = Replay(method, shadows={name: [] for name in shadows or {}})
    for count, order in enumerate(orders):
        plan, done = timed(method, lead, order, network, inventory, rules, unfilled)
        result.outcomes.append(done)
        for name, shadow in (shadows or {}).items():
            if count % (every or {}).get(name, 1) == 0:
                _, seen = timed(name, shadow, order, network, inventory, rules, unfilled)
                result.shadows[name].append(seen)
        if plan is not None and plan.shipments:
            inventory = inventory.without(plan.taken())
            network, inventory = spend_capacity(network, inventory, plan)
        if on_order is not None:
            on_order()
    result.network, result.inventory = network, inventory
    return result


def spend_capacity(network: Network, inventory: Inventory, plan: Plan) -> tuple[Network, Inventory]:
    """Each shipment uses one unit of its node's capacity (shipments it can take today)."""
    rows = [network.index[s.node_id] for s in plan.shipments]
    if not rows or (network.capacity[rows] == UNLIMITED).all():
        return network, inventory
    used = {network.nodes[r].id for r in rows if network.capacity[r] != UNLIMITED}
    nodes = [
        replace(n, capacity=int(n.capacity) - 1) if n.id in used and n.capacity else n
        for n in network.nodes
    ]
    spent = Network.of(nodes)
    return spent, Inventory(spent, inventory.columns)
