"""Access control through a real gRPC server on a free port: every RPC refused without its
scope and let through with it, tokens unknown, missing and revoked, health open, reflection for
admins, the order resource checks, per-caller rate limits and the audit trail."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
import redis
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_status import rpc_status

from allocation_engine.adapters.clock import FakeClock
from allocation_engine.adapters.memory.audit import MemoryAudit
from allocation_engine.adapters.memory.tokens import MemoryCallers
from allocation_engine.adapters.redis.audit import RedisAudit
from allocation_engine.adapters.redis.tokens import RedisCallers
from allocation_engine.api.access import METHODS, OPEN, AccessInterceptor, build_access
from allocation_engine.api.client import ClientAuth, open_client_channel
from allocation_engine.api.server import AllocationServer
from allocation_engine.api.servicers.customers import register as register_customers
from allocation_engine.api.servicers.orders import SERVICE_NAME, OrderServicer
from allocation_engine.proto.allocation.v1 import (
    allocation_pb2,
    customers_pb2,
    inventory_pb2,
    orders_pb2,
    promise_pb2,
    rules_pb2,
)
from allocation_engine.proto.allocation.v1 import orders_pb2 as opb
from allocation_engine.proto.allocation.v1 import orders_pb2_grpc as opb_grpc
from allocation_engine.service.access import register
from allocation_engine.service.feeds.crm import Customers
from allocation_engine.service.ratelimit import RateLimits
from tests.support.orders import World, b2b, b2c


@dataclass
class Edge:
    server: AllocationServer
    registry: MemoryCallers
    audit: MemoryAudit
    world: World
    gate: AccessInterceptor

    def token(self, name: str, **grant: Any) -> str:
        issued = register(self.registry, name=name, **grant)
        assert issued.token is not None
        return issued.token

    def channel(self, token: str | None) -> grpc.Channel:
        return open_client_channel(self.server.address, ClientAuth(token=token))


def start_edge(
    world: World,
    clock: FakeClock,
    limits: RateLimits | None = None,
    registry: Any = None,
    audit: Any = None,
    **kw: Any,
) -> Edge:
    registry = registry or MemoryCallers()
    audit = audit or MemoryAudit()

    def orders(server: grpc.Server) -> str:
        servicer = OrderServicer(world.flow, world.orders)
        opb_grpc.add_OrderServiceServicer_to_server(servicer, server)
        return SERVICE_NAME

    inner = build_access(registry, audit, limits or RateLimits(1000, 1000), clock)
    server = AllocationServer(
        world.services,
        port=0,
        health_interval=3600,
        sweep_interval=3600,
        extra=[orders, lambda server: register_customers(Customers(world.orders, clock), server)],
        inner=inner,
        **kw,
    ).start()
    (gate,) = inner
    assert isinstance(gate, AccessInterceptor)
    return Edge(server, registry, audit, world, gate)


@pytest.fixture
def edge(world: World, clock: FakeClock) -> Iterator[Edge]:
    running = start_edge(world, clock)
    yield running
    running.server.stop(grace=0)


def _identity(data: bytes) -> bytes:
    return data


def raw_call(channel: grpc.Channel, method: str, body: bytes = b"") -> grpc.StatusCode:
    """Calls `method` with raw request bytes; the status code it ends with."""
    streamed = method.endswith("/ApplySnapshot") or method.endswith("/ServerReflectionInfo")
    try:
        if method.endswith("/ServerReflectionInfo"):
            stream = channel.stream_stream(method, _identity, _identity)
            list(stream(iter([body]), timeout=10))
        elif streamed:
            channel.stream_unary(method, _identity, _identity)(iter([body]), timeout=10)
        else:
            channel.unary_unary(method, _identity, _identity)(body, timeout=10)
    except grpc.RpcError as failed:
        return failed.code()  # type: ignore[attr-defined, no-any-return]
    return grpc.StatusCode.OK


ALL_PROTO_METHODS = sorted(
    f"/{service.full_name}/{method.name}"
    for module in (allocation_pb2, inventory_pb2, rules_pb2, orders_pb2, promise_pb2, customers_pb2)
    for service in module.DESCRIPTOR.services_by_name.values()
    for method in service.methods
)


def test_every_method_of_every_service_is_in_the_one_table() -> None:
    """Given the services the .proto files define, then each method has a scope in `METHODS`
    (a new RPC without an entry fails here, and the interceptor refuses it to everyone)."""
    # 24 before incoming supply (5 RPCs), GetDeliveryOptions, RejectShipment and
    # AcceptShipment, and CustomerService (2)
    assert len(ALL_PROTO_METHODS) == 24 + 5 + 1 + 2 + 2
    assert [m for m in ALL_PROTO_METHODS if m not in METHODS] == []
    assert not OPEN & set(ALL_PROTO_METHODS)


GUARDED = [m for m in ALL_PROTO_METHODS]


@pytest.mark.parametrize("method", GUARDED)
def test_each_rpc_is_refused_without_its_scope_and_let_through_with_it(
    edge: Edge, method: str
) -> None:
    """Given a caller holding every scope but the method's, then PERMISSION_DENIED, even for
    bytes that are no message (the request is not decoded); given only the method's scope,
    the call reaches the servicer (any answer but the refusals); given no token,
    UNAUTHENTICATED."""
    needed = METHODS[method].scope
    others = sorted({r.scope for r in METHODS.values()} - {needed})
    without = edge.token("without", scopes=others)
    with_it = edge.token("with", scopes=[needed])
    garbage = b"\xff\xff\xff"
    with edge.channel(without) as channel:
        assert raw_call(channel, method, garbage) == grpc.StatusCode.PERMISSION_DENIED
    with edge.channel(None) as channel:
        assert raw_call(channel, method, garbage) == grpc.StatusCode.UNAUTHENTICATED
    with edge.channel(with_it) as channel:
        code = raw_call(channel, method)
        assert code not in {grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED}
        if not method.endswith("ApplySnapshot"):
            # past the gate the bytes are decoded as before: garbage is INVALID_ARGUMENT
            assert raw_call(channel, method, garbage) == grpc.StatusCode.INVALID_ARGUMENT


def test_unknown_malformed_and_revoked_tokens_are_unauthenticated(edge: Edge) -> None:
    token = edge.token("shop-1", role="shop", channels=["web"])
    method = "/allocation.v1.InventoryService/ListNodes"
    with edge.channel(token) as channel:
        assert raw_call(channel, method) == grpc.StatusCode.OK
    for wrong in (token + "x", "ae_" + "A" * 43, ""):
        with edge.channel(wrong or None) as channel:
            assert raw_call(channel, method) == grpc.StatusCode.UNAUTHENTICATED
    with grpc.insecure_channel(edge.server.address) as plain:
        call = plain.unary_unary(method, _identity, _identity)
        with pytest.raises(grpc.RpcError) as basic:
            call(b"", metadata=[("authorization", f"Basic {token}")], timeout=5)
        assert basic.value.code() == grpc.StatusCode.UNAUTHENTICATED  # type: ignore[attr-defined]
    edge.registry.revoke("shop-1")
    with edge.channel(token) as channel:
        assert raw_call(channel, method) == grpc.StatusCode.UNAUTHENTICATED


def test_health_is_open_and_reflection_needs_admin(edge: Edge) -> None:
    with edge.channel(None) as channel:
        answer = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
        assert answer.status == health_pb2.HealthCheckResponse.SERVING
    ask = reflection_pb2.ServerReflectionRequest(list_services="")
    for token, allowed in (
        (edge.token("ops", role="admin"), True),
        (edge.token("p", role="planner"), False),
    ):
        with edge.channel(token) as channel:
            stub = reflection_pb2_grpc.ServerReflectionStub(channel)
            if allowed:
                reply = next(iter(stub.ServerReflectionInfo(iter([ask]), timeout=5)))
                names = {s.name for s in reply.list_services_response.service}
                assert SERVICE_NAME in names
            else:
                with pytest.raises(grpc.RpcError) as refused:
                    list(stub.ServerReflectionInfo(iter([ask]), timeout=5))
                code = refused.value.code()  # type: ignore[attr-defined]
                assert code == grpc.StatusCode.PERMISSION_DENIED


def _place(channel_name: str, external: str) -> opb.PlaceOrderRequest:
    from allocation_engine.proto.allocation.v1 import common_pb2 as cpb

    return opb.PlaceOrderRequest(
        channel=channel_name,
        external_order_id=external,
        customer=opb.CustomerRef(email="ada@example.com", name="Ada Lovelace", language="en"),
        lines=[opb.PricedLine(sku="A", quantity=1, unit_price=1990, name="Espresso cup")],
        currency="EUR",
        ship_to=cpb.ShipTo(latitude=50.94, longitude=6.96, country="DE", postal_code="50667"),
        address=opb.Address(name="Ada Lovelace", street="Hohe Str. 1", city="Koeln"),
        payment_method="pm_card_visa",
    )


def _code(raised: pytest.ExceptionInfo[grpc.RpcError]) -> grpc.StatusCode:
    return raised.value.code()  # type: ignore[attr-defined, no-any-return]


def test_a_shop_places_and_reads_only_its_own_channel(edge: Edge) -> None:
    """Given a shop bound to `web`, then an order for `erp` is PERMISSION_DENIED and stores
    nothing, another channel's order is NOT_FOUND and left out of lists; its own work."""
    theirs = edge.world.flow.place(b2b("erp-1", A=1)).record
    shop = edge.token("shop-web", role="shop", channels=["web"])
    with edge.channel(shop) as channel:
        orders = opb_grpc.OrderServiceStub(channel)
        with pytest.raises(grpc.RpcError) as refused:
            orders.PlaceOrder(_place("erp", "erp-2"))
        assert _code(refused) == grpc.StatusCode.PERMISSION_DENIED
        assert edge.world.orders.find_external("erp", "erp-2") is None
        mine = orders.PlaceOrder(_place("web", "web-1")).order
        assert orders.GetOrder(opb.GetOrderRequest(order_id=mine.id)).order.channel == "web"
        with pytest.raises(grpc.RpcError) as hidden:
            orders.GetOrder(opb.GetOrderRequest(order_id=theirs.id))
        assert _code(hidden) == grpc.StatusCode.NOT_FOUND
        listed = orders.ListOrders(opb.ListOrdersRequest(email="ada@example.com"))
        assert [o.id for o in listed.orders] == [mine.id]
    entries = [(e.caller, e.method.rsplit("/", 1)[1], e.code) for e in edge.audit.recent()]
    assert entries == [
        ("shop-web", "PlaceOrder", "PERMISSION_DENIED"),
        ("shop-web", "PlaceOrder", "OK"),
    ]


