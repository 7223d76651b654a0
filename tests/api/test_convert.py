"""The protobuf converters: every reader undoes its writer (domain -> proto -> domain is the
original), for nodes, orders, plans and adjustments; readers without a writer (snapshot lines)
keep every field; readers name bad fields from their message down."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from allocation_engine.api.convert.allocation import plan_from_proto, plan_to_proto
from allocation_engine.api.convert.common import (
    node_from_proto,
    node_to_proto,
    nodes_from_proto,
    order_from_proto,
    order_to_proto,
)
from allocation_engine.api.convert.inventory import (
    adjustment_from_proto,
    adjustment_to_proto,
    snapshot_line_from_proto,
    supply_lot_to_proto,
    supply_lots_from_proto,
)
from allocation_engine.engine import (
    CustomerType,
    DeliveryMode,
    InvalidInput,
    LotTake,
    Node,
    NodeType,
    Order,
    OrderLine,
    Plan,
    Shipment,
    ShipmentLine,
    ShipTo,
    Shortfall,
    Status,
)
from allocation_engine.engine.limits import MAX_COST, MAX_UNITS
from allocation_engine.ports.inventory import Adjustment, SnapshotLine, SupplyKind, SupplyLot
from allocation_engine.proto.allocation.v1 import allocation_pb2 as apb
from allocation_engine.proto.allocation.v1 import common_pb2 as cpb
from allocation_engine.proto.allocation.v1 import inventory_pb2 as ipb

INT32 = 2**31 - 1
INT64 = 2**63 - 1

# Protobuf strings are UTF-8: no lone surrogates.
text = st.text(st.characters(blacklist_categories=["Cs"]), max_size=12)
name = text.filter(lambda s: s.strip() != "")
country = st.text(st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZ"), min_size=2, max_size=2)
latitude = st.floats(-90.0, 90.0, allow_nan=False)
longitude = st.floats(-180.0, 180.0, allow_nan=False)
cost = st.floats(0.0, float(MAX_COST), allow_nan=False, allow_infinity=False)
number = st.floats(allow_nan=False, allow_infinity=False)

nodes = st.builds(
    Node,
    id=name,
    type=st.sampled_from(NodeType),
    latitude=latitude,
    longitude=longitude,
    country=country,
    ships_to=st.frozensets(country, max_size=3),
    unit_handling_cost=cost,
    shipment_surcharge=cost,
    capacity=st.none() | st.integers(0, INT32),
    active=st.booleans(),
    tags=st.frozensets(name, max_size=3),
)


@st.composite
def orders(draw: st.DrawFn) -> Order:
    skus = draw(st.lists(name, min_size=1, max_size=5, unique=True))
    mode = draw(st.sampled_from(DeliveryMode))
    pickup = draw(name if mode is DeliveryMode.CLICK_AND_COLLECT else st.none() | name)
    return Order(
        id=draw(name),
        lines=tuple(
            OrderLine(sku, draw(st.integers(1, MAX_UNITS)), draw(st.none() | name)) for sku in skus
        ),
        ship_to=ShipTo(draw(latitude), draw(longitude), draw(country), draw(text)),
        channel=draw(name),
        customer_type=draw(st.sampled_from(CustomerType)),
        delivery_mode=mode,
        pickup_store_id=pickup,
    )


lines = st.builds(ShipmentLine, sku=name, quantity=st.integers(1, MAX_UNITS))

plans = st.builds(
    Plan,
    order_id=name,
    method=st.just("engine"),  # the wire does not carry the method; it reads back as "engine"
    status=st.sampled_from(Status),
    shipments=st.lists(
        st.builds(
            Shipment,
            node_id=name,
            lines=st.lists(lines, max_size=3).map(tuple),
            distance_km=cost,
            cost=number,
            ship_day=st.integers(0, 365),
            lots=st.lists(
                st.builds(LotTake, lot_id=name, sku=name, units=st.integers(1, INT64)),
                max_size=2,
            ).map(tuple),
        ),
        max_size=3,
    ).map(tuple),
    total_cost=number,
    optimality_gap=cost,
    unfilled=st.lists(lines, max_size=3).map(tuple),
    shortfalls=st.lists(
        st.builds(
            Shortfall, sku=name, requested=st.integers(0, INT64), available=st.integers(0, INT64)
        ),
        max_size=3,
    ).map(tuple),
    rules_name=text,
    rules_version=text,
    candidates=st.integers(0, INT32),
    solver_candidates=st.integers(0, INT32),
)

int64 = st.integers(-INT64 - 1, INT64)
adjustments = st.builds(
    Adjustment,
    node_id=text,
    sku=text,
    on_hand_delta=int64,
    safety_stock=st.none() | int64,
)


@given(nodes)
def test_a_node_survives_the_round_trip(node: Node) -> None:
    assert node_from_proto(node_to_proto(node)) == node


@given(st.lists(nodes, max_size=4))
def test_a_request_of_nodes_survives_the_round_trip(many: list[Node]) -> None:
    assert nodes_from_proto([node_to_proto(n) for n in many]) == many


@given(orders())
def test_an_order_survives_the_round_trip(order: Order) -> None:
    assert order_from_proto(order_to_proto(order)) == order


@given(plans)
def test_a_plan_survives_the_round_trip(plan: Plan) -> None:
    assert plan_from_proto(plan_to_proto(plan)) == plan


@given(adjustments)
def test_an_adjustment_survives_the_round_trip(adjustment: Adjustment) -> None:
    assert adjustment_from_proto(adjustment_to_proto(adjustment)) == adjustment


supply_lots = st.builds(
    SupplyLot,
    id=text,
    node_id=text,
    sku=text,
    units=int64,
    expected=st.dates(),
    kind=st.sampled_from(SupplyKind),
    held=st.just(0),
)


@given(st.lists(supply_lots, max_size=4))
def test_supply_lots_survive_the_round_trip(lots: list[SupplyLot]) -> None:
    """`held` is the store's own: it goes out, and a request's is not read."""
    assert supply_lots_from_proto([supply_lot_to_proto(lot) for lot in lots]) == lots


def test_a_bad_lot_date_is_named_by_its_index() -> None:
    good = ipb.SupplyLot(id="L1", node_id="N", sku="S", units=1, expected="2027-01-20")
    bad = ipb.SupplyLot(id="L2", node_id="N", sku="S", units=1, expected="2027-13-01")
    with pytest.raises(InvalidInput) as caught:
        supply_lots_from_proto([good, bad])
    assert [p.field for p in caught.value.problems] == ["lots[1].expected"]


@given(text, text, int64, st.none() | int64)
def test_a_snapshot_position_is_read_field_by_field(
    node_id: str, sku: str, on_hand: int, safety: int | None
) -> None:
    """SnapshotLine only travels inward; an unset safety_stock reads as None (keep it)."""
    message = ipb.SnapshotPosition(node_id=node_id, sku=sku, on_hand=on_hand)
    if safety is not None:
        message.safety_stock = safety
    assert snapshot_line_from_proto(message) == SnapshotLine(node_id, sku, on_hand, safety)


def test_a_nan_gap_goes_out_as_zero() -> None:
    """A heuristic proves nothing (NaN gap); the wire says 0 rather than a NaN."""
    plan = Plan("o", "shopify", Status.FEASIBLE, (), 1.0, math.nan, rules_name="r")
    message = plan_to_proto(plan)
    assert message.optimality_gap == 0.0
    assert (message.rules_name, message.rules_version) == ("r", "")


def test_readers_name_fields_from_their_message_down() -> None:
    """The order reader names `ship_to`, not `order.ship_to`: the servicer adds where it sits."""
    with pytest.raises(InvalidInput) as raised:
        order_from_proto(cpb.Order(id="o", lines=[cpb.OrderLine(sku="A", quantity=1)]))
    assert [p.field for p in raised.value.problems] == ["ship_to"]
    with pytest.raises(InvalidInput) as raised:
        plan_from_proto(apb.Plan(status=99))  # type: ignore[arg-type]
    assert [p.field for p in raised.value.problems] == ["status"]


def test_a_list_of_nodes_names_each_bad_node_by_index() -> None:
    good = cpb.Node(id="A", type=cpb.NODE_TYPE_STORE, latitude=1, longitude=1, country="DE")
    no_type = cpb.Node(id="B", latitude=1, longitude=1, country="DE")
    too_far_north = cpb.Node(id="C", type=cpb.NODE_TYPE_STORE, latitude=91, country="DE")
    with pytest.raises(InvalidInput) as raised:
        nodes_from_proto([good, no_type, too_far_north])
    assert [p.field for p in raised.value.problems] == ["nodes[1].type", "nodes[2].latitude"]
