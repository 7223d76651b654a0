"""`allocation-engine bench`: run the instance families with every method, side by side.

- F2 (single orders): each cell's orders are planned by the engine and both greedy peers; the
  first `reference_orders` of them also by the reference model (CP-SAT without reduction) and by
  each MIP backend, which are dropped for the rest of a cell once they fail to prove an optimum
  within their time limit ("where they finish").
- F1 (sequences): each policy (engine, Shopify-style, Salesforce-style, the papers' myopic rule)
  draws down its own stock over the sequence; total cost / LP bound per setting. Order by order,
  on the engine's trajectory, the reference model and MIP backends (every `shadow_every`-th order)
  and the greedy peers (every order) plan the same order on the same stock: latency, the speed
  ratio and the cost gap to the proven optimum come from that common state.
- F3 (service end to end): `service_bench.measure_f3`, when the service and redis-server exist.

Timing is wall clock around `allocate` (or the MIP) in this process, after one untimed warm-up
call per method. Nothing here asserts a speed; the report says where each target stands.
"""

from __future__ import annotations

import math
import os
import platform
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from importlib.metadata import version
from typing import Any

import numpy as np
from rich.progress import Progress

from allocation_engine.bench import f1, f2
from allocation_engine.bench.harness import PEER_METHODS, Outcome, Planner, planner, replay, timed
from allocation_engine.bench.kpi import disagreements, kpis, optimum, speed_ratio
from allocation_engine.bench.lp_bound import lp_bound
from allocation_engine.bench.mip import available_backends
from allocation_engine.engine import RuleSet

FAMILIES = ("f1", "f2", "f3")  # literature sequences, the latency grid, the service


@dataclass(frozen=True)
class BenchConfig:
    """How much of each family to run. QUICK and FULL below are the two presets."""

    mode: str
    families: tuple[str, ...] = FAMILIES
    # F2
    f2_nodes: tuple[int, ...] = f2.NODES
    f2_lines: tuple[int, ...] = f2.LINES
    f2_shares: tuple[float, ...] = f2.SHARES
    f2_orders: int = 100
    reference_orders: int = 10
    reference_time_limit: float = 10.0
    mip_backends: tuple[str, ...] = ("SCIP", "CBC")
    mip_time_limit: float = 5.0
    # F1
    # (setting, instances, sequences): the papers run 30 x 30; a 2-core machine runs fewer.
    f1_runs: tuple[tuple[str, int, int], ...] = tuple((name, 1, 1) for name in f1.SETTINGS)
    f1_periods: int | None = None  # None: the papers' T
    shadow_every: int = 10
    lp_time_limit: float | None = None  # seconds per LP; None: until solved
    engine_time_limit: float | None = None  # None: the rule set's (2 s)
    seed: int = f2.SEED


QUICK = BenchConfig(
    mode="quick",
    f2_nodes=(50, 1_000),
    f2_lines=(1, 8),
    f2_shares=(0.2,),
    f2_orders=5,
    reference_orders=2,
    reference_time_limit=5.0,
    f1_runs=(("small-0.75", 1, 1),),
    f1_periods=200,
    shadow_every=5,
)
FULL = BenchConfig(
    mode="full",
    lp_time_limit=1_800.0,
    f2_orders=100,
    reference_orders=5,
    f1_runs=(("small-0.75", 2, 2), ("large-0.5", 1, 1), ("large-0.25", 1, 1)),
    shadow_every=10,
)
PRESETS = {c.mode: c for c in (QUICK, FULL)}


class Ticker:
    """A progress bar over units of work (orders planned), or nothing when `show` is false."""

    def __init__(self, progress: Progress | None) -> None:
        self.progress = progress
        self.task = progress.add_task("bench", total=0) if progress else None

    def stage(self, name: str, units: int) -> None:
        if self.progress is not None and self.task is not None:
            self.progress.update(self.task, description=name)
            self.progress.update(self.task, total=(self.progress.tasks[0].total or 0) + units)

    def tick(self, units: int = 1) -> None:
        if self.progress is not None and self.task is not None:
            self.progress.advance(self.task, units)


@contextmanager
def ticker(show: bool) -> Iterator[Ticker]:
    if not show:
        yield Ticker(None)
        return
    with Progress(transient=False) as progress:
        yield Ticker(progress)


def run_bench(config: BenchConfig, show_progress: bool = True) -> dict[str, Any]:
    """Runs the configured families and returns the results (plain data, JSON-ready)."""
    backends = tuple(b for b in config.mip_backends if b in available_backends())
    config = replace(config, mip_backends=backends)
    results: dict[str, Any] = {"meta": _meta(config)}
    with ticker(show_progress) as tick:
        if "f2" in config.families:
            results["f2"] = run_f2(config, tick)
        if "f1" in config.families:
            results["f1"] = run_f1(config, tick)
    if "f3" in config.families:
        results["f3"] = run_f3(config)
    return results


