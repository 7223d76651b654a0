"""The one error interceptor: typed errors keep their status, anything else is INTERNAL with a
reference that is also in the log, and streamed requests are covered as well as unary ones."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from allocation_engine.adapters.clock import FakeClock
from allocation_engine.adapters.memory.inventory import MemoryStore
from allocation_engine.api.server import AllocationServer
from allocation_engine.errors import StoreUnavailable
from allocation_engine.proto.allocation.v1 import allocation_pb2 as apb
from allocation_engine.proto.allocation.v1 import allocation_pb2_grpc as apb_grpc
from allocation_engine.proto.allocation.v1 import inventory_pb2 as ipb
from allocation_engine.proto.allocation.v1 import inventory_pb2_grpc as ipb_grpc
from tests.support.grpc_inventory import bad_fields, order, seed_tiny, start_server

REF = re.compile(r"^internal error \(ref ([0-9a-f]+)\)$")


class Secret(Exception):
    """A bug whose text must never reach the caller."""


def boom(*args: object, **kwargs: object) -> None:
    raise Secret("password=hunter2")


@pytest.fixture
def server() -> Iterator[AllocationServer]:
    store = MemoryStore()
    seed_tiny(store)
    server = start_server(store, FakeClock())
    yield server
    server.stop(0)


@pytest.fixture
def channel(server: AllocationServer) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(server.address) as channel:
        yield channel


def snapshot(version: int = 2) -> Iterator[ipb.SnapshotChunk]:
    yield ipb.SnapshotChunk(
        version=version, positions=[ipb.SnapshotPosition(node_id="WH-FRA", sku="A", on_hand=1)]
    )


def test_a_bug_in_a_unary_call_is_internal_with_a_logged_ref(
    server: AllocationServer,
    channel: grpc.Channel,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Given a use case that raises an unexpected error, when Allocate is called, then the
    caller gets INTERNAL with a reference only, and the log has that reference and the
    traceback."""
    monkeypatch.setattr(server.services.planner, "plan", boom)
    stub = apb_grpc.AllocationServiceStub(channel)
    with (
        caplog.at_level(logging.ERROR, "allocation_engine.server"),
        pytest.raises(grpc.RpcError) as caught,
    ):
        stub.Allocate(apb.AllocateRequest(order=order(A=1)))
    assert caught.value.code() == grpc.StatusCode.INTERNAL
    message = caught.value.details() or ""
    assert "hunter2" not in message and "Secret" not in message
    found = REF.match(message)
    assert found, message
    (record,) = [r for r in caplog.records if found.group(1) in r.getMessage()]
    assert "Allocate" in record.getMessage()
    assert record.exc_info is not None and record.exc_info[0] is Secret


def test_a_bug_in_a_streamed_request_is_internal_too(
    server: AllocationServer,
    channel: grpc.Channel,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """ApplySnapshot (stream-unary) goes through the same interceptor."""
    monkeypatch.setattr(server.services.inventory, "apply_snapshot", boom)
    with (
        caplog.at_level(logging.ERROR, "allocation_engine.server"),
        pytest.raises(grpc.RpcError) as caught,
    ):
        ipb_grpc.InventoryServiceStub(channel).ApplySnapshot(snapshot())
    assert caught.value.code() == grpc.StatusCode.INTERNAL
    found = REF.match(caught.value.details() or "")
    assert found
    assert any(found.group(1) in r.getMessage() for r in caplog.records)


def test_typed_errors_in_a_streamed_request_keep_their_status(
    server: AllocationServer, channel: grpc.Channel, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store outage while a snapshot streams in is UNAVAILABLE, not INTERNAL."""

    def down(*args: object) -> None:
        raise StoreUnavailable("redis went away")

    monkeypatch.setattr(server.services.inventory, "apply_snapshot", down)
    with pytest.raises(grpc.RpcError) as caught:
        ipb_grpc.InventoryServiceStub(channel).ApplySnapshot(snapshot())
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert caught.value.details() == "redis went away"


def test_bad_input_keeps_its_field_violations(channel: grpc.Channel) -> None:
    """INVALID_ARGUMENT still carries BadRequest, with each field named once from the request."""
    with pytest.raises(grpc.RpcError) as caught:
        apb_grpc.AllocationServiceStub(channel).Allocate(
            apb.AllocateRequest(order=order(A=-1, NOPE=1))
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad_fields(caught.value) == ["order.lines[0].quantity"]


def test_a_planning_refusal_is_named_under_the_order(channel: grpc.Channel) -> None:
    """A sku no node carries is found by the engine and still named `order.lines[i].sku`."""
    with pytest.raises(grpc.RpcError) as caught:
        apb_grpc.AllocationServiceStub(channel).Allocate(
            apb.AllocateRequest(order=order(A=1, NOPE=1))
        )
    assert bad_fields(caught.value) == ["order.lines[1].sku"]


def test_services_that_abort_on_their_own_are_left_alone(channel: grpc.Channel) -> None:
    """The health servicer answers an unknown service NOT_FOUND itself, through the interceptor."""
    stub: Any = health_pb2_grpc.HealthStub(channel)  # untyped generated code
    assert stub.Check(health_pb2.HealthCheckRequest()).status == (
        health_pb2.HealthCheckResponse.SERVING
    )
    with pytest.raises(grpc.RpcError) as caught:
        stub.Check(health_pb2.HealthCheckRequest(service="no.such.Service"))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


def test_health_and_sweep_go_through_the_service_layer(
    server: AllocationServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The health probe asks `Services.store_reachable`; the sweeper `Services.sweep_expired`."""

    def unreachable(*args: object) -> None:
        raise StoreUnavailable("down")

    monkeypatch.setattr(server.services.store, "ping", unreachable)
    assert server.services.store_reachable() is False
    assert server.check_store() is False
    monkeypatch.setattr(server.services.store, "due_reservations", unreachable)
    assert server.services.sweep_expired() == 0
    server.sweep()  # a store that is down is no error for the sweeper
