"""F2, single-order latency: pytest-benchmark over the named cells of the grid, per method.

Each round plans a different order of the cell (fixed seeds), so the statistics are over orders,
not over one order repeated. Under `make test` (benchmarks disabled) only two small cells run,
once each, so the harness cannot rot; `make bench` runs every cell. The reference model (CP-SAT
without reduction) runs on cells up to 1,000 nodes only: on 5,000 nodes one order takes seconds
(`allocation-engine bench` still measures it on a few orders per cell).
"""

from __future__ import annotations

from typing import Any

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from allocation_engine.bench import f2
from allocation_engine.bench.harness import planner
from allocation_engine.engine import RuleSet

QUICK_CELLS = (f2.Cell(50, 3, 0.2), f2.Cell(1_000, 8, 0.2))
METHODS = ("engine", "reference", "shopify", "salesforce")
ROUNDS = {"engine": 50, "reference": 5, "shopify": 50, "salesforce": 50}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # As pytest-benchmark decides: --benchmark-enable (make bench) wins over the
    # --benchmark-disable in pyproject's addopts (make test).
    config = metafunc.config
    quick = config.getoption("benchmark_disable") and not config.getoption("benchmark_enable")
    cells = QUICK_CELLS if quick else f2.grid()
    cases = [
        pytest.param(cell, method, id=f"{cell.name}-{method}")
        for cell in cells
        for method in METHODS
        if method != "reference" or cell.nodes <= 1_000
    ]
    metafunc.parametrize(("cell", "method"), cases)


def test_f2_latency(benchmark: BenchmarkFixture, cell: f2.Cell, method: str) -> None:
    """One order per round; every plan fills its order (F2 orders are always fillable)."""
    rounds = 1 if benchmark.disabled else ROUNDS[method]
    orders = iter(f2.instances(cell, rounds))
    run = planner(method, time_limit=10.0)
    rules = RuleSet()
    plans: list[Any] = []

    def next_order() -> tuple[tuple[Any, ...], dict[str, Any]]:
        inst = next(orders)
        return (inst.order, inst.network, inst.inventory, rules), {}

    def plan(*args: Any) -> None:
        plans.append(run(*args))

    benchmark.pedantic(plan, setup=next_order, rounds=rounds, iterations=1)
    assert len(plans) == rounds
    assert all(p.units_unfilled == 0 and p.shipments for p in plans)
    benchmark.extra_info["optimal"] = sum(p.status.value == "OPTIMAL" for p in plans)
    benchmark.extra_info["mean_cost"] = sum(p.total_cost for p in plans) / rounds