def _meta(config: BenchConfig) -> dict[str, Any]:
    return {
        "config": asdict(config),
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
        "ortools": version("ortools"),
    }


# ----- F2 -------------------------------------------------------------------------------------


def _exact_planners(config: BenchConfig) -> dict[str, Planner]:
    """The reference model and the MIP backends, each with its time limit."""
    mips = {f"mip-{b.lower()}": config.mip_time_limit for b in config.mip_backends}
    limits = {"reference": config.reference_time_limit} | mips
    return {method: planner(method, limit) for method, limit in limits.items()}


def _warm_up(planners: dict[str, Planner]) -> None:
    """One untimed call per method: imports, solver start-up and caches stay out of the figures."""
    instance = next(f2.instances(f2.Cell(50, 3, 0.2), 1, seed=1))
    for run in planners.values():
        run(instance.order, instance.network, instance.inventory, RuleSet())


def run_f2(config: BenchConfig, tick: Ticker) -> dict[str, Any]:
    rules = RuleSet()
    limit = config.engine_time_limit
    fast = {m: planner(m, limit) for m in ("engine", *PEER_METHODS)}
    exact = _exact_planners(config)
    _warm_up(fast | exact)
    cells = f2.grid(config.f2_nodes, config.f2_lines, config.f2_shares)
    tick.stage("F2 latency grid", len(cells) * config.f2_orders)
    measured: list[tuple[f2.Cell, dict[str, list[Outcome]]]] = []
    results = []
    for cell in cells:
        groups: dict[str, list[Outcome]] = {m: [] for m in (*fast, *exact)}
        gave_up: dict[str, str] = {}
        for i, inst in enumerate(f2.instances(cell, config.f2_orders, config.seed)):
            for method, run in fast.items():
                _, done = timed(method, run, inst.order, inst.network, inst.inventory, rules)
                groups[method].append(done)
            if i < config.reference_orders:
                for method, run in exact.items():
                    if method in gave_up:
                        continue
                    _, done = timed(method, run, inst.order, inst.network, inst.inventory, rules)
                    groups[method].append(done)
                    if done.status != "OPTIMAL":
                        gave_up[method] = f"order {i}: {done.status} after {done.seconds:.1f} s"
            tick.tick()
        measured.append((cell, groups))
        results.append(_summary(groups) | _cell(cell) | {"did_not_finish": gave_up})

    def pooled(keep: Callable[[f2.Cell], bool]) -> dict[str, Any]:
        return _summary(_pool(groups for cell, groups in measured if keep(cell)))

    sizes = sorted({(c.nodes, c.lines) for c in cells})
    return {
        "cells": results,
        "summary": pooled(lambda c: True),
        "by_size": [
            {"nodes": n, "lines": k}
            | _summary(_pool(g for c, g in measured if (c.nodes, c.lines) == (n, k)))
            for n, k in sizes
        ],
        "targets": {
            "n1000_l8": pooled(lambda c: c.nodes == 1_000 and c.lines <= 8),
            "n5000_l8": pooled(lambda c: c.nodes == 5_000 and c.lines <= 8),
            "n5000_l20": pooled(lambda c: c.nodes == 5_000 and c.lines == 20),
        },
    }


def _cell(cell: f2.Cell) -> dict[str, Any]:
    return {"cell": cell.name, "nodes": cell.nodes, "lines": cell.lines, "share": cell.share}


def _pool(selected: Iterable[dict[str, list[Outcome]]]) -> dict[str, list[Outcome]]:
    """Outcomes of several cells, per method (order ids are unique across cells)."""
    out: dict[str, list[Outcome]] = {}
    for groups in selected:
        for method, outcomes in groups.items():
            out.setdefault(method, []).extend(outcomes)
    return out


def _summary(groups: dict[str, list[Outcome]]) -> dict[str, Any]:
    """KPIs per method, speed ratios against the engine, the engine's largest solver gap, and
    any disagreement between exact methods."""
    best = optimum(groups)
    engine = groups.get("engine", [])
    if not engine:
        return {"methods": {}}
    return {
        "methods": {m: kpis(m, o, best).as_dict() for m, o in groups.items() if o},
        "speed_ratio": {
            m: speed_ratio(engine, o) for m, o in groups.items() if o and m != "engine"
        },
        "engine_max_solver_gap": max((o.gap for o in engine if o.planned), default=math.nan),
        "disagreements": disagreements(groups),
    }


# ----- F1 -------------------------------------------------------------------------------------


