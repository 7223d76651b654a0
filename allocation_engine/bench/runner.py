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
- F4 (bulk B2B orders) and F5 (long baskets), `f4.py`: every order planned on the same fresh stock
  by the engine, the reference model and the independent MIPs (HiGHS and SCIP on the same
  formulation); each exact method may be limited to the first orders of a set (the quick preset).
  A method that finds no plan within its limit is recorded as NOT_FINISHED at its limit.
- F3 (service end to end): `service_bench.measure_f3`, when the service and redis-server exist.

For every family, the engine's orders that ran past the rule set's time limit plus SLACK are
counted (`engine_time_limit` in each summary).

Timing is wall clock around `allocate` (or the MIP) in this process, after one untimed warm-up
call per method. Nothing here asserts a speed; the report says where each target stands.
"""

from __future__ import annotations

import math
import os
import platform
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from importlib.metadata import version
from typing import Any

import numpy as np
from rich.progress import Progress

from allocation_engine.bench import f1, f2, f4
from allocation_engine.bench.harness import (
    PEER_METHODS,
    TIMEOUT,
    Outcome,
    Planner,
    is_exact,
    planner,
    replay,
    timed,
)
from allocation_engine.bench.kpi import AGREEMENT, disagreements, kpis, optimum, speed_ratio
from allocation_engine.bench.lp_bound import lp_bound
from allocation_engine.bench.mip import available_backends
from allocation_engine.engine import RuleSet

# literature sequences, the latency grid, the service, bulk B2B orders, long baskets
FAMILIES = ("f1", "f2", "f3", "f4", "f5")
NOT_FINISHED = "NOT_FINISHED"  # F4/F5: the method found no plan within its time limit
SLACK = 0.10  # an order runs past its time limit when it takes longer than limit x (1 + SLACK)


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
    # F4 (bulk) and F5 (long baskets): orders per network size; every method plans every order
    # unless limited to the first `f45_reference_orders` / `f45_mip_orders` (None: all).
    f4_nodes: tuple[int, ...] = f4.NODES
    f4_orders: int = 25
    f5_nodes: tuple[int, ...] = (1_000,)
    f5_orders: int = 25
    f5_share: float | None = None  # share of nodes carrying each F5 sku; None: f4.LONG_SHARE
    f45_reference_orders: int | None = None
    f45_mip_orders: int | None = None
    f45_mip_backends: tuple[str, ...] = ("HIGHS", "SCIP")
    f45_mip_time_limit: float = 10.0


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
    f4_nodes=(1_000,),
    f4_orders=4,
    f5_orders=3,
    f45_mip_orders=2,
    f45_mip_time_limit=5.0,
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
    available = available_backends()
    config = replace(
        config,
        mip_backends=tuple(b for b in config.mip_backends if b in available),
        f45_mip_backends=tuple(b for b in config.f45_mip_backends if b in available),
    )
    results: dict[str, Any] = {"meta": _meta(config)}
    with ticker(show_progress) as tick:
        if "f2" in config.families:
            results["f2"] = run_f2(config, tick)
        if "f4" in config.families:
            results["f4"] = run_f45(config, "bulk", tick)
        if "f5" in config.families:
            results["f5"] = run_f45(config, "long", tick)
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
        with suppress(TimeoutError):  # no plan in time: warmed up all the same
            run(instance.order, instance.network, instance.inventory, RuleSet())


def run_f2(config: BenchConfig, tick: Ticker) -> dict[str, Any]:
    rules = RuleSet()
    limit = config.engine_time_limit
    deadline = engine_limit(config, rules)
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
        results.append(_summary(groups, deadline) | _cell(cell) | {"did_not_finish": gave_up})

    def pooled(keep: Callable[[f2.Cell], bool]) -> dict[str, Any]:
        return _summary(_pool(groups for cell, groups in measured if keep(cell)), deadline)

    sizes = sorted({(c.nodes, c.lines) for c in cells})
    return {
        "cells": results,
        "summary": pooled(lambda c: True),
        "by_size": [
            {"nodes": n, "lines": k}
            | _summary(_pool(g for c, g in measured if (c.nodes, c.lines) == (n, k)), deadline)
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


def engine_limit(config: BenchConfig, rules: RuleSet) -> float:
    """The engine's time limit per order in seconds: the configured one, else the rule set's."""
    return config.engine_time_limit or rules.time_limit_seconds


def past_limit(outcomes: Sequence[Outcome], limit: float) -> dict[str, Any]:
    """How many of `outcomes` ran past `limit` seconds (plus SLACK), which, and the slowest."""
    over = [o.order_id for o in outcomes if o.seconds > limit * (1 + SLACK)]
    return {
        "limit_s": limit,
        "slack": SLACK,
        "orders": len(outcomes),
        "over": len(over),
        "over_orders": over[:10],
        "max_ms": max((o.seconds * 1000 for o in outcomes), default=math.nan),
    }


def _summary(groups: dict[str, list[Outcome]], limit: float) -> dict[str, Any]:
    """KPIs per method, speed ratios against the engine, the engine's largest solver gap, any
    disagreement between exact methods, and the engine's orders past its time `limit`."""
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
        "engine_time_limit": past_limit(engine, limit),
    }


