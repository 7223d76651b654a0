"""TLS and mTLS handshakes with certificates the test makes: a client trusting the CA talks
TLS with a token; under mTLS the client certificate's common name is the caller, and a client
without a certificate is refused in the handshake."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from allocation_engine.adapters.clock import FakeClock
from allocation_engine.api.access import NotProductionReady, production_ready
from allocation_engine.api.client import ClientAuth, open_client_channel
from allocation_engine.api.tls import server_credentials
from allocation_engine.errors import InvalidInput
from allocation_engine.proto.allocation.v1 import inventory_pb2 as ipb
from allocation_engine.proto.allocation.v1 import inventory_pb2_grpc as ipb_grpc
from allocation_engine.service.access import register
from tests.api.test_access import Edge, start_edge
from tests.support.certs import Authority
from tests.support.orders import World


@pytest.fixture
def ca(tmp_path: Path) -> Authority:
    return Authority(tmp_path)


def _list_nodes(channel: grpc.Channel) -> int:
    return len(
        ipb_grpc.InventoryServiceStub(channel).ListNodes(ipb.ListNodesRequest(), timeout=5).nodes
    )


@pytest.fixture
def tls_edge(world: World, clock: FakeClock, ca: Authority) -> Iterator[Edge]:
    server = ca.issue("localhost", server=True)
    edge = start_edge(world, clock, credentials=server_credentials(server.cert, server.key))
    yield edge
    edge.server.stop(grace=0)


@pytest.fixture
def mtls_edge(world: World, clock: FakeClock, ca: Authority) -> Iterator[Edge]:
    server = ca.issue("localhost", server=True)
    credentials = server_credentials(server.cert, server.key, client_ca=ca.pair.cert)
    edge = start_edge(world, clock, credentials=credentials)
    yield edge
    edge.server.stop(grace=0)


def test_tls_with_a_token(tls_edge: Edge, ca: Authority) -> None:
    token = tls_edge.token("erp", role="erp")
    auth = ClientAuth(token=token, ca=ca.pair.cert)
    with open_client_channel(tls_edge.server.address, auth) as channel:
        assert _list_nodes(channel) == 3
    with open_client_channel(tls_edge.server.address, ClientAuth(ca=ca.pair.cert)) as channel:
        with pytest.raises(grpc.RpcError) as anonymous:
            _list_nodes(channel)
        assert anonymous.value.code() == grpc.StatusCode.UNAUTHENTICATED  # type: ignore[attr-defined]
    with grpc.insecure_channel(tls_edge.server.address) as plain:
        with pytest.raises(grpc.RpcError) as refused:
            _list_nodes(plain)
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE  # type: ignore[attr-defined]


def test_mtls_maps_the_certificate_to_its_registered_caller(mtls_edge: Edge, ca: Authority) -> None:
    register(
        mtls_edge.registry,
        name="wms-1",
        role="wms",
        nodes=["WH-KOELN"],
        cert_subject="wms-1",
        with_token=False,
    )
    known, stranger = ca.issue("wms-1", server=False), ca.issue("intruder", server=False)
    auth = ClientAuth(ca=ca.pair.cert, cert=known.cert, key=known.key)
    with open_client_channel(mtls_edge.server.address, auth) as channel:
        assert _list_nodes(channel) == 3
        with pytest.raises(grpc.RpcError) as scope:
            ipb_grpc.InventoryServiceStub(channel).AdjustInventory(
                ipb.AdjustInventoryRequest(), timeout=5
            )
        assert scope.value.code() == grpc.StatusCode.PERMISSION_DENIED  # type: ignore[attr-defined]
    unregistered = ClientAuth(ca=ca.pair.cert, cert=stranger.cert, key=stranger.key)
    with open_client_channel(mtls_edge.server.address, unregistered) as channel:
        with pytest.raises(grpc.RpcError) as unknown:
            _list_nodes(channel)
        assert unknown.value.code() == grpc.StatusCode.UNAUTHENTICATED  # type: ignore[attr-defined]
    with open_client_channel(mtls_edge.server.address, ClientAuth(ca=ca.pair.cert)) as channel:
        with pytest.raises(grpc.RpcError) as no_cert:
            _list_nodes(channel)
        assert no_cert.value.code() == grpc.StatusCode.UNAVAILABLE  # type: ignore[attr-defined]


def test_bad_tls_files_are_named(tmp_path: Path, ca: Authority) -> None:
    (tmp_path / "junk.pem").write_text("not a certificate")
    with pytest.raises(InvalidInput) as bad:
        server_credentials(tmp_path / "missing.crt", tmp_path / "junk.pem", ca.pair.cert)
    assert [p.field for p in bad.value.problems] == ["tls_cert", "tls_key"]


def test_production_refuses_without_tls_and_callers() -> None:
    from allocation_engine.adapters.memory.tokens import MemoryCallers
    from allocation_engine.api.access import dev_admin_token

    registry = MemoryCallers()
    with pytest.raises(NotProductionReady) as unready:
        production_ready(tls_cert=None, tls_key=None, registry=registry)
    assert len(unready.value.problems) == 3
    dev_admin_token(registry, FakeClock())
    with pytest.raises(NotProductionReady, match="dev-admin"):
        production_ready(tls_cert="c", tls_key="k", registry=registry)
    registry.revoke("dev-admin")
    register(registry, name="erp", role="erp")
    production_ready(tls_cert="c", tls_key="k", registry=registry)