def test_a_wms_records_shipments_only_for_its_own_nodes(edge: Edge) -> None:
    record = edge.world.flow.place(b2c("w-1", A=1)).record
    (shipment,) = record.shipments
    assert shipment.node_id == "WH-KOELN"
    berlin = edge.token("wms-berlin", role="wms", nodes=["WH-BERLIN"])
    koeln = edge.token("wms-koeln", role="wms", nodes=["WH-KOELN"])
    request = opb.RecordShipmentRequest(
        order_id=record.id,
        shipment_id=shipment.id,
        carrier="DHL",
        tracking_number="T1",
        idempotency_key="ship-1",
    )
    with edge.channel(berlin) as channel:
        with pytest.raises(grpc.RpcError) as refused:
            opb_grpc.OrderServiceStub(channel).RecordShipment(request)
        assert _code(refused) == grpc.StatusCode.PERMISSION_DENIED
    assert edge.world.orders.load(record.id).version == record.version  # unchanged
    with edge.channel(koeln) as channel:
        shipped = opb_grpc.OrderServiceStub(channel).RecordShipment(request).order
        assert shipped.shipments[0].state == opb.SHIPMENT_STATE_SHIPPED
    last = edge.audit.recent()[-2:]
    assert [(e.caller, e.idempotency_key, e.code) for e in last] == [
        ("wms-berlin", "ship-1", "PERMISSION_DENIED"),
        ("wms-koeln", "ship-1", "OK"),
    ]


