"""Health, reflection, an unreachable store, and a graceful stop."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from allocation_engine.adapters.clock import FakeClock
from allocation_engine.adapters.redis.inventory import RedisStore
from allocation_engine.api.server import AllocationServer
from allocation_engine.proto.allocation.v1 import allocation_pb2 as apb
from allocation_engine.proto.allocation.v1 import allocation_pb2_grpc as apb_grpc
from allocation_engine.proto.allocation.v1 import inventory_pb2 as ipb
from allocation_engine.proto.allocation.v1 import inventory_pb2_grpc as ipb_grpc
from tests.support.grpc_inventory import order, start_server

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def health_of(channel: grpc.Channel, service: str = "") -> int:
    stub = health_pb2_grpc.HealthStub(channel)
    return stub.Check(health_pb2.HealthCheckRequest(service=service)).status


def test_health_is_serving_for_every_service(channel: grpc.Channel) -> None:
    assert health_of(channel) == SERVING
    assert health_of(channel, "allocation.v1.AllocationService") == SERVING


def test_reflection_lists_the_services(channel: grpc.Channel) -> None:
    """Generic clients (grpcurl and the like) discover the API by reflection."""
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    (answer,) = stub.ServerReflectionInfo(iter([request]))
    names = {s.name for s in answer.list_services_response.service}
    assert {
        "allocation.v1.AllocationService",
        "allocation.v1.InventoryService",
        "allocation.v1.RulesService",
        "grpc.health.v1.Health",
    } <= names


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def stranded() -> Iterator[AllocationServer]:
    """A server whose Redis is not there."""
    store = RedisStore.from_url(f"redis://127.0.0.1:{_closed_port()}/0")
    running = start_server(store, FakeClock())
    yield running
    running.stop(grace=0)


def test_an_unreachable_store_is_not_serving_and_unavailable(stranded: AllocationServer) -> None:
    with grpc.insecure_channel(stranded.address) as channel:
        assert health_of(channel) == NOT_SERVING
        with pytest.raises(grpc.RpcError) as caught:
            apb_grpc.AllocationServiceStub(channel).Allocate(apb.AllocateRequest(order=order(A=1)))
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE


@pytest.mark.parametrize("store", ["memory"], indirect=True)
def test_stop_goes_not_serving_and_lets_calls_in_flight_finish(
    server: AllocationServer,
) -> None:
    """A snapshot stream still open when the stop begins completes; health says NOT_SERVING."""
    release = threading.Event()

    def slow_stream() -> Iterator[ipb.SnapshotChunk]:
        yield ipb.SnapshotChunk(
            version=2, positions=[ipb.SnapshotPosition(node_id="WH-FRA", sku="A", on_hand=1)]
        )
        release.wait(10)
        yield ipb.SnapshotChunk(
            version=2, positions=[ipb.SnapshotPosition(node_id="WH-BER", sku="A", on_hand=1)]
        )

    with grpc.insecure_channel(server.address) as channel:
        call = ipb_grpc.InventoryServiceStub(channel).ApplySnapshot.future(slow_stream())
        time.sleep(0.2)
        stopping = threading.Thread(target=server.stop, args=(10,))
        stopping.start()
        time.sleep(0.2)
        answer = server.health.Check(health_pb2.HealthCheckRequest(service=""), None)
        assert answer.status == NOT_SERVING
        release.set()
        assert call.result(timeout=10).positions_applied == 2
        stopping.join(10)
        assert not stopping.is_alive()


def test_sigterm_stops_the_served_process_cleanly() -> None:
    """`allocation-engine serve` exits 0 on SIGTERM after saying so."""
    port = _closed_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "allocation_engine.cli", "serve", "--demo", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert f"serving on 127.0.0.1:{port}" in first
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            assert health_of(channel) == SERVING
        process.send_signal(signal.SIGTERM)
        out, _ = process.communicate(timeout=20)
        assert process.returncode == 0, out
        assert "stopped" in out
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
