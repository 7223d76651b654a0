"""GetDeliveryOptions against Allocate on the same cart, over gRPC against Redis.

One server in this process over a throwaway redis-server loaded with the F3 network at 300 nodes
(15 warehouses, 270 stores, 15 drop-ship suppliers across Germany; 2,000 skus, each node carrying
10% of them), one client, closed loop. The same three-line cart to Cologne is asked as Allocate
(home delivery), as GetDeliveryOptions for home delivery only (`pickup_stores=0`) and for home
delivery plus click & collect at the three nearest stores (the default). pytest-benchmark's
statistics (the median) are what the README quotes; nothing here asserts a speed. Under
`make test` (benchmarks disabled) each case runs once, so the harness cannot rot.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import grpc
import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from allocation_engine.adapters.clock import SystemClock
from allocation_engine.adapters.redis.inventory import RedisStore
from allocation_engine.api.server import AllocationServer
from allocation_engine.bench.f3 import f3_network, f3_stock
from allocation_engine.engine import default_rules
from allocation_engine.engine.rules import default_rules_text
from allocation_engine.proto.allocation.v1 import allocation_pb2 as apb
from allocation_engine.proto.allocation.v1 import allocation_pb2_grpc as apb_grpc
from allocation_engine.proto.allocation.v1 import common_pb2 as cpb
from allocation_engine.proto.allocation.v1 import promise_pb2 as ppb
from allocation_engine.proto.allocation.v1 import promise_pb2_grpc as ppb_grpc
from allocation_engine.service import Services
from allocation_engine.testing.redis_process import RedisNotAvailable, throwaway_redis

NODES = 300
COLOGNE = cpb.ShipTo(latitude=50.94, longitude=6.96, country="DE", postal_code="50667")


@dataclass(frozen=True)
class Stubs:
    allocation: apb_grpc.AllocationServiceStub
    promise: ppb_grpc.PromiseServiceStub
    lines: tuple[cpb.OrderLine, ...]


@pytest.fixture(scope="module")
def stubs() -> Iterator[Stubs]:
    try:
        with throwaway_redis() as url:
            store = RedisStore.from_url(url)
            network, skus = f3_network(NODES, 2_000)
            store.upsert_nodes(network)
            for lines in f3_stock(network, skus):
                store.apply_snapshot(1, lines)
            services = Services.build(store, SystemClock(), default_rules(), default_rules_text())
            server = AllocationServer(services, port=0, health_interval=3600).start()
            try:
                with grpc.insecure_channel(server.address) as channel:
                    cart = tuple(cpb.OrderLine(sku=sku, quantity=1) for sku in skus[:3])
                    yield Stubs(
                        apb_grpc.AllocationServiceStub(channel),
                        ppb_grpc.PromiseServiceStub(channel),
                        cart,
                    )
            finally:
                server.stop(grace=0)
    except RedisNotAvailable as missing:
        pytest.skip(str(missing))


def test_allocate_the_cart(benchmark: BenchmarkFixture, stubs: Stubs) -> None:
    """Allocate of the cart as a home-delivery order: the baseline."""
    request = apb.AllocateRequest(order=cpb.Order(id="o-1", lines=stubs.lines, ship_to=COLOGNE))
    plan = benchmark(stubs.allocation.Allocate, request).plan
    assert plan.status == apb.PLAN_STATUS_OPTIMAL


def test_delivery_options_home_only(benchmark: BenchmarkFixture, stubs: Stubs) -> None:
    """GetDeliveryOptions with pickup_stores=0: one plan, as Allocate, plus the dates."""
    request = ppb.GetDeliveryOptionsRequest(lines=stubs.lines, ship_to=COLOGNE, pickup_stores=0)
    answer = benchmark(stubs.promise.GetDeliveryOptions, request)
    assert answer.home_delivery.available and not answer.click_and_collect


def test_delivery_options_home_and_three_stores(benchmark: BenchmarkFixture, stubs: Stubs) -> None:
    """GetDeliveryOptions with the default three nearest stores: four plans."""
    request = ppb.GetDeliveryOptionsRequest(lines=stubs.lines, ship_to=COLOGNE)
    answer = benchmark(stubs.promise.GetDeliveryOptions, request)
    assert answer.home_delivery.available and len(answer.click_and_collect) == 3
