"""Key figures of a set of outcomes: latency, cost against the proven optimum, splits, km, fill.

Definitions (used by both the bench report and the replay report):
- latency p50 / p90 / p99: percentiles (linear interpolation) of wall-clock seconds per order,
  in ms, and max, the slowest order;
- gap: (cost - optimum) / optimum per order, where the optimum is the cost of a plan some exact
  method proved OPTIMAL for that order on that stock; orders without one are left out;
- split rate: share of orders shipped in more than one package;
- packages per order: mean number of real shipments (unfilled units are not packages);
- km per unit: distance travelled per unit shipped (sum of units x km / units);
- fill rate: units shipped / units ordered (an order that could not be planned ships none).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from allocation_engine.bench.harness import Outcome, is_exact
from allocation_engine.engine import Network, RuleSet

# Two exact methods agree when their costs differ by less than this (relative): the engine's
# objective is exact to a millionth per unit, the MIP backends' to their tolerance.
AGREEMENT = 1e-6


def percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(values, q)) if len(values) else math.nan


@dataclass(frozen=True)
class Kpis:
    """The report's columns for one method over one set of orders."""

    method: str
    orders: int
    p50_ms: float
    p99_ms: float
    mean_ms: float
    p90_ms: float
    max_ms: float
    proven_optimal: float  # share of orders with status OPTIMAL
    planned: float  # share of orders with a plan (not INFEASIBLE, not out of time)
    total_cost: float
    cost_per_order: float
    gap_orders: int  # orders compared with a proven optimum
    gap_mean: float
    gap_p95: float
    gap_max: float
    split_rate: float
    packages_per_order: float
    km_per_unit: float
    fill_rate: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def optimum(groups: Mapping[str, Sequence[Outcome]]) -> dict[str, float]:
    """order id -> the lowest cost an exact method proved optimal for it."""
    best: dict[str, float] = {}
    for method, outcomes in groups.items():
        if not is_exact(method):
            continue
        for o in outcomes:
            if o.status == "OPTIMAL":
                best[o.order_id] = min(best.get(o.order_id, math.inf), o.cost)
    return best


def disagreements(groups: Mapping[str, Sequence[Outcome]]) -> list[dict[str, Any]]:
    """Orders where two exact methods both proved optimality but report different costs:
    one of them is wrong (each entry names the order and both costs)."""
    proven: dict[str, dict[str, float]] = {}
    for method, outcomes in groups.items():
        if is_exact(method):
            for o in outcomes:
                if o.status == "OPTIMAL":
                    proven.setdefault(o.order_id, {})[method] = o.cost
    out = []
    for order_id, costs in proven.items():
        low, high = min(costs.values()), max(costs.values())
        if high - low > AGREEMENT * max(1.0, abs(low)):
            out.append({"order_id": order_id, "costs": costs})
    return out


def gaps(outcomes: Iterable[Outcome], best: Mapping[str, float]) -> list[float]:
    return [
        (o.cost - best[o.order_id]) / best[o.order_id]
        for o in outcomes
        if o.planned and o.order_id in best and best[o.order_id] > 0
    ]


def kpis(method: str, outcomes: Sequence[Outcome], best: Mapping[str, float]) -> Kpis:
    """The key figures of `outcomes`, with gaps measured against `best` (see `optimum`)."""
    ms = [o.seconds * 1000 for o in outcomes]
    planned = [o for o in outcomes if o.planned]
    g = [max(0.0, x) for x in gaps(outcomes, best)]  # clip rounding noise below the optimum
    units = sum(o.units_filled for o in outcomes)
    ordered = sum(o.units_ordered for o in outcomes)
    n = len(outcomes)
    total = sum(o.cost for o in planned)
    return Kpis(
        method=method,
        orders=n,
        p50_ms=percentile(ms, 50),
        p99_ms=percentile(ms, 99),
        mean_ms=float(np.mean(ms)) if ms else math.nan,
        p90_ms=percentile(ms, 90),
        max_ms=max(ms) if ms else math.nan,
        proven_optimal=sum(o.status == "OPTIMAL" for o in outcomes) / n if n else math.nan,
        planned=len(planned) / n if n else math.nan,
        total_cost=total,
        cost_per_order=total / len(planned) if planned else math.nan,
        gap_orders=len(g),
        gap_mean=float(np.mean(g)) if g else math.nan,
        gap_p95=percentile(g, 95),
        gap_max=max(g) if g else math.nan,
        split_rate=sum(o.packages > 1 for o in planned) / len(planned) if planned else math.nan,
        packages_per_order=sum(o.packages for o in planned) / len(planned) if planned else math.nan,
        km_per_unit=sum(o.unit_km for o in outcomes) / units if units else math.nan,
        fill_rate=units / ordered if ordered else math.nan,
    )


def speed_ratio(fast: Sequence[Outcome], slow: Sequence[Outcome]) -> float:
    """Median over orders planned by both of slow time / fast time."""
    fast_by_order = {o.order_id: o.seconds for o in fast}
    ratios = [
        o.seconds / fast_by_order[o.order_id]
        for o in slow
        if o.order_id in fast_by_order and fast_by_order[o.order_id] > 0
    ]
    return float(np.median(ratios)) if ratios else math.nan


def node_usage(outcomes: Iterable[Outcome], network: Network) -> dict[str, Any]:
    """Shipments and units per node and per node type, and, per node type, how much of the
    day's shipment capacity was used and how many nodes ended full.

    `network` is the network as the replay started (its capacities are the day's limits).
    """
    shipments: Counter[str] = Counter()
    units: Counter[str] = Counter()
    for o in outcomes:
        for node_id, count, _ in o.shipments:
            shipments[node_id] += 1
            units[node_id] += count
    by_type: dict[str, dict[str, int]] = {}
    for node_id, count in shipments.items():
        kind = network.node(node_id).type.value
        row = by_type.setdefault(kind, {"shipments": 0, "units": 0, "nodes": 0})
        row["shipments"] += count
        row["units"] += units[node_id]
        row["nodes"] += 1
    capacity: dict[str, dict[str, int]] = {}
    for n in network.nodes:
        if n.capacity is None:
            continue
        row = capacity.setdefault(n.type.value, {"capacity": 0, "used": 0, "full": 0, "nodes": 0})
        used = shipments.get(n.id, 0)
        row["capacity"] += n.capacity
        row["used"] += used
        row["full"] += used >= n.capacity
        row["nodes"] += 1
    return {
        "by_type": dict(sorted(by_type.items())),
        "by_node": dict(shipments.most_common()),
        "capacity": dict(sorted(capacity.items())),
    }


def repriced(outcomes: Iterable[Outcome], network: Network, rules: RuleSet) -> float:
    """What the shipments of `outcomes` cost under `rules`' weights: the yardstick that makes
    replays under different rule sets comparable (each plan's own cost uses its own weights)."""
    total = 0.0
    for o in outcomes:
        for node_id, units, km in o.shipments:
            node = network.node(node_id)
            if node_id == o.own_stock:  # the pickup store's own stock: its handling only
                total += units * node.unit_handling_cost
                continue
            total += (
                rules.shipment_cost + node.shipment_surcharge + rules.shipment_distance_cost * km
            )
            total += units * (
                rules.unit_cost + node.unit_handling_cost + rules.unit_distance_cost * km
            )
        if rules.allow_partial and o.planned:
            total += rules.unfilled_unit_penalty * (o.units_ordered - o.units_filled)
    return total
