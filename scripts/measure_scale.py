"""Scale of one store: streams a 2-million-position snapshot through ApplySnapshot into Redis.

1,000 nodes x 20,000 skus at 10% density, generated chunk by chunk (nothing held whole), sent
over gRPC to a server process on a throwaway redis-server. Reports the load time, Redis memory
after the load, and the server's resident memory sampled while it streams (it should stay flat:
the server holds one chunk at a time). Not part of `make test`; run it with

    .venv/bin/python scripts/measure_scale.py [--nodes 1000] [--skus 20000] [--density 0.1]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import redis

from allocation_engine.api.convert.common import node_to_proto
from allocation_engine.bench.f3 import f3_network, running_servers
from allocation_engine.proto.allocation.v1 import allocation_pb2 as apb
from allocation_engine.proto.allocation.v1 import allocation_pb2_grpc as apb_grpc
from allocation_engine.proto.allocation.v1 import common_pb2 as cpb
from allocation_engine.proto.allocation.v1 import inventory_pb2 as ipb
from allocation_engine.proto.allocation.v1 import inventory_pb2_grpc as ipb_grpc
from allocation_engine.testing.redis_process import throwaway_redis


def chunks(
    node_ids: list[str], skus: int, density: float, size: int, sent: list[int]
) -> Iterator[ipb.SnapshotChunk]:
    """Snapshot chunks of `size` positions, node by node, generated as they are sent."""
    rng = np.random.default_rng(5)
    chunk = ipb.SnapshotChunk(version=1)
    for node_id in node_ids:
        carried = np.flatnonzero(rng.random(skus) < density)
        for j, on_hand in zip(carried, rng.integers(0, 50, size=len(carried)), strict=True):
            chunk.positions.add(node_id=node_id, sku=f"SKU-{j:05d}", on_hand=int(on_hand))
            if len(chunk.positions) == size:
                sent[0] += size
                yield chunk
                chunk = ipb.SnapshotChunk(version=1)
    if chunk.positions:
        sent[0] += len(chunk.positions)
        yield chunk


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nodes", type=int, default=1_000)
    parser.add_argument("--skus", type=int, default=20_000)
    parser.add_argument("--density", type=float, default=0.1)
    parser.add_argument("--chunk", type=int, default=5_000)
    args = parser.parse_args()
    network, _ = f3_network(args.nodes, args.skus)
    with throwaway_redis() as url, running_servers(url, processes=1) as target:
        client = redis.Redis.from_url(url)
        with grpc.insecure_channel(target) as channel:
            inventory = ipb_grpc.InventoryServiceStub(channel)
            inventory.UpsertNodes(
                ipb.UpsertNodesRequest(
                    idempotency_key="scale-nodes",
                    nodes=[node_to_proto(n) for n in network],
                )
            )
            baseline = client.info("memory")["used_memory"]
            samples: list[float] = []
            done = threading.Event()
            pid = _server_pid()

            def sample() -> None:
                while not done.wait(0.5):
                    samples.append(rss_mb(pid))

            sampler = threading.Thread(target=sample, daemon=True)
            sent = [0]
            rss_before = rss_mb(pid)
            began = time.perf_counter()
            sampler.start()
            answer = inventory.ApplySnapshot(
                chunks([n.id for n in network], args.skus, args.density, args.chunk, sent)
            )
            seconds = time.perf_counter() - began
            done.set()
            sampler.join()
            memory = client.info("memory")
            order = cpb.Order(
                id="scale-check",
                lines=[cpb.OrderLine(sku=f"SKU-{j:05d}", quantity=1) for j in (1, 2, 3)],
                ship_to=cpb.ShipTo(latitude=50.1, longitude=8.7, country="DE"),
            )
            plan = (
                apb_grpc.AllocationServiceStub(channel)
                .Allocate(apb.AllocateRequest(order=order))
                .plan
            )
    third = max(1, len(samples) // 3)
    print(
        json.dumps(
            {
                "positions": answer.positions_applied,
                "chunks": answer.chunks,
                "seconds": round(seconds, 1),
                "positions_per_second": round(answer.positions_applied / seconds),
                "redis_used_memory_mb": round(memory["used_memory"] / 2**20, 1),
                "redis_dataset_growth_mb": round((memory["used_memory"] - baseline) / 2**20, 1),
                "redis_peak_memory_mb": round(memory["used_memory_peak"] / 2**20, 1),
                "server_rss_mb_before": round(rss_before, 1),
                "server_rss_mb_first_third_max": round(max(samples[:third], default=0), 1),
                "server_rss_mb_last_third_max": round(max(samples[-third:], default=0), 1),
                "server_rss_mb_max": round(max(samples, default=0), 1),
                "allocate_after_load": apb.PlanStatus.Name(plan.status),
            },
            indent=2,
        )
    )


def _server_pid() -> int:
    """The pid of the one server process `running_servers` started (a child of ours)."""
    (child,) = multiprocessing.active_children()
    assert child.pid is not None
    return child.pid


if __name__ == "__main__":
    main()
