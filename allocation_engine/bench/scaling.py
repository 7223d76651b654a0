"""Scale-out: server CPU per call and throughput from 1 to N server processes on one Redis.

Per-core figures that do not depend on the test machine's core count: the server processes' own
CPU time (`/proc/<pid>/stat` utime + stime of every server pid, the delta over the measured
window) divided by the calls completed there, for Allocate and for Reserve; Redis's CPU per call
the same way (the redis-server pid from `INFO server`). Throughput per server process, p50/p99
latency, and growth from 1 to N processes are reported beside them, but those depend on the
machine (client processes share its cores).

Workload: 3-line orders on the F3 network (1,000 nodes, 2,000 skus, 10 % per node), with every
position 1,000 times as deep as F3's so Reserve never drains stock during a run. Servers are
started by `app.workers.Workers` (what `serve --workers N` runs); clients by `bench.loadgen`.

    allocation-engine bench scaling --servers 1,2 --duration 10 --out reports/scaling
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import redis

from allocation_engine.app.orders import OrderConfig
from allocation_engine.app.serve import ServeConfig, open_inventory
from allocation_engine.app.workers import Workers
from allocation_engine.bench.f3 import f3_network, f3_stock
from allocation_engine.bench.loadgen import Workload, run_load
from allocation_engine.ports.inventory import SnapshotLine
from allocation_engine.testing.redis_cluster import throwaway_cluster
from allocation_engine.testing.redis_process import free_port, throwaway_redis

TICK_MS = 1000.0 / os.sysconf("SC_CLK_TCK")


def cpu_ms(pid: int) -> float:
    """utime + stime of `pid` in milliseconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * TICK_MS


@dataclass(frozen=True)
class Point:
    servers: int
    rpc: str
    clients: int
    seconds: float
    calls: int
    errors: dict[str, int]
    throughput: float
    throughput_per_server: float
    p50_ms: float
    p99_ms: float
    server_cpu_ms_per_call: float
    redis_cpu_ms_per_call: float
    redis_cpu_share: float  # of one core over the window


def seed(url: str, nodes: int, skus: int, depth: int) -> tuple[str, ...]:
    store = open_inventory(url)
    network, names = f3_network(nodes, skus)
    store.upsert_nodes(network)
    batch: list[SnapshotLine] = []
    for lines in f3_stock(network, names):
        batch += [SnapshotLine(x.node_id, x.sku, x.on_hand * depth, 0) for x in lines]
        if len(batch) >= 20_000:
            store.apply_snapshot(1, batch)
            batch = []
    if batch:
        store.apply_snapshot(1, batch)
    return names


def measure(
    url: str,
    redis_pids: Sequence[int],
    skus: tuple[str, ...],
    servers: int,
    clients: int,
    duration: float,
    rpcs: Sequence[str] = ("allocate", "reserve"),
) -> Iterator[Point]:
    """One point per rpc at `servers` processes; Redis CPU is summed over `redis_pids` (every
    node of a Cluster, replicas included: replication is part of a write's cost)."""
    config = ServeConfig(
        port=free_port(),
        redis_url=url,
        threads=16,
        orders=OrderConfig(redis_url=url, dispatch=False),
    )
    with Workers(config, servers, grace=2) as workers:
        for seed_no, rpc in enumerate(rpcs):
            workload = Workload(rpc=rpc, skus=skus, lines=3, seed=seed_no + 1)
            pids = workers.pids
            # warm-up calls happen inside run_load before its barrier; the CPU window brackets
            # the whole run, so the warm-up calls are counted into the calls too
            warmup = 20
            before = [cpu_ms(p) for p in pids]
            redis_before = sum(cpu_ms(p) for p in redis_pids)
            began = time.perf_counter()
            result = run_load(workers.address, workload, clients, duration, warmup)
            wall = time.perf_counter() - began
            server_ms = sum(cpu_ms(p) for p in pids) - sum(before)
            redis_ms = sum(cpu_ms(p) for p in redis_pids) - redis_before
            calls = result.calls + warmup * clients
            yield Point(
                servers=servers,
                rpc=rpc,
                clients=clients,
                seconds=round(result.seconds, 2),
                calls=result.calls,
                errors=result.errors,
                throughput=round(result.throughput, 1),
                throughput_per_server=round(result.throughput / servers, 1),
                p50_ms=round(result.p50_ms, 2),
                p99_ms=round(result.p99_ms, 2),
                server_cpu_ms_per_call=round(server_ms / max(calls, 1), 3),
                redis_cpu_ms_per_call=round(redis_ms / max(calls, 1), 3),
                redis_cpu_share=round(redis_ms / (wall * 1000), 3),
            )


def run_scaling(
    servers: Sequence[int] = (1, 2),
    clients: int = 4,
    duration: float = 10.0,
    nodes: int = 1_000,
    skus: int = 2_000,
    repeats: int = 1,
    cluster: bool = False,
) -> dict[str, Any]:
    """Every server count in `servers`, `repeats` times each, on one throwaway Redis (or, with
    `cluster`, a throwaway Redis Cluster of 3 masters and 3 replicas)."""
    points: list[Point] = []
    with _store(cluster) as (url, redis_pids):
        names = seed(url, nodes, skus, depth=1_000)
        for _ in range(repeats):
            for n in servers:
                points += measure(url, redis_pids, names, n, clients, duration)
    return {
        "store": "redis-cluster (3 masters, 3 replicas)" if cluster else "redis",
        "nodes": nodes,
        "skus": skus,
        "lines": 3,
        "cores": os.cpu_count(),
        "points": [asdict(p) for p in points],
        "growth": growth(points),
    }


@contextmanager
def _store(cluster: bool) -> Iterator[tuple[str, list[int]]]:
    """A throwaway store's URL and the pids of its redis-server processes."""
    if cluster:
        with throwaway_cluster() as running:
            pids = [p.pid for p in running.processes.values()]
            yield running.url, pids
    else:
        with throwaway_redis() as url:
            yield url, [int(redis.Redis.from_url(url).info("server")["process_id"])]


def growth(points: Sequence[Point]) -> dict[str, float]:
    """Median throughput at the largest server count over that at the smallest, per rpc."""
    out: dict[str, float] = {}
    for rpc in sorted({p.rpc for p in points}):
        by_n: dict[int, list[float]] = {}
        for p in points:
            if p.rpc == rpc:
                by_n.setdefault(p.servers, []).append(p.throughput)
        low, high = min(by_n), max(by_n)
        if high > low:
            median = {n: sorted(v)[len(v) // 2] for n, v in by_n.items()}
            out[f"{rpc} {low}->{high}"] = round(median[high] / max(median[low], 1e-9), 2)
    return out


COLUMNS = (
    "servers",
    "rpc",
    "clients",
    "calls",
    "throughput",
    "throughput_per_server",
    "p50_ms",
    "p99_ms",
    "server_cpu_ms_per_call",
    "redis_cpu_ms_per_call",
    "redis_cpu_share",
)


def write_report(report: dict[str, Any], out: Path, command: str) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    (out / "scaling.json").write_text(json.dumps({"command": command, **report}, indent=2))
    lines = [
        "# Scale-out",
        "",
        f"`{command}`: {report['nodes']} nodes, {report['lines']}-line orders, "
        f"{report['cores']} cores here (clients share them).",
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
    ]
    for p in report["points"]:
        lines.append("| " + " | ".join(str(p[c]) for c in COLUMNS) + " |")
    lines += ["", "Throughput growth (median): " + json.dumps(report["growth"]), ""]
    path = out / "scaling.md"
    path.write_text("\n".join(lines))
    return path
