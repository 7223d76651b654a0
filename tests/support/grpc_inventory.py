"""A real gRPC server on a free port, over each store, with a clock the tests move by hand.

The tiny network (`TINY`) is small enough to reason about in every test:
WH-FRA (Frankfurt) holds A=5, B=2; WH-BER (Berlin) holds A=10 with safety stock 1;
ST-MUC (a Munich store) holds B=3.
"""

from __future__ import annotations

from typing import Any

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from allocation_engine.adapters.clock import FakeClock
from allocation_engine.api.server import AllocationServer
from allocation_engine.engine import Node, NodeType, default_rules
from allocation_engine.engine.rules import default_rules_text
from allocation_engine.ports.inventory import InventoryStore, SnapshotLine
from allocation_engine.proto.allocation.v1 import allocation_pb2 as apb
from allocation_engine.proto.allocation.v1 import allocation_pb2_grpc as apb_grpc
from allocation_engine.proto.allocation.v1 import common_pb2 as cpb
from allocation_engine.proto.allocation.v1 import inventory_pb2 as ipb
from allocation_engine.proto.allocation.v1 import inventory_pb2_grpc as ipb_grpc
from allocation_engine.service import Services

TINY_NODES = [
    Node("WH-FRA", NodeType.WAREHOUSE, 50.11, 8.68, "DE"),
    Node("WH-BER", NodeType.WAREHOUSE, 52.52, 13.40, "DE"),
    Node("ST-MUC", NodeType.STORE, 48.14, 11.58, "DE"),
]


TINY_STOCK = [
    SnapshotLine("WH-FRA", "A", 5),
    SnapshotLine("WH-FRA", "B", 2),
    SnapshotLine("WH-BER", "A", 10, 1),
    SnapshotLine("ST-MUC", "B", 3),
]


COLOGNE = cpb.ShipTo(latitude=50.94, longitude=6.96, country="DE", postal_code="50667")


def order(order_id: str = "o-1", **lines: int) -> cpb.Order:
    """An order shipping to Cologne, e.g. order(A=2, B=1)."""
    return cpb.Order(
        id=order_id,
        lines=[cpb.OrderLine(sku=sku, quantity=q) for sku, q in lines.items()],
        ship_to=COLOGNE,
    )


def seed_tiny(store: InventoryStore) -> None:
    store.upsert_nodes(TINY_NODES)
    store.apply_snapshot(1, TINY_STOCK)


def start_server(store: InventoryStore, clock: FakeClock) -> AllocationServer:
    """A server whose sweeper and health probe only run when a test calls them."""
    services = Services.build(store, clock, default_rules(), default_rules_text())
    return AllocationServer(services, port=0, health_interval=3600, sweep_interval=3600).start()


def details(error: grpc.RpcError) -> list[Any]:
    """The rich error details of a failed call, unpacked into their message types."""
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    out: list[Any] = []
    for packed in status.details if status else ():
        for kind in (
            cpb.InsufficientStock,
            error_details_pb2.BadRequest,
            error_details_pb2.PreconditionFailure,
        ):
            message = kind()
            if packed.Unpack(message):
                out.append(message)
    return out


def bad_fields(error: grpc.RpcError) -> list[str]:
    return [
        v.field
        for d in details(error)
        if isinstance(d, error_details_pb2.BadRequest)
        for v in d.field_violations
    ]


def available(inventory: ipb_grpc.InventoryServiceStub, sku: str) -> dict[str, int]:
    """node id -> available units of `sku`, as GetAvailability reports them."""
    response = inventory.GetAvailability(ipb.GetAvailabilityRequest(skus=[sku]))
    return {p.node_id: p.available for p in response.skus[0].positions}


def reserve(
    allocation: apb_grpc.AllocationServiceStub, key: str, the_order: cpb.Order, ttl: int = 60
) -> apb.Reservation:
    response = allocation.Reserve(
        apb.ReserveRequest(idempotency_key=key, order=the_order, ttl_seconds=ttl)
    )
    return response.reservation