def run_f1(config: BenchConfig, tick: Ticker) -> dict[str, Any]:
    """Replays the sequences here while a second process solves the LP bounds (the large
    settings' LPs take minutes each, single-threaded): F1 costs less wall clock, and F2's
    latencies, measured before, are not disturbed."""
    out = []
    with ProcessPoolExecutor(max_workers=1) as lp_worker:
        for name, instances, sequences in config.f1_runs:
            setting = f1.SETTINGS[name]
            periods = config.f1_periods or setting.periods
            tick.stage(f"F1 {name}", instances * sequences * periods)
            runs, bounds = [], []
            for number in range(instances):
                instance = f1.Instance.generate(setting, number, periods=config.f1_periods)
                expected = lp_worker.submit(_bound, instance, None, config.lp_time_limit)
                for sequence in range(sequences):
                    demand = instance.realised_demand(sequence)
                    offline = lp_worker.submit(_bound, instance, demand, config.lp_time_limit)
                    bounds.append((expected, offline))
                    runs.append(_f1_sequence(instance, sequence, config))
                    tick.tick(periods)
            tick.stage(f"F1 {name}: waiting for the LP bounds", 0)
            for run, (expected, offline) in zip(runs, bounds, strict=True):
                run.update(expected.result() | offline.result())
            out.append(_f1_setting(name, periods, instances, sequences, runs))
    return {"settings": out}


def _bound(instance: f1.Instance, demand: Any, time_limit: float | None) -> dict[str, Any]:
    """The LP bound over expected demand (demand None) or a sequence's realised demand, with the
    seconds it took; NaN when the solver did not finish within `time_limit`."""
    kind = "lp" if demand is None else "offline_lp"
    started = time.perf_counter()
    try:
        value = lp_bound(instance, demand, time_limit=time_limit)
    except TimeoutError:
        value = math.nan
    return {kind: value, f"{kind}_seconds": time.perf_counter() - started}


def _f1_sequence(instance: f1.Instance, sequence: int, config: BenchConfig) -> dict[str, Any]:
    """One sequence: every policy on its own stock, plus the per-order comparison on the
    engine's trajectory (exact shadows on every `shadow_every`-th order, peers on each)."""
    orders = list(instance.orders(sequence))
    shadows = _exact_planners(config)
    peers = f1.planners(instance)
    common: dict[str, Any] = {
        "network": instance.network,
        "rules": instance.rules(),
        "unfilled": instance.unfilled_nodes,
    }
    engine = replay(
        orders,
        inventory=instance.inventory(),
        method="engine",
        lead=planner("engine", config.engine_time_limit),
        shadows=shadows | {m: peers[m] for m in PEER_METHODS},
        every=dict.fromkeys(shadows, config.shadow_every),
        **common,
    )
    policies = {"engine": engine.outcomes}
    for method, run in peers.items():
        policies[method] = replay(
            orders, inventory=instance.inventory(), method=method, lead=run, **common
        ).outcomes
    return {
        "instance": instance.number,
        "sequence": sequence,
        "orders": len(orders),
        "per_order": {"engine": engine.outcomes} | engine.shadows,
        "policies": policies,
    }


def _f1_setting(
    name: str, periods: int, instances: int, sequences: int, runs: list[dict[str, Any]]
) -> dict[str, Any]:
    policies: dict[str, list[Outcome]] = {}
    per_order: dict[str, list[Outcome]] = {}
    ratios: dict[str, dict[str, list[float]]] = {"lp": {}, "offline_lp": {}}
    for run in runs:
        for method, outcomes in run["policies"].items():
            policies.setdefault(method, []).extend(outcomes)
            cost = sum(o.cost for o in outcomes)
            for kind, by_method in ratios.items():
                by_method.setdefault(method, []).append(cost / run[kind])
        for method, outcomes in run["per_order"].items():
            per_order.setdefault(method, []).extend(outcomes)
    return {
        "setting": name,
        "periods": periods,
        "instances": instances,
        "sequences": sequences,
        "orders": sum(r["orders"] for r in runs),
        "lp_bounds": [r["lp"] for r in runs],
        "lp_seconds": [r["lp_seconds"] for r in runs],
        "offline_lp_bounds": [r["offline_lp"] for r in runs],
        "offline_lp_seconds": [r["offline_lp_seconds"] for r in runs],
        "ratio_to_lp": {m: float(np.mean(r)) for m, r in ratios["lp"].items()},
        "ratio_to_offline_lp": {m: float(np.mean(r)) for m, r in ratios["offline_lp"].items()},
        "ratios": ratios,
        "policies": {m: kpis(m, o, {}).as_dict() for m, o in policies.items()},
        "per_order": _summary(per_order),
    }


# ----- F3 -------------------------------------------------------------------------------------


def run_f3(config: BenchConfig) -> dict[str, Any]:
    """Calls the service benchmark (issue #3's load generator) when it is installed and a
    redis-server can be started; otherwise says why F3 was not run."""
    try:
        from allocation_engine.bench.f3 import measure_f3
        from allocation_engine.testing.redis_process import RedisNotAvailable
    except ImportError as missing:
        return {"status": "not run", "why": f"the service benchmark is not available: {missing}"}
    quick = config.mode == "quick"
    try:
        figures = measure_f3(quick=quick)
    except RedisNotAvailable as missing:
        return {"status": "not run", "why": str(missing)}
    return {
        "status": "run",
        "quick": quick,
        "results": {k: v.summary() for k, v in figures.items()},
    }
