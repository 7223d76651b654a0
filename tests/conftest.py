"""Fixtures shared by every test package.

`redis_server` starts a throwaway redis-server on a free port for the session (installing the
Debian package first when the binary is missing and we run as root) and stops it afterwards. It
never touches a Redis it did not start. `redis_url` hands each test an empty database on it, and
`store` runs a test once against the in-memory store and once against Redis.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from allocation_engine.adapters.memory_store import MemoryStore
from allocation_engine.adapters.redis_store import RedisStore
from allocation_engine.engine.ports import InventoryStore
from allocation_engine.redis_process import RedisNotAvailable, throwaway_redis


@pytest.fixture(scope="session")
def redis_server() -> Iterator[str]:
    """The URL of a redis-server this session started on a free port; stopped at the end."""
    try:
        with throwaway_redis() as url:
            yield url
    except RedisNotAvailable as missing:
        pytest.skip(str(missing))


@pytest.fixture
def redis_url(redis_server: str) -> Iterator[str]:
    """An empty database on the session's own redis-server (flushed before each test)."""
    client = redis.Redis.from_url(redis_server)
    client.flushall()
    client.close()
    yield redis_server


@pytest.fixture(params=["memory", "redis", "redis-cluster-layout"])
def store(request: pytest.FixtureRequest) -> InventoryStore:
    """An empty store of each kind: in memory, and Redis on the session's redis-server, once as
    a single Redis and once writing views the way Redis Cluster needs (a second step)."""
    if request.param == "memory":
        return MemoryStore()
    url = request.getfixturevalue("redis_url")
    return RedisStore.from_url(url, cluster_layout=request.param == "redis-cluster-layout")
