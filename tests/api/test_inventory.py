"""InventoryService over gRPC: nodes, versioned snapshots, idempotent adjustments, availability."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import grpc
import pytest

from allocation_engine.api.server import AllocationServer
from allocation_engine.proto.allocation.v1 import allocation_pb2 as apb
from allocation_engine.proto.allocation.v1 import allocation_pb2_grpc as apb_grpc
from allocation_engine.proto.allocation.v1 import common_pb2 as cpb
from allocation_engine.proto.allocation.v1 import inventory_pb2 as ipb
from allocation_engine.proto.allocation.v1 import inventory_pb2_grpc as ipb_grpc
from tests.support.grpc_inventory import available, bad_fields, order, reserve


def chunks(version: int, *rows: tuple[str, str, int]) -> Iterator[ipb.SnapshotChunk]:
    """One chunk per row, to exercise the stream."""
    for node_id, sku, on_hand in rows:
        yield ipb.SnapshotChunk(
            version=version,
            positions=[ipb.SnapshotPosition(node_id=node_id, sku=sku, on_hand=on_hand)],
        )


def test_upsert_nodes_is_idempotent_and_planning_sees_the_new_node(
    inventory: ipb_grpc.InventoryServiceStub, allocation: apb_grpc.AllocationServiceStub
) -> None:
    """A new node near Cologne with stock takes the order on the very next request."""
    node = cpb.Node(
        id="WH-CGN", type=cpb.NODE_TYPE_WAREHOUSE, latitude=50.9, longitude=7.0, country="DE"
    )
    request = ipb.UpsertNodesRequest(idempotency_key="n1", nodes=[node])
    first = inventory.UpsertNodes(request)
    assert inventory.UpsertNodes(request).nodes_version == first.nodes_version
    inventory.ApplySnapshot(chunks(2, ("WH-CGN", "A", 3)))
    plan = allocation.Allocate(apb.AllocateRequest(order=order(A=1))).plan
    assert [s.node_id for s in plan.shipments] == ["WH-CGN"]
    listed = inventory.ListNodes(ipb.ListNodesRequest())
    assert "WH-CGN" in {n.id for n in listed.nodes}


def test_bad_nodes_name_the_field(inventory: ipb_grpc.InventoryServiceStub) -> None:
    bad = cpb.Node(id="X", type=cpb.NODE_TYPE_STORE, latitude=91, longitude=7, country="DE")
    with pytest.raises(grpc.RpcError) as caught:
        inventory.UpsertNodes(ipb.UpsertNodesRequest(idempotency_key="n", nodes=[bad]))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad_fields(caught.value) == ["nodes[0].latitude"]


def test_a_streamed_snapshot_sets_on_hand(inventory: ipb_grpc.InventoryServiceStub) -> None:
    response = inventory.ApplySnapshot(chunks(2, ("WH-FRA", "A", 7), ("ST-MUC", "A", 1)))
    assert (response.positions_applied, response.chunks) == (2, 2)
    assert available(inventory, "A") == {"WH-FRA": 7, "WH-BER": 9, "ST-MUC": 1}


def test_an_older_snapshot_is_aborted_and_changes_nothing(
    inventory: ipb_grpc.InventoryServiceStub,
) -> None:
    inventory.ApplySnapshot(chunks(5, ("WH-FRA", "A", 7)))
    with pytest.raises(grpc.RpcError) as caught:
        inventory.ApplySnapshot(chunks(4, ("WH-FRA", "A", 1), ("WH-BER", "A", 1)))
    assert caught.value.code() == grpc.StatusCode.ABORTED
    assert available(inventory, "A") == {"WH-FRA": 7, "WH-BER": 9}


def test_a_snapshot_keeps_open_reservations(
    inventory: ipb_grpc.InventoryServiceStub, allocation: apb_grpc.AllocationServiceStub
) -> None:
    """A new count of on_hand leaves holds alone: available = new on_hand - held."""
    reserve(allocation, "k1", order(A=4))
    inventory.ApplySnapshot(chunks(2, ("WH-FRA", "A", 6)))
    position = (
        inventory.GetAvailability(ipb.GetAvailabilityRequest(skus=["A"], node_ids=["WH-FRA"]))
        .skus[0]
        .positions[0]
    )
    assert (position.on_hand, position.reserved, position.available) == (6, 4, 2)


def test_a_snapshot_with_an_unknown_node_names_it_and_applies_nothing_of_that_chunk(
    inventory: ipb_grpc.InventoryServiceStub,
) -> None:
    chunk = ipb.SnapshotChunk(
        version=2,
        positions=[
            ipb.SnapshotPosition(node_id="WH-FRA", sku="A", on_hand=1),
            ipb.SnapshotPosition(node_id="WH-NOPE", sku="A", on_hand=1),
        ],
    )
    with pytest.raises(grpc.RpcError) as caught:
        inventory.ApplySnapshot(iter([chunk]))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad_fields(caught.value) == ["chunks[0].positions[1].node_id"]
    assert available(inventory, "A")["WH-FRA"] == 5


def test_adjustments_apply_once_per_key(inventory: ipb_grpc.InventoryServiceStub) -> None:
    """A retried adjustment answers as the first did; the key with other deltas is refused."""
    request = ipb.AdjustInventoryRequest(
        idempotency_key="receipt-1",
        adjustments=[ipb.Adjustment(node_id="WH-FRA", sku="A", on_hand_delta=3)],
    )
    first = inventory.AdjustInventory(request)
    again = inventory.AdjustInventory(request)
    assert [p.on_hand for p in first.positions] == [8]
    assert again == first
    assert available(inventory, "A")["WH-FRA"] == 8
    other = ipb.AdjustInventoryRequest(
        idempotency_key="receipt-1",
        adjustments=[ipb.Adjustment(node_id="WH-FRA", sku="A", on_hand_delta=4)],
    )
    with pytest.raises(grpc.RpcError) as caught:
        inventory.AdjustInventory(other)
    assert caught.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert available(inventory, "A")["WH-FRA"] == 8


def test_availability_sums_each_sku_across_nodes(
    inventory: ipb_grpc.InventoryServiceStub, allocation: apb_grpc.AllocationServiceStub
) -> None:
    reserve(allocation, "k1", order(A=2))
    sku = inventory.GetAvailability(ipb.GetAvailabilityRequest(skus=["A"])).skus[0]
    assert (sku.on_hand, sku.reserved, sku.safety_stock, sku.available) == (15, 2, 1, 12)
    for p in sku.positions:
        assert p.on_hand == p.available + p.reserved + p.safety_stock


@pytest.mark.parametrize(
    "second",
    [
        ipb.SnapshotChunk(
            version=3, positions=[ipb.SnapshotPosition(node_id="WH-BER", sku="A", on_hand=1)]
        ),
        ipb.SnapshotChunk(
            version=2, positions=[ipb.SnapshotPosition(node_id="WH-XXX", sku="A", on_hand=1)]
        ),
    ],
    ids=["another-version", "unknown-node"],
)
def test_a_refused_snapshot_stream_changes_nothing(
    inventory: ipb_grpc.InventoryServiceStub, second: ipb.SnapshotChunk
) -> None:
    """Chunk 1 is good, chunk 2 is refused: INVALID_ARGUMENT, and chunk 1's positions stay as
    they were (the stream is staged and only applied whole)."""
    before = inventory.GetAvailability(ipb.GetAvailabilityRequest(skus=["A", "B"]))
    first = ipb.SnapshotChunk(
        version=2,
        positions=[
            ipb.SnapshotPosition(node_id="WH-FRA", sku="A", on_hand=50),
            ipb.SnapshotPosition(node_id="ST-MUC", sku="B", on_hand=0),
        ],
    )
    with pytest.raises(grpc.RpcError) as caught:
        inventory.ApplySnapshot(iter([first, second]))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    after = inventory.GetAvailability(ipb.GetAvailabilityRequest(skus=["A", "B"]))
    assert after == before
    done = inventory.ApplySnapshot(iter([first]))
    assert done.positions_applied == 2


def test_a_snapshot_stream_the_client_abandons_changes_nothing(
    server: AllocationServer,
    inventory: ipb_grpc.InventoryServiceStub,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Given a snapshot stream of two chunks (it says so) whose first chunk the server has
    staged, when the client goes away mid-stream (a loader killed, a cancelled call), then
    stock is as it was and the same snapshot sent again whole applies."""
    staged = threading.Event()
    begin = server.services.inventory.begin_snapshot

    def watched(version: int) -> Any:
        feed = begin(version)
        add = feed.add

        def add_and_tell(lines: Any) -> None:
            add(lines)
            staged.set()

        monkeypatch.setattr(feed, "add", add_and_tell)
        return feed

    monkeypatch.setattr(server.services.inventory, "begin_snapshot", watched)
    before = inventory.GetAvailability(ipb.GetAvailabilityRequest(skus=["A"]))
    hang_up = threading.Event()

    first = ipb.SnapshotChunk(
        version=2,
        positions=[ipb.SnapshotPosition(node_id="WH-FRA", sku="A", on_hand=50)],
        total_chunks=2,
    )

    def stream() -> Iterator[ipb.SnapshotChunk]:
        yield first
        hang_up.wait(10)  # the client never sends the second

    call = inventory.ApplySnapshot.future(stream())
    assert staged.wait(10), "the server should have staged the first chunk"
    call.cancel()
    hang_up.set()
    with pytest.raises(grpc.FutureCancelledError):
        call.result()
    assert inventory.GetAvailability(ipb.GetAvailabilityRequest(skus=["A"])) == before
    second = ipb.SnapshotChunk(version=2, total_chunks=2)
    done = inventory.ApplySnapshot(iter([first, second]))
    assert done.positions_applied == 1


def test_a_stream_shorter_than_its_declared_chunks_changes_nothing(
    inventory: ipb_grpc.InventoryServiceStub,
) -> None:
    """Given chunks that say the stream has 3 but only 2 arrive, then nothing is applied and
    the answer names total_chunks; chunks that disagree on the total are refused too."""
    before = inventory.GetAvailability(ipb.GetAvailabilityRequest(skus=["A"]))
    two = [
        ipb.SnapshotChunk(
            version=2,
            positions=[ipb.SnapshotPosition(node_id="WH-FRA", sku="A", on_hand=50)],
            total_chunks=3,
        ),
        ipb.SnapshotChunk(version=2, total_chunks=3),
    ]
    with pytest.raises(grpc.RpcError) as caught:
        inventory.ApplySnapshot(iter(two))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "total_chunks" in (caught.value.details() or "")
    disagreeing = [two[0], ipb.SnapshotChunk(version=2, total_chunks=4)]
    with pytest.raises(grpc.RpcError) as caught:
        inventory.ApplySnapshot(iter(disagreeing))
    assert "chunks[1].total_chunks" in (caught.value.details() or "")
    assert inventory.GetAvailability(ipb.GetAvailabilityRequest(skus=["A"])) == before
