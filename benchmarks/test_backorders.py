"""Backorders: what planning against incoming supply costs per order, beside the same orders on
the shelf only (pytest-benchmark).

The F2 cell of 1,000 nodes and 3 lines at a 20 % share (the mid-size network of the latency
grid), each order with incoming lots of each of its skus at 20 nodes (`case`). Variants on the
same orders: `shelf` (backorders off: today's path) and `lots` (on, at the default 0.5 per
unit-day: the warehouses hold everything, so the model mostly proves the shelf plan), then the
same with the order's first sku gone from every warehouse and a purchase order of it due at
three: `short-shelf` (off: thin store stock, split or INFEASIBLE), `short-lots` (on: wait for
the purchase order or take the stores' stock now, decided exactly) and `short-lots-cheap-wait`
(0.01 per unit-day: waiting wins most orders). Each round plans a different order (fixed
seeds); under `make test` (benchmarks disabled) each variant runs once.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from allocation_engine.bench import f2
from allocation_engine.engine import Inventory, NodeType, Plan, RuleSet, allocate
from allocation_engine.engine.rules import Backorders
from allocation_engine.engine.supply import IncomingLot

CELL = f2.Cell(1_000, 3, 0.2)
ROUNDS = 30
LOT_NODES = 20  # nodes per sku with a lot on its way
PO_WAREHOUSES = 3  # warehouses a purchase order of the short sku arrives at
# variant -> (backorders on, the first sku out of stock at every warehouse, delay per unit-day)
VARIANTS = {
    "shelf": (False, False, 0.5),
    "lots": (True, False, 0.5),
    "short-shelf": (False, True, 0.5),
    "short-lots": (True, True, 0.5),
    "short-lots-cheap-wait": (True, True, 0.01),
}


def case(inst: f2.Instance, seed: int, short: bool) -> tuple[Inventory, list[IncomingLot]]:
    """The order's stock and lots: of each sku at LOT_NODES random nodes (1 to 10 units, due in
    1 to 21 days); when `short`, its first sku is gone from every warehouse and a purchase order
    of it (50 units, due in 2 to 14 days) comes to PO_WAREHOUSES of them."""
    rng = np.random.default_rng(seed)
    nodes = inst.network.nodes
    lots = [
        IncomingLot(
            f"po-{sku}-{k}",
            nodes[int(i)].id,
            sku,
            int(rng.integers(1, 11)),
            int(rng.integers(1, 22)),
        )
        for sku in inst.order.skus
        for k, i in enumerate(rng.choice(len(nodes), LOT_NODES, replace=False))
    ]
    if not short:
        return inst.inventory, lots
    sku = inst.order.skus[0]
    warehouses = [n.id for n in nodes if n.type is NodeType.WAREHOUSE]
    gone = {(w, sku): inst.inventory.available(w, sku) for w in warehouses}
    inventory = inst.inventory.without({key: units for key, units in gone.items() if units})
    for k, i in enumerate(rng.choice(len(warehouses), PO_WAREHOUSES, replace=False)):
        lots.append(
            IncomingLot(f"po-dc-{k}", warehouses[int(i)], sku, 50, int(rng.integers(2, 15)))
        )
    return inventory, lots


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_backorders_latency(benchmark: BenchmarkFixture, variant: str) -> None:
    """One order per round. On the shelf only a short sku may leave orders INFEASIBLE; with
    lots every order is OPTIMAL."""
    rounds = 1 if benchmark.disabled else ROUNDS
    enabled, short, delay = VARIANTS[variant]
    cases = iter(
        [(inst, *case(inst, seed, short)) for seed, inst in enumerate(f2.instances(CELL, rounds))]
    )
    rules = RuleSet().with_weights(backorders=Backorders(enabled, delay, 60))
    plans: list[Plan] = []

    def next_order() -> tuple[tuple[Any, ...], dict[str, Any]]:
        inst, inventory, lots = next(cases)
        return (inst.order, inst.network, inventory, rules), {"lots": lots if enabled else ()}

    def plan(*args: Any, **kwargs: Any) -> None:
        plans.append(allocate(*args, time_limit=10.0, **kwargs))

    benchmark.pedantic(plan, setup=next_order, rounds=rounds, iterations=1)
    assert len(plans) == rounds
    optimal = [p for p in plans if p.status.value == "OPTIMAL"]
    if enabled or not short:
        assert len(optimal) == rounds and all(p.units_unfilled == 0 for p in plans)
    benchmark.extra_info["optimal"] = len(optimal)
    benchmark.extra_info["waiting"] = sum(any(s.ship_day for s in p.shipments) for p in plans)
    benchmark.extra_info["mean_shipments"] = sum(len(p.shipments) for p in optimal) / max(
        1, len(optimal)
    )
    benchmark.extra_info["mean_cost"] = sum(p.total_cost for p in optimal) / max(1, len(optimal))
