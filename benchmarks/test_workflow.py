"""The order workflow's own cost: one B2C order's life (placed and paid by card at checkout,
allocated, captured, released, shipped, delivered) through `OrderFlow`, on the in-memory stores
and on Redis, with the card test peer over local HTTP. Wired exactly as `serve --demo` wires it
(`OrderRuntime.build`) on the demo network; the outbox dispatcher is left out, so this is the
synchronous part a caller waits for.

`make bench` times 30 orders per store; under `make test` (benchmarks disabled) each runs once.
Nothing here asserts a speed.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from allocation_engine.adapters.clock import SystemClock
from allocation_engine.adapters.memory.inventory import MemoryStore
from allocation_engine.adapters.redis.inventory import RedisStore
from allocation_engine.app.orders import OrderConfig, OrderRuntime
from allocation_engine.app.serve import seed_demo
from allocation_engine.engine import ShipTo, default_rules
from allocation_engine.engine.rules import default_rules_text
from allocation_engine.orders.commands import (
    CustomerInfo,
    PlaceOrder,
    RecordDelivery,
    RecordShipment,
)
from allocation_engine.orders.machines import OrderState
from allocation_engine.orders.model import Address, Item
from allocation_engine.ports.inventory import InventoryStore
from allocation_engine.service import Services
from allocation_engine.testing.redis_process import RedisNotAvailable, throwaway_redis

ROUNDS = 30


@pytest.fixture(params=["memory", "redis"])
def runtime(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OrderRuntime]:
    def build(store: InventoryStore, redis_url: str | None) -> OrderRuntime:
        services = Services.build(store, SystemClock(), default_rules(), default_rules_text())
        seed_demo(services)
        config = OrderConfig(
            redis_url=redis_url,
            mail_dir=str(tmp_path / "mail"),
            wms_dir=str(tmp_path / "wms"),
            demo=True,
            dispatch=False,
        )
        return OrderRuntime.build(services, config, SystemClock())

    if request.param == "memory":
        built = build(MemoryStore(), None)
        yield built
        built.stop()
        return
    try:
        with throwaway_redis() as url:
            built = build(RedisStore.from_url(url), url)
            yield built
            built.stop()
    except RedisNotAvailable as missing:
        pytest.skip(str(missing))


def test_one_b2c_order_from_checkout_to_delivery(
    benchmark: BenchmarkFixture, runtime: OrderRuntime
) -> None:
    numbers = itertools.count(1)
    flow = runtime.flow

    def life() -> OrderState:
        record = flow.place(
            PlaceOrder(
                channel="web",
                external_id=f"bench-{next(numbers)}",
                customer=CustomerInfo(email="bench@example.com", name="Bench"),
                items=(Item("SKU-0001", 1, 1990, "Cup"), Item("SKU-0042", 1, 4900, "Jug")),
                ship_to=ShipTo(50.94, 6.96, "DE", "50667"),
                address=Address("Bench", "Hohe Str. 1", "50667", "Koeln", "DE"),
                payment_method="pm_card_visa",
            )
        ).record
        for s in record.shipments:
            flow.record_shipment(RecordShipment(record.id, s.id, "DHL", "1", f"s-{s.id}"))
            record = flow.record_delivery(RecordDelivery(record.id, s.id, f"d-{s.id}"))
        return record.state

    state = benchmark.pedantic(life, rounds=ROUNDS, iterations=1)
    assert state is OrderState.DELIVERED
    benchmark.extra_info["orders"] = ROUNDS
