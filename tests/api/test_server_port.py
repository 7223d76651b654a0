"""A server's port is its own: a second `serve` on a port in use fails at start with a clear
message and exit code instead of sharing the port (gRPC used to set SO_REUSEPORT, so the kernel
split connections between the two processes). Sharing it is a deliberate option (--reuse-port),
which the F3 benchmark's server processes ask for."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from allocation_engine.adapters.clock import FakeClock
from allocation_engine.adapters.memory.inventory import MemoryStore
from allocation_engine.api.server import AllocationServer, PortInUse
from allocation_engine.cli.main import main
from allocation_engine.cli.serve import PORT_IN_USE
from allocation_engine.engine import default_rules
from allocation_engine.engine.rules import default_rules_text
from allocation_engine.service import Services


def services() -> Services:
    return Services.build(MemoryStore(), FakeClock(), default_rules(), default_rules_text())


@pytest.fixture
def first() -> Iterator[AllocationServer]:
    server = AllocationServer(services(), port=0, health_interval=3600, sweep_interval=3600)
    server.start()
    yield server
    server.stop(grace=0)


def test_a_second_server_on_a_port_in_use_fails_at_start(first: AllocationServer) -> None:
    """Given a server on a port, when a second one is built on the same port, then it raises
    PortInUse naming the address; nothing is bound."""
    with pytest.raises(PortInUse) as caught:
        AllocationServer(services(), port=first.port)
    assert f"127.0.0.1:{first.port}" in str(caught.value)
    assert "--reuse-port" in str(caught.value)


def test_a_port_held_by_another_program_is_refused_too() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        with pytest.raises(PortInUse):
            AllocationServer(services(), port=holder.getsockname()[1])


def test_sharing_a_port_is_a_choice_each_process_makes() -> None:
    """Two servers that both ask for reuse_port share the port (the F3 scale-out)."""
    one = AllocationServer(services(), port=0, reuse_port=True).start()
    try:
        two = AllocationServer(services(), port=one.port, reuse_port=True).start()
        two.stop(grace=0)
        with pytest.raises(PortInUse):
            AllocationServer(services(), port=one.port)
    finally:
        one.stop(grace=0)


def test_serve_on_a_port_in_use_exits_with_a_message(
    first: AllocationServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`allocation-engine serve --port <taken>` prints one line saying the port is in use and
    how to share it on purpose, and exits with code 3, no traceback."""
    code = main(
        [
            "serve",
            "--port",
            str(first.port),
            "--demo",
            "--no-outbox",
            "--mail-dir",
            str(tmp_path / "mail"),
            "--wms-dir",
            str(tmp_path / "wms"),
        ]
    )
    assert code == PORT_IN_USE == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "in use" in err and "--reuse-port" in err
    assert "Traceback" not in err
