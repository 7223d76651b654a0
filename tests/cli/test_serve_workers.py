"""`serve --workers N` from the command line: N processes on one port, stopped together."""

from __future__ import annotations

import re
import signal
import subprocess
import sys

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from allocation_engine.proto.allocation.v1 import inventory_pb2 as ipb
from allocation_engine.proto.allocation.v1 import inventory_pb2_grpc as ipb_grpc
from allocation_engine.testing.redis_process import free_port
from tests.support.processes import alive

CLI = [sys.executable, "-m", "allocation_engine.cli", "serve"]


@pytest.mark.parametrize("kind", ["redis", "redis-cluster"])
def test_serve_workers_runs_processes_on_one_port_until_sigterm(
    kind: str, request: pytest.FixtureRequest
) -> None:
    """Given `serve --workers 2` on Redis (`--redis-url`) or a Redis Cluster
    (`--redis-cluster host:port,...`), two child processes serve the one port with the demo
    network (stock answers), and SIGTERM to the supervisor stops both with exit code 0."""
    port = free_port()
    if kind == "redis":
        store = ["--redis-url", request.getfixturevalue("redis_url")]
    else:
        url = request.getfixturevalue("redis_cluster_url")
        store = ["--redis-cluster", url.removeprefix("redis+cluster://")]
    command = [*CLI, "--workers", "2", *store, "--port", str(port), "--demo"]
    supervisor = subprocess.Popen(
        [*command, "--no-outbox", "--threads", "4"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert supervisor.stdout is not None
        line = supervisor.stdout.readline()
        found = re.search(r"2 worker processes on \S+ \(pids (\d+), (\d+)\)", line)
        assert found, line
        pids = [int(found.group(1)), int(found.group(2))]
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            answer = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
            stock = ipb_grpc.InventoryServiceStub(channel).GetAvailability(
                ipb.GetAvailabilityRequest(skus=["SKU-0001"])
            )
        assert answer.status == health_pb2.HealthCheckResponse.SERVING
        assert sum(sku.on_hand for sku in stock.skus) > 0
        supervisor.send_signal(signal.SIGTERM)
        assert supervisor.wait(timeout=60) == 0
        assert not any(alive(pid) for pid in pids)
    finally:
        if supervisor.poll() is None:
            supervisor.kill()
            supervisor.wait()


def test_serve_workers_on_the_memory_store_is_refused() -> None:
    """Each process would hold its own stock: refused, naming the option to add."""
    done = subprocess.run(
        [*CLI, "--workers", "2", "--port", str(free_port())],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "redis-url" in done.stderr
    assert "serving on" not in done.stdout
