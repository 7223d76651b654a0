"""A load generator for the gRPC service: several client processes, latency percentiles and
throughput.

Use it like this (the server must be running; see `service_bench.py` for a complete F3 run):

    from allocation_engine.loadgen import Workload, run_load

    result = run_load(
        "127.0.0.1:50051",
        Workload(rpc="allocate", skus=("SKU-0001", "SKU-0002", "SKU-0003", "SKU-0004")),
        clients=4,
        duration=5.0,
    )
    print(result.throughput, result.p50_ms, result.p99_ms)

Each client is its own process (so the clients do not share one interpreter lock) with its own
channel, calling in a closed loop: the next call leaves when the last answer came back. All
clients start together after `warmup_calls` each, run for `duration` seconds, and report every
call's latency. Orders are generated from the `Workload` with a seed per client, so a run is
repeatable.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import random
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

import grpc
import numpy as np

from allocation_engine.proto.allocation.v1 import allocation_pb2 as apb
from allocation_engine.proto.allocation.v1 import allocation_pb2_grpc as apb_grpc
from allocation_engine.proto.allocation.v1 import common_pb2 as cpb

RPCS = ("allocate", "reserve")
GERMANY = (47.5, 54.5, 6.0, 14.5)  # latitude min, max, longitude min, max


@dataclass(frozen=True)
class Workload:
    """What the clients send: `rpc` is "allocate" or "reserve"; each order has `lines` distinct
    skus drawn from `skus`, 1..`max_quantity` units each, shipped to a random point in `area`."""

    rpc: str
    skus: tuple[str, ...]
    lines: int = 3
    max_quantity: int = 2
    area: tuple[float, float, float, float] = GERMANY
    country: str = "DE"
    ttl_seconds: int = 600
    timeout: float = 10.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.rpc not in RPCS:
            raise ValueError(f"rpc={self.rpc!r}: must be one of {RPCS}")
        if not 1 <= self.lines <= len(self.skus):
            raise ValueError(f"lines={self.lines}: must be in [1, {len(self.skus)}]")


@dataclass(frozen=True)
class LoadResult:
    """Latencies in milliseconds; throughput in successful calls per second."""

    rpc: str
    clients: int
    seconds: float
    calls: int
    errors: dict[str, int]
    throughput: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    mean_ms: float
    latencies_ms: list[float] = field(repr=False, default_factory=list)

    def summary(self) -> dict[str, Any]:
        """The result without the raw latencies (for JSON reports)."""
        out = asdict(self)
        out.pop("latencies_ms")
        return out


def _order(workload: Workload, rng: random.Random, order_id: str) -> cpb.Order:
    lat_min, lat_max, lon_min, lon_max = workload.area
    return cpb.Order(
        id=order_id,
        lines=[
            cpb.OrderLine(sku=sku, quantity=rng.randint(1, workload.max_quantity))
            for sku in rng.sample(workload.skus, workload.lines)
        ],
        ship_to=cpb.ShipTo(
            latitude=rng.uniform(lat_min, lat_max),
            longitude=rng.uniform(lon_min, lon_max),
            country=workload.country,
        ),
    )


def client_command(
    target: str,
    workload: Workload,
    index: int,
    duration: float,
    warmup_calls: int,
    barrier: Any,
    results: Any,
) -> None:
    """One client process: warm up, wait for the others, call for `duration`, report."""
    rng = random.Random(workload.seed * 1_000_003 + index)
    latencies: list[int] = []
    errors: Counter[str] = Counter()
    prefix = f"lg{workload.seed}-{index}-{time.time_ns()}"
    with grpc.insecure_channel(target) as channel:
        stub = apb_grpc.AllocationServiceStub(channel)

        def call(n: int) -> None:
            order = _order(workload, rng, f"{prefix}-{n}")
            if workload.rpc == "allocate":
                stub.Allocate(apb.AllocateRequest(order=order), timeout=workload.timeout)
            else:
                stub.Reserve(
                    apb.ReserveRequest(
                        idempotency_key=order.id, order=order, ttl_seconds=workload.ttl_seconds
                    ),
                    timeout=workload.timeout,
                )

        for n in range(warmup_calls):
            with contextlib.suppress(grpc.RpcError):
                call(-n - 1)
        barrier.wait()
        stop = time.perf_counter() + duration
        n = 0
        while time.perf_counter() < stop:
            began = time.perf_counter_ns()
            try:
                call(n)
                latencies.append(time.perf_counter_ns() - began)
            except grpc.RpcError as error:
                errors[error.code().name] += 1
            n += 1
    results.put((latencies, dict(errors)))


def run_load(
    target: str,
    workload: Workload,
    clients: int = 4,
    duration: float = 5.0,
    warmup_calls: int = 20,
) -> LoadResult:
    """Runs `clients` client processes against `target` for `duration` seconds.

    Returns the latency percentiles of the successful calls, the number of failed calls per
    status code, and the throughput (successful calls per second over all clients).
    """
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(clients + 1)
    results = context.Queue()
    processes = [
        context.Process(
            target=client_command,
            args=(target, workload, i, duration, warmup_calls, barrier, results),
            daemon=True,
        )
        for i in range(clients)
    ]
    for process in processes:
        process.start()
    barrier.wait(timeout=120)
    began = time.perf_counter()
    collected = [results.get(timeout=duration + 120) for _ in processes]
    seconds = time.perf_counter() - began
    for process in processes:
        process.join(timeout=30)
    latencies = np.array([x for got, _ in collected for x in got], dtype=np.float64) / 1e6
    errors: Counter[str] = Counter()
    for _, failed in collected:
        errors.update(failed)
    if len(latencies) == 0:
        latencies = np.array([np.nan])
    p50, p90, p99 = np.percentile(latencies, [50, 90, 99])
    ok = int(np.isfinite(latencies).sum())
    return LoadResult(
        rpc=workload.rpc,
        clients=clients,
        seconds=seconds,
        calls=ok + sum(errors.values()),
        errors=dict(errors),
        throughput=ok / duration,
        p50_ms=float(p50),
        p90_ms=float(p90),
        p99_ms=float(p99),
        max_ms=float(np.max(latencies)),
        mean_ms=float(np.mean(latencies)),
        latencies_ms=latencies.tolist(),
    )
