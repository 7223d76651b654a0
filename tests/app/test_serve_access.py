"""`serve` as an operator runs it: refused where it would be open, production over TLS with
tokens made by `allocation-engine tokens create`, and the CLI client reaching it with them."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from allocation_engine.api.access import NotProductionReady
from allocation_engine.api.client import ClientAuth, open_client_channel
from allocation_engine.app import serve
from allocation_engine.proto.allocation.v1 import inventory_pb2 as ipb
from allocation_engine.proto.allocation.v1 import inventory_pb2_grpc as ipb_grpc
from allocation_engine.testing.redis_process import free_port
from tests.support.certs import Authority

CLI = [sys.executable, "-m", "allocation_engine.cli"]
ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, env=ENV, timeout=60)


def test_auth_off_is_refused_off_loopback() -> None:
    """Given auth off, when the server would listen on every interface, then it refuses before
    binding, naming the host and the fix."""
    with pytest.raises(serve.AccessRefused, match=r"0\.0\.0\.0.*--auth"):
        serve.start(serve.ServeConfig(host="0.0.0.0", port=0))


def test_production_without_tls_or_callers_is_refused(redis_url: str) -> None:
    """Given production mode with no certificate and no registered caller, then start refuses
    and lists every missing piece."""
    config = serve.ServeConfig(
        port=0, redis_url=redis_url, access=serve.AccessConfig(auth=True, production=True)
    )
    with pytest.raises(NotProductionReady) as refused:
        serve.start(config)
    assert {"no TLS certificate (tls_cert)", "no TLS key (tls_key)"} <= set(refused.value.problems)
    assert any("no live caller" in problem for problem in refused.value.problems)


def test_the_cli_says_why_production_refuses(redis_url: str) -> None:
    done = cli("serve", "--production", "--redis-url", redis_url, "--port", str(free_port()))
    assert done.returncode == 2
    assert "refusing to start in production" in done.stderr and "tls_cert" in done.stderr


def test_auth_over_memory_prints_a_development_token() -> None:
    """Given --auth over the in-memory store, the started server holds a development admin
    token: without it a call is UNAUTHENTICATED, with it the call is answered; health is open."""
    running = serve.start(serve.ServeConfig(port=0, access=serve.AccessConfig(auth=True)))
    try:
        assert running.dev_token
        with open_client_channel(running.address) as plain:
            health = health_pb2_grpc.HealthStub(plain).Check(health_pb2.HealthCheckRequest())
            assert health.status == health_pb2.HealthCheckResponse.SERVING
            with pytest.raises(grpc.RpcError) as refused:
                ipb_grpc.InventoryServiceStub(plain).ListNodes(ipb.ListNodesRequest())
            assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
        auth = ClientAuth(token=running.dev_token)
        with open_client_channel(running.address, auth) as channel:
            ipb_grpc.InventoryServiceStub(channel).ListNodes(ipb.ListNodesRequest())
    finally:
        running.stop(grace=0)


@pytest.fixture
def production(redis_url: str, tmp_path: Path) -> Iterator[tuple[str, Authority, dict[str, str]]]:
    """A `serve --production` process over TLS on Redis, with an ERP and a shop token made by
    the tokens command before it starts."""
    authority = Authority(tmp_path)
    server = authority.issue("localhost", server=True)
    tokens = {}
    for name, role, extra in (("erp-1", "erp", ()), ("shop-1", "shop", ("--channel", "web"))):
        made = cli("tokens", "create", "--redis-url", redis_url, "--name", name, "--role", role,
                   *extra)  # fmt: skip
        assert made.returncode == 0, made.stderr
        tokens[role] = made.stdout.split("store it now): ")[1].split()[0]
    port = free_port()
    process = subprocess.Popen(
        [*CLI, "serve", "--production", "--redis-url", redis_url, "--port", str(port),
         "--tls-cert", str(server.cert), "--tls-key", str(server.key), "--no-outbox"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=ENV,
    )  # fmt: skip
    assert process.stdout is not None
    line = process.stdout.readline().decode()
    assert "serving on" in line and "(TLS)" in line, line
    try:
        yield f"localhost:{port}", authority, tokens
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_production_serves_tls_to_the_cli_with_its_token(
    production: tuple[str, Authority, dict[str, str]],
) -> None:
    """Given a production server, the CLI with the CA and the ERP's token reads stock; the
    shop's token may not load a snapshot; no token is UNAUTHENTICATED; without the CA there is
    no handshake at all."""
    target, authority, tokens = production
    access = ["--target", target, "--ca", str(authority.pair.cert)]
    read = cli("availability", "SKU-0001", *access, "--token", tokens["erp"], "--json")
    assert read.returncode == 0, read.stderr + read.stdout
    snapshot = ["load-snapshot", "examples/inventory.csv", "--version", "2", *access]
    denied = cli(*snapshot, "--token", tokens["shop"])
    assert denied.returncode == 1 and "PERMISSION_DENIED" in denied.stdout + denied.stderr
    anonymous = cli("availability", "SKU-0001", *access)
    assert anonymous.returncode == 1 and "UNAUTHENTICATED" in anonymous.stdout + anonymous.stderr
    plaintext = cli("availability", "SKU-0001", "--target", target, "--token", tokens["erp"],
                    "--timeout", "3")  # fmt: skip
    assert plaintext.returncode == 1 and "UNAVAILABLE" in plaintext.stdout + plaintext.stderr
