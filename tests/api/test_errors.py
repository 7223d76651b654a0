"""The one error interceptor: typed errors keep their status, anything else is INTERNAL with a
reference that is also in the log, and streamed requests are covered as well as unary ones."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from google.rpc import code_pb2, error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from allocation_engine.adapters.clock import FakeClock
from allocation_engine.adapters.memory.inventory import MemoryStore
from allocation_engine.api.errors import DETAILS_BUDGET, MAX_LISTED, MAX_MESSAGE_CHARS, status_for
from allocation_engine.api.server import AllocationServer
from allocation_engine.errors import (
    FieldProblem,
    InsufficientStock,
    InvalidInput,
    NotFound,
    ReservationInProgress,
    Shortfall,
    StoreContention,
    StoreUnavailable,
)
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
    monkeypatch.setattr(server.services.inventory, "begin_snapshot", boom)
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

    monkeypatch.setattr(server.services.inventory, "begin_snapshot", down)
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


# bounded answers (a status travels in the trailers: 8 KiB by default on the client)


def _trailer_bytes(error: grpc.RpcError) -> int:
    call: Any = error
    return sum(len(k) + len(v) for k, v in call.trailing_metadata() or ())


def test_every_status_is_bounded_whatever_the_input() -> None:
    """However many problems and however long the values, a status message holds at most
    MAX_MESSAGE_CHARS ASCII characters, MAX_LISTED violations, each value quoted to 80
    characters with its length; NotFound and stock shortfalls too."""
    huge = "\u00e9" * 1_000_000
    many = InvalidInput(
        [FieldProblem(f"positions[{i}].sku", huge, "unknown") for i in range(3)]
        + [FieldProblem(f"positions[{i}].sku", "S" * 200, "unknown") for i in range(3, 50_000)]
    )
    status = status_for(many)
    assert status is not None and status.code == code_pb2.INVALID_ARGUMENT
    assert len(status.message) <= MAX_MESSAGE_CHARS and status.message.isascii()
    assert "(1000000 chars)" in status.message
    assert re.search(r"; and 499\d\d more$", status.message), status.message
    bad = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(bad) and len(bad.field_violations) == MAX_LISTED
    assert all(len(v.description) < 200 for v in bad.field_violations)
    nested = InvalidInput.one("rules", {"a": [[[[list(range(10**5))]]]]}, "bad")
    assert len(status_for(nested).message) < 200  # type: ignore[union-attr]
    missing = status_for(NotFound("reservation_id", "r" * 1_000_000))
    assert missing is not None and missing.code == code_pb2.NOT_FOUND
    assert len(missing.message) < 150 and "(1000000 chars)" in missing.message
    short = status_for(
        InsufficientStock([Shortfall("S" * 128 + str(i), 10**9, 0) for i in range(200)])
    )
    assert short is not None and len(short.message) <= MAX_MESSAGE_CHARS
    assert re.search(r"; and 19\d more$", short.message), short.message
    assert sum(len(d.value) for d in short.details) <= DETAILS_BUDGET


def test_a_megabyte_id_is_answered_in_bounds(channel: grpc.Channel) -> None:
    """A 1 MB reservation id used to be RESOURCE_EXHAUSTED (the message quoting it whole was
    over the client's metadata limit); it is INVALID_ARGUMENT with a short message."""
    stub = apb_grpc.AllocationServiceStub(channel)
    with pytest.raises(grpc.RpcError) as caught:
        stub.GetReservation(apb.GetReservationRequest(reservation_id="\u00e9" * 1_000_000))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad_fields(caught.value) == ["reservation_id"]
    assert _trailer_bytes(caught.value) < 4096


def test_fifty_thousand_bad_positions_are_answered_in_bounds(channel: grpc.Channel) -> None:
    """A chunk of 50,000 positions at unknown nodes with 128-character skus is one
    INVALID_ARGUMENT of bounded size, not RESOURCE_EXHAUSTED."""
    chunk = ipb.SnapshotChunk(
        version=2,
        positions=[
            ipb.SnapshotPosition(node_id=f"NOWHERE-{i}", sku="S" * 120 + str(i), on_hand=1)
            for i in range(50_000)
        ],
    )
    with pytest.raises(grpc.RpcError) as caught:
        ipb_grpc.InventoryServiceStub(channel).ApplySnapshot(iter([chunk]))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert len(bad_fields(caught.value)) == MAX_LISTED
    assert _trailer_bytes(caught.value) < 8192


def test_a_short_order_of_200_long_skus_is_answered_in_bounds(channel: grpc.Channel) -> None:
    """FAILED_PRECONDITION for 200 missing skus of 128 characters fits in the trailers: the
    shortfalls that fit in DETAILS_BUDGET are listed, the message says how many more."""
    stub = apb_grpc.AllocationServiceStub(channel)
    the_order = order("o-big", **{f"{'Z' * 120}{i:03d}": 1 for i in range(200)})
    with pytest.raises(grpc.RpcError) as caught:
        stub.Reserve(apb.ReserveRequest(idempotency_key="big", order=the_order, ttl_seconds=60))
    assert caught.value.code() in (
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert _trailer_bytes(caught.value) < 8192


# bytes that are no message


@pytest.mark.parametrize(
    "payload", [b"\xff", b"\x0a\xff\xff\xff\xff\x0f", b"\x08" * 3, bytes(range(256))]
)
def test_garbage_bytes_are_invalid_argument_not_internal(
    channel: grpc.Channel, payload: bytes
) -> None:
    """Bytes that do not decode as the method's message used to be the runtime's INTERNAL
    "Exception deserializing request!"; they are INVALID_ARGUMENT naming the message type,
    for unary methods and for each message of a stream."""
    unary = channel.unary_unary("/allocation.v1.AllocationService/Allocate")
    with pytest.raises(grpc.RpcError) as caught:
        unary(payload, timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, caught.value.details()
    assert "allocation.v1.AllocateRequest" in (caught.value.details() or "")
    streamed = channel.stream_unary("/allocation.v1.InventoryService/ApplySnapshot")
    good = ipb.SnapshotChunk(version=2).SerializeToString()
    with pytest.raises(grpc.RpcError) as caught:
        streamed(iter([good, payload]), timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, caught.value.details()
    assert bad_fields(caught.value) == ["chunks[1]"]


def test_a_reserve_still_in_progress_says_when_to_retry_as_retry_info() -> None:
    """Given a retry that found the first call with its key still taking holds, then the status
    is ABORTED with a google.rpc.RetryInfo detail carrying the delay, so a generic gRPC client
    (or a retry policy) can wait that long without parsing the message."""
    status = status_for(ReservationInProgress("res-1", 1.25))
    assert status is not None
    assert status.code == code_pb2.ABORTED
    retry = error_details_pb2.RetryInfo()
    assert [d.Unpack(retry) for d in status.details] == [True]
    assert retry.retry_delay.ToNanoseconds() == 1_250_000_000
    assert "retry in 1.25 s" in status.message


def test_a_store_step_that_kept_racing_is_aborted_not_internal() -> None:
    """Given a store operation that concurrent changes kept from settling, then the caller
    gets ABORTED (retry at once), not INTERNAL with a logged traceback."""
    status = status_for(StoreContention("ae_hold: the views it needs kept changing; retry"))
    assert status is not None
    assert status.code == code_pb2.ABORTED
