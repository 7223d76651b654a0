"""Where each performance target of issue #5 stands, read off the bench results.

Each row gives the target, the measured value, whether it is met (None when not measured) and
the command that reproduces it. Targets not met stay in the table: numbers are as measured.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

FULL_COMMAND = "make bench"


@dataclass(frozen=True)
class Standing:
    target: str
    measured: str
    met: bool | None

    @property
    def verdict(self) -> str:
        return {True: "met", False: "not met", None: "not measured"}[self.met]


def _ms(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.1f} ms"


def evaluate(results: dict[str, Any]) -> list[Standing]:
    f2 = results.get("f2", {}).get("targets")
    empty: dict[str, Any] = {"n1000_l8": {}, "n5000_l8": {}, "n5000_l20": {}}
    return _f2(f2 or empty) + _f3(results.get("f3"))


F2_TARGETS = (
    ("n1000_l8", "F2 1,000 nodes, <= 8 lines: engine p99 <= 5 ms"),
    ("n1000_l8", "F2 1,000 nodes, <= 8 lines: >= 50x faster than the full reference model"),
    (
        "n1000_l8",
        "F2 1,000 nodes, <= 8 lines: proven optimal on every instance, gap 0 where "
        "the reference proves its optimum",
    ),
    ("n5000_l8", "F2 5,000 nodes, <= 8 lines: engine p99 <= 25 ms"),
    ("n5000_l20", "F2 5,000 nodes, 20 lines: engine p99 <= 100 ms with gap <= 0.5 %"),
)


def _f2(pools: dict[str, Any]) -> list[Standing]:
    return [
        _f2_standing(target, pools[pool])
        if pools[pool].get("methods")
        else Standing(target, "not in this run's grid", None)
        for pool, target in F2_TARGETS
    ]


def _f2_standing(target: str, pool: dict[str, Any]) -> Standing:
    engine = pool["methods"]["engine"]
    latency = (
        f"p99 {_ms(engine['p99_ms'])} (p50 {_ms(engine['p50_ms'])}, {engine['orders']} orders)"
    )
    if "p99 <= 5 ms" in target:
        return Standing(target, latency, engine["p99_ms"] <= 5.0)
    if "faster" in target:
        ratio = pool["speed_ratio"].get("reference", math.nan)
        paired = pool["methods"].get("reference", {}).get("orders", 0)
        return Standing(
            target,
            f"{ratio:.0f}x (median per order over {paired} orders the reference also planned)",
            None if math.isnan(ratio) else ratio >= 50.0,
        )
    if "proven optimal" in target:
        reference = pool["methods"].get("reference", {})
        proved = round(reference.get("proven_optimal", 0.0) * reference.get("orders", 0))
        differ = len(pool["disagreements"])
        return Standing(
            target,
            f"{engine['proven_optimal']:.1%} of {engine['orders']} proven optimal; the reference "
            f"proved its optimum on {proved} of them, {differ} at a different cost",
            engine["proven_optimal"] == 1.0 and proved > 0 and differ == 0,
        )
    if "p99 <= 25 ms" in target:
        return Standing(target, latency, engine["p99_ms"] <= 25.0)
    gap = max(
        pool["engine_max_solver_gap"], 0.0 if math.isnan(engine["gap_max"]) else engine["gap_max"]
    )
    return Standing(
        target,
        f"{latency}; largest gap {gap:.2%}, {engine['proven_optimal']:.0%} proven optimal",
        engine["p99_ms"] <= 100.0 and gap <= 0.005,
    )


def _f3(f3: dict[str, Any] | None) -> list[Standing]:
    allocate = (
        "F3 Allocate over gRPC against Redis (1,000 nodes, 3 lines): p50 <= 3 ms, p99 <= 10 ms"
    )
    reserve = "F3 Reserve on hot skus: >= 2,000 per second, no oversell"
    if not f3 or f3.get("status") != "run":
        why = "not run" + (f": {f3['why']}" if f3 and f3.get("why") else "")
        return [Standing(allocate, why, None), Standing(reserve, why, None)]
    latency = f3["results"]["allocate_latency"]
    hot = f3["results"]["reserve_hot"]
    size = "quick run: 100 nodes, 1 s" if f3.get("quick") else "1,000 nodes"
    return [
        Standing(
            allocate,
            f"p50 {_ms(latency['p50_ms'])}, p99 {_ms(latency['p99_ms'])} (one client; {size})",
            latency["p50_ms"] <= 3.0 and latency["p99_ms"] <= 10.0,
        ),
        Standing(
            reserve,
            f"{hot['throughput']:.0f} per second ({hot['clients']} clients; {size}; oversell is "
            "checked by tests/service, not here)",
            hot["throughput"] >= 2_000,
        ),
    ]
