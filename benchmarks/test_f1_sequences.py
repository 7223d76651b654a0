"""F1, the literature's multi-item fulfilment sequences: one whole sequence per round, per policy.

Each benchmark replays one sequence of the setting (drawing stock down) with one policy and
records its total cost and fill rate in `extra_info`. Under `make test` (benchmarks disabled) a
100-period sequence of the small setting runs once per policy; `make bench` replays 2,000
periods of every setting. The ratio to the LP bound over the papers' full T is in the
`allocation-engine bench` report.
"""

from __future__ import annotations

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from allocation_engine.bench import f1
from allocation_engine.bench.harness import Replay, planner, replay

POLICIES = ("engine", "shopify", "salesforce", "myopic")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # As pytest-benchmark decides: --benchmark-enable (make bench) wins over the
    # --benchmark-disable in pyproject's addopts (make test).
    config = metafunc.config
    quick = config.getoption("benchmark_disable") and not config.getoption("benchmark_enable")
    settings = ("small-0.75",) if quick else tuple(f1.SETTINGS)
    metafunc.parametrize(
        ("setting", "policy"),
        [pytest.param(s, p, id=f"F1-{s}-{p}") for s in settings for p in POLICIES],
    )


def test_f1_sequence(benchmark: BenchmarkFixture, setting: str, policy: str) -> None:
    """A whole sequence; each order is planned (the dummy takes what stock cannot)."""
    periods = 100 if benchmark.disabled else 2_000
    instance = f1.Instance.generate(f1.SETTINGS[setting], 0, periods=periods)
    orders = list(instance.orders(0))
    run = planner("engine") if policy == "engine" else f1.planners(instance)[policy]

    def sequence() -> Replay:
        return replay(
            orders,
            instance.network,
            instance.inventory(),
            instance.rules(),
            policy,
            run,
            unfilled=instance.unfilled_nodes,
        )

    result = benchmark.pedantic(sequence, rounds=1, iterations=1)
    assert len(result.outcomes) == len(orders)
    assert all(o.planned for o in result.outcomes)
    filled = sum(o.units_filled for o in result.outcomes)
    benchmark.extra_info["orders"] = len(orders)
    benchmark.extra_info["total_cost"] = sum(o.cost for o in result.outcomes)
    benchmark.extra_info["fill_rate"] = filled / sum(o.units_ordered for o in result.outcomes)
