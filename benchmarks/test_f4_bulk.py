"""F4 (bulk B2B orders) and F5 (long baskets): pytest-benchmark per set of orders and method.

The engine, the reference model (CP-SAT without reduction) and the same model as a MIP in HiGHS
and SCIP plan the same orders (fixed seeds, fresh stock each), one order per round; each set is
one pytest-benchmark group, so the methods stand side by side. Every plan a method proves
optimal must cost the best optimum any exact method proved for that order in this session (the
engine's, always computed untimed, and those of the methods that ran before). Under `make test`
(benchmarks disabled) one order of a small F4 and a small F5 set runs per method; `make bench`
runs the sets of `allocation-engine bench --full`, with fewer rounds for the slow methods.
"""

from __future__ import annotations

import math
from functools import cache
from typing import Any

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from allocation_engine.bench import f2, f4
from allocation_engine.bench.harness import planner
from allocation_engine.bench.kpi import AGREEMENT
from allocation_engine.bench.mip import available_backends
from allocation_engine.engine import Plan, RuleSet, allocate

QUICK_SETS = (f4.Family("bulk", 1_000), f4.Family("long", 200))
FULL_SETS = (f4.Family("bulk", 1_000), f4.Family("bulk", 5_000), f4.Family("long", 1_000))
METHODS = ("engine", "reference", "mip-highs", "mip-scip")
ROUNDS = {"engine": 25, "reference": 5, "mip-highs": 5, "mip-scip": 5}
TIME_LIMIT = 10.0  # seconds, for the reference model and the MIPs

RULES = RuleSet()
# order id -> method -> cost of a plan that method proved OPTIMAL (filled as the tests run)
PROVEN: dict[str, dict[str, float]] = {}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # As in test_f2_latency: --benchmark-enable (make bench) wins over pyproject's
    # --benchmark-disable (make test).
    config = metafunc.config
    quick = config.getoption("benchmark_disable") and not config.getoption("benchmark_enable")
    backends = available_backends()
    cases = [
        pytest.param(family, method, id=f"{family.name}-{method}")
        for family in (QUICK_SETS if quick else FULL_SETS)
        for method in METHODS
        if not method.startswith("mip-") or method.removeprefix("mip-").upper() in backends
    ]
    metafunc.parametrize(("family", "method"), cases)


@cache
def orders(family: f4.Family, count: int) -> tuple[f2.Instance, ...]:
    return tuple(f4.instances(family, count))


def engine_optimum(inst: f2.Instance) -> None:
    """Records the engine's proven cost for the order (untimed; the engine takes milliseconds)."""
    if "engine" in PROVEN.get(inst.order.id, {}):
        return
    plan = allocate(inst.order, inst.network, inst.inventory, RULES)
    if plan.status.value == "OPTIMAL":
        PROVEN.setdefault(inst.order.id, {})["engine"] = plan.total_cost


def test_f4_f5_latency(benchmark: BenchmarkFixture, family: f4.Family, method: str) -> None:
    """One order per round. Each plan fills its order or proves it short, and where the method
    proved its plan optimal, the cost equals the best optimum proven for that order."""
    rounds = 1 if benchmark.disabled else ROUNDS[method]
    benchmark.group = family.name
    instances = orders(family, rounds)
    pending = iter(instances)
    run = planner(method, None if method == "engine" else TIME_LIMIT)
    plans: list[Plan] = []

    def next_order() -> tuple[tuple[Any, ...], dict[str, Any]]:
        inst = next(pending)
        return (inst.order, inst.network, inst.inventory, RULES), {}

    def plan(*args: Any) -> None:
        plans.append(run(*args))

    benchmark.pedantic(plan, setup=next_order, rounds=rounds, iterations=1)
    assert len(plans) == rounds
    for inst, done in zip(instances, plans, strict=True):
        engine_optimum(inst)
        status = done.status.value
        assert status in ("OPTIMAL", "FEASIBLE", "INFEASIBLE")
        if status != "INFEASIBLE":
            assert done.shipments and done.units_unfilled == 0
        if status == "OPTIMAL":
            PROVEN.setdefault(inst.order.id, {})[method] = done.total_cost
        proven = PROVEN.get(inst.order.id, {})
        if status in ("OPTIMAL", "FEASIBLE") and proven:
            best = min(proven.values())
            tolerance = AGREEMENT * max(1.0, abs(best))
            if status == "OPTIMAL":
                assert max(proven.values()) - best <= tolerance, (inst.order.id, proven)
            else:  # a plan not proven optimal may cost more, never less than a proven optimum
                assert done.total_cost >= best - tolerance, (inst.order.id, proven)
    benchmark.extra_info["optimal"] = sum(p.status.value == "OPTIMAL" for p in plans)
    benchmark.extra_info["mean_cost"] = math.fsum(p.total_cost for p in plans) / rounds