def test_the_audit_names_caller_method_key_and_result_of_each_mutating_call(
    edge: Edge, clock: FakeClock
) -> None:
    ops = edge.token("erp-1", role="erp")
    with edge.channel(ops) as channel:
        orders = opb_grpc.OrderServiceStub(channel)
        with pytest.raises(grpc.RpcError) as missing:
            orders.CancelOrder(opb.CancelOrderRequest(order_id="O-404", idempotency_key="k-9"))
        assert _code(missing) == grpc.StatusCode.NOT_FOUND
        orders.ListOrders(opb.ListOrdersRequest(email="nobody@example.com"))  # reads: no entry
    (entry,) = edge.audit.recent()
    assert (entry.caller, entry.method, entry.idempotency_key, entry.code, entry.at) == (
        "erp-1",
        "/allocation.v1.OrderService/CancelOrder",
        "k-9",
        "NOT_FOUND",
        clock.now(),
    )


def test_a_caller_past_its_rate_is_told_when_to_retry(world: World, clock: FakeClock) -> None:
    edge = start_edge(world, clock, RateLimits(rate=100, burst=100))
    try:
        token = edge.token("busy", role="planner", rate=1.0, burst=2)
        method = "/allocation.v1.InventoryService/ListNodes"
        with edge.channel(token) as channel:
            call = channel.unary_unary(method, _identity, _identity)
            call(b"", timeout=5)
            call(b"", timeout=5)
            with pytest.raises(grpc.RpcError) as limited:
                call(b"", timeout=5)
            assert _code(limited) == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert "retry in 1.000 s" in limited.value.details()  # type: ignore[attr-defined]
            status = rpc_status.from_call(limited.value)  # type: ignore[arg-type]
            assert status is not None
            retry = error_details_pb2.RetryInfo()
            assert status.details[0].Unpack(retry)
            assert retry.retry_delay.seconds == 1
            clock.advance(1.0)
            call(b"", timeout=5)
    finally:
        edge.server.stop(grace=0)