# ----- F4 and F5 ------------------------------------------------------------------------------


def _f45_planners(config: BenchConfig) -> tuple[dict[str, Planner], dict[str, float]]:
    """The engine, the reference model and each MIP backend, with each one's time limit."""
    limits = {"engine": engine_limit(config, RuleSet()), "reference": config.reference_time_limit}
    limits |= {f"mip-{b.lower()}": config.f45_mip_time_limit for b in config.f45_mip_backends}
    return {m: planner(m, limit) for m, limit in limits.items()}, limits


def _plans_order(method: str, index: int, config: BenchConfig) -> bool:
    """Whether `method` plans the `index`-th order of a set (the exact ones may stop early)."""
    if method == "reference":
        first = config.f45_reference_orders
    elif method.startswith("mip-"):
        first = config.f45_mip_orders
    else:
        return True
    return first is None or index < first


def run_f45(config: BenchConfig, kind: str, tick: Ticker) -> dict[str, Any]:
    """F4 (`kind` "bulk") or F5 ("long"): one set of orders per network size, each order planned
    by every method on the same stock."""
    bulk = kind == "bulk"
    nodes, count = (
        (config.f4_nodes, config.f4_orders) if bulk else (config.f5_nodes, config.f5_orders)
    )
    families = [f4.Family(kind, n, None if bulk else config.f5_share) for n in nodes]
    planners, limits = _f45_planners(config)
    _warm_up(planners)
    sets = []
    for family in families:
        tick.stage(f"{family.name}: {'bulk orders' if bulk else 'long baskets'}", count)
        sets.append(_f45_set(family, count, planners, limits, config, tick))
    return {"sets": sets}


def _f45_set(
    family: f4.Family,
    count: int,
    planners: dict[str, Planner],
    limits: dict[str, float],
    config: BenchConfig,
    tick: Ticker,
) -> dict[str, Any]:
    rules = RuleSet()
    # Untimed: an order of another seed on this network, so the first timed one pays no caches.
    warm = next(f4.instances(family, 1, seed=f4.SEED + 1))
    planners["engine"](warm.order, warm.network, warm.inventory, rules)
    groups: dict[str, list[Outcome]] = {m: [] for m in planners}
    per_order = []
    for i, inst in enumerate(f4.instances(family, count)):
        row: dict[str, Any] = {
            "order_id": inst.order.id,
            "lines": len(inst.order.lines),
            "units": inst.order.units,
            "customer": inst.order.customer_type.value,
            "methods": {},
        }
        for method, run in planners.items():
            if not _plans_order(method, i, config):
                continue
            _, done = timed(method, run, inst.order, inst.network, inst.inventory, rules)
            if done.status == TIMEOUT:
                done = replace(done, status=NOT_FINISHED, seconds=max(done.seconds, limits[method]))
            groups[method].append(done)
            row["methods"][method] = {
                "ms": done.seconds * 1000,
                "status": done.status,
                "cost": done.cost,
            }
        per_order.append(row)
        tick.tick()
    groups = {m: o for m, o in groups.items() if o}
    best = optimum(groups)
    for row in per_order:
        row["optimum"] = best.get(row["order_id"], math.nan)
    summary = _summary(groups, limits["engine"])
    fastest = _fastest_mip(groups)
    summary["speed_ratio"]["best-mip"] = speed_ratio(groups["engine"], fastest)
    return {
        "family": family.name,
        "kind": family.kind,
        "nodes": family.nodes,
        "share": family.share,
        "orders": count,
        "time_limits": limits,
        **summary,
        "best_mip_orders": len(fastest),
        "statuses": {m: dict(Counter(o.status for o in outs)) for m, outs in groups.items()},
        "off_optimum": {m: _off_optimum(outs, best) for m, outs in groups.items()},
        "status_conflicts": _status_conflicts(groups),
        "confirmed": _confirmed(groups),
        "per_order": per_order,
    }


