"""Allocate over gRPC: the engine's plan, from the store's stock, holding nothing."""

from __future__ import annotations

import json
from pathlib import Path

import grpc
import pytest

from allocation_engine.adapters.clock import FakeClock
from allocation_engine.adapters.memory.inventory import MemoryStore
from allocation_engine.api.convert.allocation import plan_from_proto
from allocation_engine.api.convert.common import order_to_proto
from allocation_engine.app.demo import demo_inventory, demo_network
from allocation_engine.app.serve import seed_demo
from allocation_engine.engine import allocate
from allocation_engine.engine.codec import order_from_dict
from allocation_engine.proto.allocation.v1 import allocation_pb2 as apb
from allocation_engine.proto.allocation.v1 import allocation_pb2_grpc as apb_grpc
from allocation_engine.proto.allocation.v1 import common_pb2 as cpb
from allocation_engine.proto.allocation.v1 import inventory_pb2_grpc as ipb_grpc
from allocation_engine.proto.allocation.v1 import rules_pb2 as rpb
from tests.support.grpc_inventory import COLOGNE, available, bad_fields, order, start_server

ROOT = Path(__file__).resolve().parents[2]


def test_allocate_plans_from_the_store_and_holds_nothing(
    allocation: apb_grpc.AllocationServiceStub, inventory: ipb_grpc.InventoryServiceStub
) -> None:
    """Given A at Frankfurt and Berlin, when Cologne orders 2 A and 1 B, then one package from
    Frankfurt (nearest, holds both) is the proven optimum, and no stock is held."""
    before = available(inventory, "A")
    plan = allocation.Allocate(apb.AllocateRequest(order=order(A=2, B=1))).plan
    assert plan.status == apb.PLAN_STATUS_OPTIMAL
    assert [(s.node_id, [(x.sku, x.quantity) for x in s.lines]) for s in plan.shipments] == [
        ("WH-FRA", [("A", 2), ("B", 1)])
    ]
    assert plan.total_cost == pytest.approx(sum(s.cost for s in plan.shipments))
    assert available(inventory, "A") == before


def test_allocate_equals_the_engine_in_process() -> None:
    """Over gRPC on the demo network, the plan is the one `allocate` makes in process."""
    services_store = MemoryStore()
    server = start_server(services_store, FakeClock())
    try:
        seed_demo(server.services)
        with (ROOT / "examples" / "order.json").open() as handle:
            the_order = order_from_dict(json.load(handle))
        network = demo_network()
        expected = allocate(the_order, network, demo_inventory(network))
        with grpc.insecure_channel(server.address) as channel:
            plan = (
                apb_grpc.AllocationServiceStub(channel)
                .Allocate(apb.AllocateRequest(order=order_to_proto(the_order)))
                .plan
            )
        got = plan_from_proto(plan)
        assert [(s.node_id, s.lines) for s in got.shipments] == [
            (s.node_id, s.lines) for s in expected.shipments
        ]
        assert got.total_cost == pytest.approx(expected.total_cost, rel=1e-12)
    finally:
        server.stop(grace=0)


def test_an_order_that_cannot_be_filled_is_planned_infeasible_with_shortfalls(
    allocation: apb_grpc.AllocationServiceStub,
) -> None:
    """Allocate answers a plan, not an error: INFEASIBLE with one shortfall per short sku."""
    plan = allocation.Allocate(apb.AllocateRequest(order=order(A=20))).plan
    assert plan.status == apb.PLAN_STATUS_INFEASIBLE
    assert [(s.sku, s.requested, s.available) for s in plan.shortfalls] == [("A", 20, 14)]


def test_explain_says_why_each_node_was_or_was_not_used(
    allocation: apb_grpc.AllocationServiceStub,
) -> None:
    plan = allocation.Allocate(apb.AllocateRequest(order=order(B=1), explain=True)).plan
    reasons = {e.node_id: e.reason for e in plan.explanations}
    assert reasons["WH-FRA"] == "CHOSEN"
    assert reasons["WH-BER"] == "NO_STOCK"
    assert set(reasons) == {"WH-FRA", "WH-BER", "ST-MUC"}


def test_a_what_if_rule_set_applies_to_this_request_only(
    allocation: apb_grpc.AllocationServiceStub,
) -> None:
    """With stores fenced out for B2C in the request's rules, B comes from Frankfurt only."""
    fenced = '[fences.node_types]\nB2C = ["warehouse"]\n'
    request = apb.AllocateRequest(order=order(B=3), rule_set=rpb.RuleSet(toml=fenced))
    plan = allocation.Allocate(request).plan
    assert plan.status == apb.PLAN_STATUS_INFEASIBLE
    plain = allocation.Allocate(apb.AllocateRequest(order=order(B=3))).plan
    assert plain.status == apb.PLAN_STATUS_OPTIMAL


@pytest.mark.parametrize(
    ("bad_order", "field"),
    [
        (order(A=-2), "order.lines[0].quantity"),
        (order(A=1, Z=1), "order.lines[1].sku"),
        (cpb.Order(id="o", lines=[cpb.OrderLine(sku="A", quantity=1)]), "order.ship_to"),
        (
            cpb.Order(
                id="o",
                lines=[cpb.OrderLine(sku="A", quantity=1)],
                ship_to=cpb.ShipTo(latitude=float("nan"), longitude=7, country="DE"),
            ),
            "order.ship_to.latitude",
        ),
        (cpb.Order(id="o", ship_to=COLOGNE), "order.lines"),
    ],
)
def test_bad_orders_are_invalid_argument_naming_the_field(
    allocation: apb_grpc.AllocationServiceStub, bad_order: cpb.Order, field: str
) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        allocation.Allocate(apb.AllocateRequest(order=bad_order))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in bad_fields(caught.value)


def test_too_many_lines_are_resource_exhausted(allocation: apb_grpc.AllocationServiceStub) -> None:
    lines = {f"S{i}": 1 for i in range(201)}
    with pytest.raises(grpc.RpcError) as caught:
        allocation.Allocate(apb.AllocateRequest(order=order(**lines)))
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "order.lines" in (caught.value.details() or "")


@pytest.mark.parametrize("store", ["memory"], indirect=True)
def test_a_message_over_the_size_limit_is_refused(
    allocation: apb_grpc.AllocationServiceStub,
) -> None:
    """The server reads at most 8 MiB per message; gRPC refuses a larger one itself."""
    huge = order(A=1)
    huge.id = "x" * (9 * 1024 * 1024)
    with pytest.raises(grpc.RpcError) as caught:
        allocation.Allocate(apb.AllocateRequest(order=huge))
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
