"""The composition root of `allocation-engine repair`: the Redis store and the system clock."""

from __future__ import annotations

from allocation_engine.adapters.clock import SystemClock
from allocation_engine.adapters.redis.inventory import RedisStore
from allocation_engine.service.repair import RepairReport, repair


def run_repair(redis_url: str, *, cluster_layout: bool | None = None) -> RepairReport:
    """One repair run over the inventory in the Redis at `redis_url`."""
    store = RedisStore.from_url(redis_url, cluster_layout=cluster_layout)
    return repair(store, SystemClock().now())
