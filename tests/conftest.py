"""Fixtures shared by every test package.

`redis_server` starts a throwaway redis-server on a free port for the session (installing the
Debian package first when the binary is missing and we run as root) and stops it afterwards. It
never touches a Redis it did not start. `redis_url` hands each test an empty database on it, and
`store` runs a test once against the in-memory store and once against Redis.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
import redis

from allocation_engine.adapters.clock import FakeClock
from allocation_engine.adapters.memory.inventory import MemoryStore
from allocation_engine.adapters.memory.orders import MemoryOrders
from allocation_engine.adapters.payments.fake_provider import FakeCardProvider
from allocation_engine.adapters.redis.inventory import RedisStore
from allocation_engine.adapters.redis.orders import RedisOrders
from allocation_engine.api.server import AllocationServer
from allocation_engine.ports.inventory import InventoryStore
from allocation_engine.proto.allocation.v1 import allocation_pb2_grpc as apb_grpc
from allocation_engine.proto.allocation.v1 import inventory_pb2_grpc as ipb_grpc
from allocation_engine.proto.allocation.v1 import rules_pb2_grpc as rpb_grpc
from allocation_engine.testing.redis_cluster import ThrowawayCluster, throwaway_cluster
from allocation_engine.testing.redis_process import RedisNotAvailable, throwaway_redis
from tests.support.grpc_inventory import seed_tiny, start_server
from tests.support.orders import Mailbox, World, make_world
from tests.support.shop import Shop, open_shop


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


@pytest.fixture(scope="session")
def redis_cluster_server() -> Iterator[ThrowawayCluster]:
    """A real Redis Cluster (3 masters, 1 replica each) this session started on free ports."""
    try:
        with throwaway_cluster() as cluster:
            yield cluster
    except RedisNotAvailable as missing:
        pytest.skip(str(missing))


@pytest.fixture
def redis_cluster_url(redis_cluster_server: ThrowawayCluster) -> str:
    """The session's cluster, every master emptied first; a `redis+cluster://` URL."""
    redis_cluster_server.flush()
    return redis_cluster_server.url


@pytest.fixture(params=["redis", "redis-cluster"])
def any_redis_url(request: pytest.FixtureRequest) -> str:
    """An empty Redis of each kind: the session's redis-server, then its Redis Cluster."""
    return str(request.getfixturevalue(f"{request.param.replace('-', '_')}_url"))


@pytest.fixture(params=["memory", "redis", "redis-cluster-layout", "redis-cluster"])
def store(request: pytest.FixtureRequest) -> InventoryStore:
    """An empty store of each kind: in memory; Redis on the session's redis-server, once as a
    single Redis and once writing views the way Redis Cluster needs (a second step); and a real
    Redis Cluster of three masters."""
    if request.param == "memory":
        return MemoryStore()
    if request.param == "redis-cluster":
        return RedisStore.from_url(request.getfixturevalue("redis_cluster_url"))
    url = request.getfixturevalue("redis_url")
    return RedisStore.from_url(url, cluster_layout=request.param == "redis-cluster-layout")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def server(store: InventoryStore, clock: FakeClock) -> Iterator[AllocationServer]:
    seed_tiny(store)
    running = start_server(store, clock)
    yield running
    running.stop(grace=0)


@pytest.fixture
def channel(server: AllocationServer) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(server.address) as open_channel:
        yield open_channel


@pytest.fixture
def allocation(channel: grpc.Channel) -> apb_grpc.AllocationServiceStub:
    return apb_grpc.AllocationServiceStub(channel)


@pytest.fixture
def inventory(channel: grpc.Channel) -> ipb_grpc.InventoryServiceStub:
    return ipb_grpc.InventoryServiceStub(channel)


@pytest.fixture
def rules(channel: grpc.Channel) -> rpb_grpc.RulesServiceStub:
    return rpb_grpc.RulesServiceStub(channel)


@pytest.fixture
def card_peer() -> Iterator[FakeCardProvider]:
    peer = FakeCardProvider().start()
    yield peer
    peer.stop()


@pytest.fixture
def world(card_peer: FakeCardProvider, clock: FakeClock) -> World:
    """The workflow over the in-memory stores."""
    return make_world(MemoryStore(), MemoryOrders(lease_seconds=0.2), card_peer, clock)


@pytest.fixture(params=["memory", "redis"])
def any_world(
    request: pytest.FixtureRequest, card_peer: FakeCardProvider, clock: FakeClock
) -> World:
    """The workflow over the in-memory stores, then over Redis."""
    if request.param == "memory":
        return make_world(MemoryStore(), MemoryOrders(lease_seconds=0.2), card_peer, clock)
    url = request.getfixturevalue("redis_url")
    return make_world(
        RedisStore.from_url(url), RedisOrders.from_url(url, lease_seconds=0.2), card_peer, clock
    )


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    box = Mailbox().start()
    yield box
    box.stop()


@pytest.fixture
def shop(any_redis_url: str, mailbox: Mailbox, tmp_path: Path) -> Iterator[Shop]:
    """The order service over gRPC on a real redis-server (standalone, then a Cluster where the
    `any_redis_url` fixture says so), with a real SMTP server and the card test peer."""
    with open_shop(any_redis_url, mailbox, tmp_path) as running:
        yield running