def test_redis_registry_and_audit_stream_behind_the_server(
    world: World, clock: FakeClock, redis_url: str
) -> None:
    """Given the Redis registry and audit stream, then a token caller is admitted and its
    mutating call lands in the stream with its key and result."""
    edge = start_edge(
        world,
        clock,
        registry=RedisCallers.from_url(redis_url),
        audit=RedisAudit.from_url(redis_url),
    )
    try:
        token = edge.token("erp-redis", role="erp")
        with edge.channel(token) as channel:
            orders = opb_grpc.OrderServiceStub(channel)
            with pytest.raises(grpc.RpcError):
                orders.ResumeOrder(opb.ResumeOrderRequest(order_id="O-1", idempotency_key="r-1"))
        (entry,) = RedisAudit.from_url(redis_url).recent()
        assert (entry.caller, entry.idempotency_key, entry.code) == (
            "erp-redis",
            "r-1",
            "NOT_FOUND",
        )
    finally:
        edge.server.stop(grace=0)


def test_an_audit_write_that_fails_is_logged_and_counted_not_the_answer(
    world: World, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """Given an audit stream whose Redis cannot be reached, then the mutating call is answered
    with its own outcome, and the entry is logged at ERROR and counted."""
    unreachable = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    edge = start_edge(world, clock, audit=RedisAudit(unreachable))
    try:
        token = edge.token("erp-1", role="erp")
        with edge.channel(token) as channel:
            orders = opb_grpc.OrderServiceStub(channel)
            placed = edge.world.flow.place(b2b("erp-9", A=1)).record
            with caplog.at_level(logging.ERROR, logger="allocation_engine.access"):
                answer = orders.ResumeOrder(
                    opb.ResumeOrderRequest(order_id=placed.id, idempotency_key="r-2")
                )
        assert answer.order.id == placed.id
        assert edge.gate.audit_failures == 1
        assert "r-2" in caplog.text and "audit write failed" in caplog.text
    finally:
        edge.server.stop(grace=0)
