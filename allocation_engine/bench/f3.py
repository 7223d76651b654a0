"""F3, the service end to end: Allocate and Reserve over gRPC against Redis.

`measure_f3()` does a whole run and returns plain numbers, for `benchmarks/test_f3_service.py`
and for the `allocation-engine bench` report:

    from allocation_engine.service_bench import measure_f3

    figures = measure_f3(quick=False)
    figures["allocate_latency"].p99_ms      # one client, closed loop: latency without queueing
    figures["allocate_throughput"].throughput
    figures["reserve_hot"].throughput       # many clients reserving the same few hot skus

It starts its own redis-server (never one it did not start), loads the F3 network (1,000 nodes:
5% warehouses, 90% stores, 5% drop-ship suppliers across Germany; 2,000 skus, each node carrying
10% of them; plus a few hot skus every warehouse carries deeply), starts `server_processes`
server processes sharing one port (SO_REUSEPORT), and runs the load
generator (`loadgen.py`) against them. Everything it started is stopped when it returns.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.process
import signal
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import grpc
import numpy as np
from grpc_health.v1 import health_pb2, health_pb2_grpc

from allocation_engine.app.serve import open_inventory
from allocation_engine.bench.loadgen import GERMANY, LoadResult, Workload, run_load
from allocation_engine.engine import Node, NodeType
from allocation_engine.ports.inventory import SnapshotLine
from allocation_engine.testing.redis_process import free_port, throwaway_redis

HOT_SKUS = tuple(f"HOT-{i}" for i in range(1, 6))


@dataclass(frozen=True)
class F3Network:
    nodes: list[Node]
    skus: tuple[str, ...]
    positions: int


def f3_network(
    nodes: int = 1_000, skus: int = 2_000, seed: int = 3
) -> tuple[list[Node], tuple[str, ...]]:
    """The F3 nodes and sku names, generated from `seed`."""
    rng = np.random.default_rng(seed)
    lat_min, lat_max, lon_min, lon_max = GERMANY
    kinds = [NodeType.WAREHOUSE] * (nodes // 20) + [NodeType.SUPPLIER] * (nodes // 20)
    kinds += [NodeType.STORE] * (nodes - len(kinds))
    network = [
        Node(
            f"{kind.value[:2].upper()}-{i:05d}",
            kind,
            float(rng.uniform(lat_min, lat_max)),
            float(rng.uniform(lon_min, lon_max)),
            "DE",
            unit_handling_cost=0.25 if kind is NodeType.STORE else 0.0,
            shipment_surcharge=1.5 if kind is NodeType.SUPPLIER else 0.0,
        )
        for i, kind in enumerate(kinds)
    ]
    return network, tuple(f"SKU-{j:05d}" for j in range(skus))


def f3_stock(
    network: Sequence[Node], skus: Sequence[str], density: float = 0.1, seed: int = 4
) -> Iterator[list[SnapshotLine]]:
    """Stock lines node by node: each node carries `density` of the skus; warehouses also
    carry the hot skus a million deep, so Reserve on them never runs dry during a run."""
    rng = np.random.default_rng(seed)
    for node in network:
        carried = np.flatnonzero(rng.random(len(skus)) < density)
        depth = (20, 200) if node.type is NodeType.WAREHOUSE else (1, 8)
        on_hand = rng.integers(*depth, size=len(carried))
        lines = [
            SnapshotLine(node.id, skus[int(j)], int(q), 0)
            for j, q in zip(carried, on_hand, strict=True)
        ]
        if node.type is NodeType.WAREHOUSE:
            lines += [SnapshotLine(node.id, sku, 1_000_000, 0) for sku in HOT_SKUS]
        yield lines


def seed_f3(redis_url: str, nodes: int, skus: int, density: float) -> F3Network:
    """Loads the F3 network and stock into Redis; returns what it loaded."""
    store = open_inventory(redis_url)
    network, names = f3_network(nodes, skus)
    store.upsert_nodes(network)
    positions = 0
    batch: list[SnapshotLine] = []
    for lines in f3_stock(network, names, density):
        batch += lines
        if len(batch) >= 20_000:
            store.apply_snapshot(1, batch)
            positions, batch = positions + len(batch), []
    if batch:
        store.apply_snapshot(1, batch)
        positions += len(batch)
    return F3Network(network, names, positions)


def _serve(redis_url: str, port: int, workers: int) -> None:
    """One server process: the allocation, inventory and rules services over Redis."""
    from allocation_engine.api.server import AllocationServer
    from allocation_engine.app.serve import build_services

    server = AllocationServer(
        build_services(redis_url), port=port, threads=workers, reuse_port=True
    ).start()
    signal.signal(signal.SIGTERM, lambda signum, frame: server.stop(grace=5))
    server.wait()


@contextmanager
def running_servers(redis_url: str, processes: int = 2, workers: int = 16) -> Iterator[str]:
    """`processes` server processes on one port over `redis_url`; yields the target address."""
    port = free_port()
    context = multiprocessing.get_context("spawn")
    started = [
        context.Process(target=_serve, args=(redis_url, port, workers), daemon=True)
        for _ in range(processes)
    ]
    for process in started:
        process.start()
    target = f"127.0.0.1:{port}"
    try:
        _await_serving(target, started)
        yield target
    finally:
        for process in started:
            process.terminate()
        for process in started:
            process.join(timeout=20)
            if process.is_alive():
                process.kill()
                process.join()


def _await_serving(target: str, processes: Sequence[multiprocessing.process.BaseProcess]) -> None:
    deadline = time.monotonic() + 60
    with grpc.insecure_channel(target) as channel:
        stub: Any = health_pb2_grpc.HealthStub(channel)  # its stubs lack the methods
        while True:
            if any(not p.is_alive() for p in processes):
                raise RuntimeError("a server process exited while starting")
            try:
                answer = stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
                if answer.status == health_pb2.HealthCheckResponse.SERVING:
                    time.sleep(1.0)  # let the other processes finish starting too
                    return
            except grpc.RpcError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"no server answered on {target} within 60 s")
            time.sleep(0.2)


def measure_f3(
    quick: bool = False,
    nodes: int = 1_000,
    server_processes: int = 2,
    duration: float | None = None,
    reserve_clients: int = 6,
) -> dict[str, LoadResult]:
    """Runs F3 and returns `allocate_latency` (1 client), `allocate_throughput` (4 clients)
    and `reserve_hot` (`reserve_clients` clients on the hot skus). `quick` shrinks the network
    to 100 nodes and the runs to one second, for a smoke test."""
    if quick:
        nodes, duration = 100, duration or 1.0
    duration = duration or 10.0
    with throwaway_redis() as url:
        loaded = seed_f3(url, nodes=nodes, skus=2_000, density=0.1)
        with running_servers(url, processes=server_processes) as target:
            allocate = Workload(rpc="allocate", skus=loaded.skus, lines=3, seed=1)
            reserve = Workload(rpc="reserve", skus=HOT_SKUS, lines=2, max_quantity=1, seed=2)
            return {
                "allocate_latency": run_load(target, allocate, clients=1, duration=duration),
                "allocate_throughput": run_load(target, allocate, clients=4, duration=duration),
                "reserve_hot": run_load(
                    target, reserve, clients=reserve_clients, duration=duration
                ),
            }
