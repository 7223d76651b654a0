"""`serve --workers N`: N real server processes on one port and one real redis-server."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from allocation_engine.app.orders import OrderConfig
from allocation_engine.app.serve import ServeConfig
from allocation_engine.app.workers import Workers
from allocation_engine.errors import InvalidInput
from allocation_engine.proto.allocation.v1 import allocation_pb2 as apb
from allocation_engine.proto.allocation.v1 import allocation_pb2_grpc as apb_grpc
from allocation_engine.proto.allocation.v1 import common_pb2 as cpb
from allocation_engine.testing.redis_process import free_port
from tests.support.processes import alive

ORDER = cpb.Order(
    id="w-1",
    lines=[cpb.OrderLine(sku="SKU-0001", quantity=1), cpb.OrderLine(sku="SKU-0042", quantity=1)],
    ship_to=cpb.ShipTo(latitude=50.11, longitude=8.68, country="DE"),
)


def config(redis_url: str, port: int) -> ServeConfig:
    return ServeConfig(
        port=port,
        redis_url=redis_url,
        demo=True,
        threads=4,
        orders=OrderConfig(redis_url=redis_url, dispatch=False),
    )


def accepted_on(pid: int, port: int) -> int:
    """How many established TCP connections with local port `port` process `pid` holds."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            if local_port == port and fields[3] == "01" and fields[9] in inodes:
                count += 1
    return count


def allocate_over_new_channels(target: str, channels: int) -> None:
    for _ in range(channels):
        with grpc.insecure_channel(target) as channel:
            stub = apb_grpc.AllocationServiceStub(channel)
            answer = stub.Allocate(apb.AllocateRequest(order=ORDER), timeout=30)
            assert answer.plan.status == apb.PLAN_STATUS_OPTIMAL


@pytest.fixture
def workers(redis_url: str) -> Iterator[Workers]:
    with Workers(config(redis_url, free_port()), 2, grace=2) as started:
        yield started


def test_two_workers_on_one_port_both_serve(workers: Workers) -> None:
    assert len(workers.pids) == 2
    port = int(workers.address.rsplit(":", 1)[1])
    held: list[grpc.Channel] = []
    try:
        # connections stay open so each process's accepted sockets can be counted
        for _ in range(24):
            channel = grpc.insecure_channel(  # its own connection, not the process's shared one
                workers.address, options=[("grpc.use_local_subchannel_pool", 1)]
            )
            apb_grpc.AllocationServiceStub(channel).Allocate(
                apb.AllocateRequest(order=ORDER), timeout=30
            )
            held.append(channel)
        per_pid = {pid: accepted_on(pid, port) for pid in workers.pids}
    finally:
        for channel in held:
            channel.close()
    assert sum(per_pid.values()) == 24, per_pid
    assert all(n > 0 for n in per_pid.values()), per_pid  # 2**-23 to fail by chance


def test_a_killed_worker_is_replaced(workers: Workers) -> None:
    first, second = workers.pids
    stopping = threading.Event()
    watcher = threading.Thread(target=workers.supervise, args=(stopping, 0.1), daemon=True)
    watcher.start()
    try:
        os.kill(second, signal.SIGKILL)
        deadline = time.monotonic() + 90
        while workers.pids[1:] == [second] or len(workers.pids) < 2:
            assert time.monotonic() < deadline, "the killed worker was not replaced"
            time.sleep(0.1)
        assert workers.pids[0] == first
        assert workers.restarts and workers.restarts[0][:2] == (1, second)
        while not alive(workers.pids[1]):
            time.sleep(0.1)
        allocate_over_new_channels(workers.address, 4)
    finally:
        stopping.set()
        watcher.join(timeout=10)


def test_more_than_one_worker_needs_redis() -> None:
    with pytest.raises(InvalidInput, match="redis-url"):
        Workers(ServeConfig(port=free_port()), 2)
