"""The composition root of `allocation-engine feed`: the ERP feeds over the Redis store, and the
drop folder that applies what lands in a directory."""

from __future__ import annotations

from pathlib import Path

from allocation_engine.adapters.clock import SystemClock
from allocation_engine.adapters.feeds.drop_folder import DropFolder
from allocation_engine.adapters.redis.inventory import RedisStore
from allocation_engine.engine import default_rules
from allocation_engine.errors import IdempotencyConflict, InvalidInput, VersionConflict
from allocation_engine.ports.inventory import InventoryStore
from allocation_engine.service.feeds.erp import ErpFeeds
from allocation_engine.service.feeds.table import explain
from allocation_engine.service.inventory import InventoryFeeds
from allocation_engine.service.planner import Planner


def erp_feeds(store: InventoryStore) -> ErpFeeds:
    """The ERP feeds over `store` (rules are not needed: a feed plans nothing)."""
    planner = Planner(store, SystemClock(), default_rules())
    return ErpFeeds(store, InventoryFeeds(store, planner), planner)


def open_erp_feeds(redis_url: str) -> ErpFeeds:
    """The ERP feeds over the Redis at `redis_url`."""
    return erp_feeds(RedisStore.from_url(redis_url))


def refusal(error: Exception) -> str | None:
    """Why a feed file is refused for good (bad rows, an older snapshot, a reused key), or None
    for an error worth retrying (the store did not answer)."""
    if isinstance(error, InvalidInput):
        return explain(error)
    if isinstance(error, VersionConflict | IdempotencyConflict):
        return str(error)
    if isinstance(error, OSError) and not isinstance(error, FileNotFoundError):
        return f"cannot be read: {error.strerror or error}"
    return None


def erp_drop_folder(folder: Path, feeds: ErpFeeds, settle_seconds: float = 1.0) -> DropFolder:
    """A drop folder applying every ERP file written into `folder`."""
    return DropFolder(folder, feeds.apply, refusal, settle_seconds)