def _fastest_mip(groups: dict[str, list[Outcome]]) -> list[Outcome]:
    """Per order some MIP backend planned, the fastest backend's outcome (as method best-mip)."""
    fastest: dict[str, Outcome] = {}
    for method, outcomes in groups.items():
        if not method.startswith("mip-"):
            continue
        for o in outcomes:
            if o.order_id not in fastest or o.seconds < fastest[o.order_id].seconds:
                fastest[o.order_id] = o
    return [replace(o, method="best-mip") for o in fastest.values()]


def _off_optimum(outcomes: Sequence[Outcome], best: dict[str, float]) -> int:
    """Orders with a proven optimum that this method planned at another cost."""
    return sum(
        1
        for o in outcomes
        if o.planned
        and o.order_id in best
        and abs(o.cost - best[o.order_id]) > AGREEMENT * max(1.0, abs(best[o.order_id]))
    )


def _status_conflicts(groups: dict[str, list[Outcome]]) -> list[dict[str, Any]]:
    """Orders one exact method proved INFEASIBLE while another planned them: one is wrong."""
    statuses: dict[str, dict[str, str]] = {}
    for method, outcomes in groups.items():
        if is_exact(method):
            for o in outcomes:
                statuses.setdefault(o.order_id, {})[method] = o.status
    return [
        {"order_id": order_id, "statuses": seen}
        for order_id, seen in statuses.items()
        if "INFEASIBLE" in seen.values() and {"OPTIMAL", "FEASIBLE"} & set(seen.values())
    ]


def _confirmed(groups: dict[str, list[Outcome]]) -> int:
    """Orders the engine proved (OPTIMAL or INFEASIBLE) where an independent exact method proved
    the same (the same cost, or INFEASIBLE too)."""
    others: dict[str, list[Outcome]] = {}
    for method, outcomes in groups.items():
        if method != "engine" and is_exact(method):
            for o in outcomes:
                others.setdefault(o.order_id, []).append(o)
    count = 0
    for e in groups.get("engine", []):
        for o in others.get(e.order_id, []):
            if e.status == o.status == "INFEASIBLE" or (
                e.status == o.status == "OPTIMAL"
                and abs(e.cost - o.cost) <= AGREEMENT * max(1.0, abs(e.cost))
            ):
                count += 1
                break
    return count


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
            limit = engine_limit(config, RuleSet())
            for number in range(instances):
                instance = f1.Instance.generate(setting, number, periods=config.f1_periods)
                limit = engine_limit(config, instance.rules())
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
            out.append(_f1_setting(name, periods, instances, sequences, runs, limit))
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
    name: str,
    periods: int,
    instances: int,
    sequences: int,
    runs: list[dict[str, Any]],
    limit: float,
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
        "per_order": _summary(per_order, limit),
        # every order of the engine's own sequences, not only the sampled ones
        "engine_time_limit": past_limit(policies.get("engine", []), limit),
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
