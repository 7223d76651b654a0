"""Every field of the contract has a documented range, and a value past it is INVALID_ARGUMENT
naming the field with the value quoted short; nothing refused changes state; a value inside it
never answers INTERNAL.

The issue's cases first, against each store (on_hand 2^63-1 read back as -2^63, 2^53+1 rounded
by Lua, a safety stock near 2^63 that made every later call on the sku INTERNAL, a snapshot
version 2^63-1 that disabled the stale-version check, a 1 MB id answered RESOURCE_EXHAUSTED);
then a property over every scalar field of every request: at and past its bound.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from google.protobuf.descriptor import FieldDescriptor
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from allocation_engine.api.bounds import FIELDS, Blob, Many, Real, Text, Toml, Whole
from allocation_engine.api.errors import MAX_MESSAGE_CHARS
from allocation_engine.engine.limits import (
    MAX_ID_CHARS,
    MAX_MONEY,
    MAX_RULES_NESTING,
    MAX_UNITS,
    MAX_VERSION,
)
from allocation_engine.engine.rules import default_rules_text
from allocation_engine.proto.allocation.v1 import allocation_pb2 as apb
from allocation_engine.proto.allocation.v1 import allocation_pb2_grpc as apb_grpc
from allocation_engine.proto.allocation.v1 import inventory_pb2 as ipb
from allocation_engine.proto.allocation.v1 import inventory_pb2_grpc as ipb_grpc
from allocation_engine.proto.allocation.v1 import orders_pb2 as opb
from allocation_engine.proto.allocation.v1 import rules_pb2 as rpb
from allocation_engine.proto.allocation.v1 import rules_pb2_grpc as rpb_grpc
from tests.api.surface import (
    BASE,
    METHODS,
    Surface,
    dotted,
    leaf,
    put,
    scalar_paths,
    streamed,
    surface,
)
from tests.support.grpc_inventory import bad_fields, order, reserve

BIG = 2**63 - 1
OUT_OF_RANGE = [2**63 - 1, 2**53 + 1, MAX_UNITS + 1, -1]


def positions(inventory: ipb_grpc.InventoryServiceStub) -> list[tuple[str, str, int, int, int]]:
    answer = inventory.GetAvailability(ipb.GetAvailabilityRequest(skus=["A", "B"]))
    return sorted(
        (p.node_id, p.sku, p.on_hand, p.reserved, p.safety_stock)
        for s in answer.skus
        for p in s.positions
    )


def refused(call: pytest.ExceptionInfo[grpc.RpcError], field: str, value: object) -> None:
    """INVALID_ARGUMENT naming `field`, the value quoted (short) in the message."""
    error = call.value
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
    assert field in bad_fields(error), (bad_fields(error), error.details())
    message = error.details() or ""
    assert f"{field}=" in message and len(message) <= MAX_MESSAGE_CHARS
    assert str(value)[:20] in message


@pytest.mark.parametrize("value", OUT_OF_RANGE)
@pytest.mark.parametrize("name", ["on_hand", "safety_stock"])
def test_a_snapshot_count_past_its_range_is_refused_and_changes_nothing(
    inventory: ipb_grpc.InventoryServiceStub, name: str, value: int
) -> None:
    """Given the tiny network, when a snapshot sets on_hand or safety_stock past [0, 10^9]
    (2^63-1 used to read back as -2^63, 2^53+1 rounded in Lua), then it is INVALID_ARGUMENT
    naming chunks[0].positions[1].<field>, and no position changed."""
    before = positions(inventory)
    fields: dict[str, Any] = {"node_id": "WH-FRA", "sku": "A", "on_hand": 1, name: value}
    chunk = ipb.SnapshotChunk(
        version=2,
        positions=[
            ipb.SnapshotPosition(node_id="WH-FRA", sku="B", on_hand=1),
            ipb.SnapshotPosition(**fields),
        ],
    )
    with pytest.raises(grpc.RpcError) as caught:
        inventory.ApplySnapshot(iter([chunk]))
    refused(caught, f"chunks[0].positions[1].{name}", value)
    assert positions(inventory) == before


@pytest.mark.parametrize("value", [2**63 - 2, 2**53 + 1, MAX_UNITS + 1, -1])
def test_a_safety_stock_near_2_63_is_refused_and_the_sku_stays_usable(
    inventory: ipb_grpc.InventoryServiceStub, allocation: apb_grpc.AllocationServiceStub, value: int
) -> None:
    """Given the tiny network, when an adjustment sets safety_stock near 2^63 (it used to be
    stored, and every later call on the sku was INTERNAL), then it is INVALID_ARGUMENT naming
    adjustments[0].safety_stock, nothing changed, and the sku still plans."""
    before = positions(inventory)
    request = ipb.AdjustInventoryRequest(
        idempotency_key="adj-big",
        adjustments=[
            ipb.Adjustment(node_id="WH-FRA", sku="A", on_hand_delta=0, safety_stock=value)
        ],
    )
    with pytest.raises(grpc.RpcError) as caught:
        inventory.AdjustInventory(request)
    refused(caught, "adjustments[0].safety_stock", value)
    assert positions(inventory) == before
    plan = allocation.Allocate(apb.AllocateRequest(order=order(A=1))).plan
    assert plan.status == apb.PLAN_STATUS_OPTIMAL


@pytest.mark.parametrize("delta", [MAX_UNITS + 1, -MAX_UNITS - 1, BIG, -BIG - 1])
def test_a_delta_past_10_9_is_refused(inventory: ipb_grpc.InventoryServiceStub, delta: int) -> None:
    """An on_hand_delta outside [-10^9, 10^9] is refused and changes nothing; the key stays
    unused (the same key with a good delta works afterwards, on_hand stopping at 10^9)."""
    before = positions(inventory)
    bad = ipb.Adjustment(node_id="WH-FRA", sku="A", on_hand_delta=delta)
    with pytest.raises(grpc.RpcError) as caught:
        inventory.AdjustInventory(
            ipb.AdjustInventoryRequest(idempotency_key="k", adjustments=[bad])
        )
    refused(caught, "adjustments[0].on_hand_delta", delta)
    assert positions(inventory) == before
    good = ipb.Adjustment(node_id="WH-FRA", sku="A", on_hand_delta=MAX_UNITS - 5)
    inventory.AdjustInventory(ipb.AdjustInventoryRequest(idempotency_key="k", adjustments=[good]))
    assert ("WH-FRA", "A", MAX_UNITS, 0, 0) in positions(inventory)


def test_a_snapshot_version_at_2_63_is_refused_and_the_stale_check_still_holds(
    inventory: ipb_grpc.InventoryServiceStub,
) -> None:
    """Given snapshot version 1 applied, when version 2^63-1 arrives (it used to be stored,
    rounded, and every later version counted as stale or not), then it is INVALID_ARGUMENT;
    version 2^53-1, the highest, applies, and a later 3 is ABORTED as older."""

    def snapshot(version: int, on_hand: int) -> Iterator[ipb.SnapshotChunk]:
        yield ipb.SnapshotChunk(
            version=version,
            positions=[ipb.SnapshotPosition(node_id="WH-FRA", sku="A", on_hand=on_hand)],
        )

    with pytest.raises(grpc.RpcError) as caught:
        inventory.ApplySnapshot(snapshot(BIG, 99))
    refused(caught, "chunks[0].version", BIG)
    assert ("WH-FRA", "A", 5, 0, 0) in positions(inventory)
    answer = inventory.ApplySnapshot(snapshot(MAX_VERSION, 8))
    assert answer.version == MAX_VERSION
    with pytest.raises(grpc.RpcError) as stale:
        inventory.ApplySnapshot(snapshot(3, 1))
    assert stale.value.code() == grpc.StatusCode.ABORTED
    assert ("WH-FRA", "A", 8, 0, 0) in positions(inventory)


@pytest.mark.parametrize("quantity", [MAX_UNITS + 1, 2**31 - 1])
def test_a_quantity_past_10_9_is_refused_and_holds_nothing(
    allocation: apb_grpc.AllocationServiceStub,
    inventory: ipb_grpc.InventoryServiceStub,
    quantity: int,
) -> None:
    """An order line of more than 10^9 units is INVALID_ARGUMENT naming order.lines[0].quantity,
    for Allocate and Reserve; nothing is held."""
    before = positions(inventory)
    for call in (
        lambda: allocation.Allocate(apb.AllocateRequest(order=order(A=quantity))),
        lambda: reserve(allocation, "big", order(A=quantity)),
    ):
        with pytest.raises(grpc.RpcError) as caught:
            call()
        refused(caught, "order.lines[0].quantity", quantity)
    assert positions(inventory) == before


@pytest.mark.parametrize("ttl", [2**31 - 1, -1])
def test_a_hold_longer_than_a_week_is_refused(
    allocation: apb_grpc.AllocationServiceStub, inventory: ipb_grpc.InventoryServiceStub, ttl: int
) -> None:
    before = positions(inventory)
    with pytest.raises(grpc.RpcError) as caught:
        reserve(allocation, "long", order(A=1), ttl=ttl)
    refused(caught, "ttl_seconds", ttl)
    assert positions(inventory) == before


@pytest.mark.parametrize("size", [MAX_ID_CHARS + 1, 100_000, 1_000_000])
def test_a_huge_id_is_invalid_argument_with_a_short_message(
    allocation: apb_grpc.AllocationServiceStub, inventory: ipb_grpc.InventoryServiceStub, size: int
) -> None:
    """A 1 MB reservation id or a 100 KB sku used to come back RESOURCE_EXHAUSTED (the status
    message, quoting it whole, was over the client's metadata limit); now it is
    INVALID_ARGUMENT quoting 80 characters with the length."""
    with pytest.raises(grpc.RpcError) as caught:
        allocation.GetReservation(apb.GetReservationRequest(reservation_id="r" * size))
    refused(caught, "reservation_id", "'rrrr")
    assert f"({size} chars)" in (caught.value.details() or "")
    with pytest.raises(grpc.RpcError) as caught:
        inventory.GetAvailability(ipb.GetAvailabilityRequest(skus=["A", "s" * size]))
    refused(caught, "skus[1]", "'ssss")


def test_rules_nested_too_deep_are_refused_not_internal(rules: rpb_grpc.RulesServiceStub) -> None:
    """Rule TOML nested 1,000 deep (arrays, inline tables, dotted keys) used to blow the
    parser's recursion (INTERNAL); it is INVALID_ARGUMENT naming toml, and nothing published."""
    revision = rules.GetRules(rpb.GetRulesRequest()).rules.revision
    deep = [
        "x = " + "[" * 1000 + "]" * 1000,
        "x = " + "{a=" * 1000 + "1" + "}" * 1000,
        ".".join(["a"] * 5000) + " = 1",
        "[" + ".".join(["a"] * 5000) + "]\nx = 1",
    ]
    calls = [
        lambda text: rules.ValidateRules(rpb.ValidateRulesRequest(toml=text)),
        lambda text: rules.PutRules(rpb.PutRulesRequest(toml=text, idempotency_key="deep")),
    ]
    for text in deep:
        for call in calls:
            with pytest.raises(grpc.RpcError) as caught:
                call(text)
            assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, caught.value.details()
            assert "toml" in bad_fields(caught.value)
            assert f"deeper than {MAX_RULES_NESTING}" in (caught.value.details() or "")
    assert rules.GetRules(rpb.GetRulesRequest()).rules.revision == revision


def test_an_expected_revision_at_2_63_is_refused(rules: rpb_grpc.RulesServiceStub) -> None:
    request = rpb.PutRulesRequest(
        toml=default_rules_text(), expected_revision=BIG, idempotency_key="r"
    )
    with pytest.raises(grpc.RpcError) as caught:
        rules.PutRules(request)
    refused(caught, "expected_revision", BIG)


# OrderService and the property over every field


@pytest.fixture(scope="module", params=["memory", "redis"])
def world(request: pytest.FixtureRequest) -> Iterator[Surface]:
    redis_url = request.getfixturevalue("redis_server") if request.param == "redis" else None
    yield from surface(request.param, redis_url)


def test_an_order_total_past_10_15_is_refused_and_stores_nothing(world: Surface) -> None:
    """Prices and quantities each within range can still multiply past int64 (2^62 x 4); an
    order's total is money too and must stay <= 10^15 minor units."""
    by_name = {m.name: m for m in METHODS}
    request: Any = BASE["PlaceOrder"]()
    request.lines[0].unit_price = MAX_MONEY
    request.lines[0].quantity = 4
    request.external_order_id = "total"
    before = world.state()
    answer = world.call(by_name["PlaceOrder"], request)
    assert answer.code == grpc.StatusCode.INVALID_ARGUMENT, answer.message
    assert "lines" in answer.bad_fields
    assert world.state() == before


@pytest.mark.parametrize(
    "token", ["²", "9" * 100, str(10**9 + 1), "-1", "1e3"], ids=["sup2", "huge", "past", "neg", "e"]
)
def test_a_page_token_that_is_no_offset_is_refused(world: Surface, token: str) -> None:
    by_name = {m.name: m for m in METHODS}
    answer = world.call(by_name["ListOrders"], opb.ListOrdersRequest(page_token=token))
    assert answer.code == grpc.StatusCode.INVALID_ARGUMENT, answer.message
    assert answer.bad_fields == ["page_token"]


def test_every_request_field_has_a_documented_range() -> None:
    """Each scalar and repeated field of every request message (and the messages inside them)
    has an entry in api/bounds.py FIELDS; enums are checked against their values and bools
    need none. A new field without a range fails here."""
    missing = []
    for method in METHODS:
        for steps in scalar_paths(method.input_type):
            f = leaf(BASE[method.name](), steps)
            if f.type in (FieldDescriptor.TYPE_ENUM, FieldDescriptor.TYPE_BOOL):
                continue
            if f.name not in FIELDS.get(f.containing_type.name, {}):
                missing.append(f"{f.containing_type.name}.{f.name}")
        stack = [method.input_type]
        while stack:
            d = stack.pop()
            for f in d.fields:
                if f.is_repeated and f.name not in FIELDS.get(d.name, {}):
                    missing.append(f"{d.name}.{f.name} (count)")
                if f.message_type is not None and f.message_type.file.package == "allocation.v1":
                    stack.append(f.message_type)
    assert not sorted(set(missing))


def _bound(f: FieldDescriptor) -> Any:
    spec = FIELDS[f.containing_type.name][f.name]
    return spec.each if isinstance(spec, Many) else spec


CASES = [
    (method, steps)
    for method in METHODS
    for steps in scalar_paths(method.input_type)
    if leaf(BASE[method.name](), steps).type
    not in (FieldDescriptor.TYPE_ENUM, FieldDescriptor.TYPE_BOOL)
    and _bound(leaf(BASE[method.name](), steps)) is not None
]

INT_RANGES = {
    FieldDescriptor.TYPE_INT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_INT64: (-(2**63), 2**63 - 1),
}


def edge_values(f: FieldDescriptor, bound: Any) -> st.SearchStrategy[Any]:
    """Values at and past `bound`, and the classic troublemakers, that the field's type holds."""
    if isinstance(bound, Whole):
        lo, hi = INT_RANGES[f.type]
        picks = [0, -1, 1, 2**31 - 1, 2**53 + 1, 2**63 - 1, -(2**63)]
        picks += [bound.lo, bound.hi, bound.lo - 1, bound.hi + 1]
        return st.sampled_from([v for v in picks if lo <= v <= hi]) | st.integers(lo, hi)
    if isinstance(bound, Real):
        picks = [0.0, -1.0, math.nan, math.inf, -math.inf, 1e308, float(2**53 + 1)]
        picks += [bound.lo, bound.hi, math.nextafter(bound.hi, math.inf)]
        return st.sampled_from(picks) | st.floats()
    if isinstance(bound, Toml):
        texts = [
            default_rules_text(),
            "",
            "x = " + "[" * 40 + "]" * 40,
            "x = " + "{a=" * 2000 + "1" + "}" * 2000,
            ".".join(["a"] * 3000) + " = 1",
            "a = '" + "x" * (bound.max_chars + 1) + "'",
            "= = =",
        ]
        return st.sampled_from(texts)
    if isinstance(bound, Text):
        sizes = [0, 1, bound.max_chars, bound.max_chars + 1, 100_000]
        return st.sampled_from(sizes).map(lambda n: "\u00e9x" * (n // 2) + "x" * (n % 2)) | st.text(
            max_size=200
        )
    assert isinstance(bound, Blob)
    return st.sampled_from([0, 1, bound.max_bytes, bound.max_bytes + 1]).map(lambda n: b"{" * n)


@settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    database=None,
    derandomize=True,
)
@given(data=st.data())
def test_every_field_at_and_past_its_range(world: Surface, data: st.DataObject) -> None:
    """For any request field and any value at or past its documented range: inside the range
    the answer is never INTERNAL or UNKNOWN; past it, it is INVALID_ARGUMENT naming the field
    (or RESOURCE_EXHAUSTED for too many entries), the message is bounded, and nothing the
    server holds changed (every Redis key compared, or every read RPC on memory)."""
    method, steps = data.draw(st.sampled_from(CASES), label="field")
    request = BASE[method.name]()
    f = leaf(request, steps)
    bound = _bound(f)
    value = data.draw(edge_values(f, bound), label=dotted(steps))
    put(request, steps, value)
    prefix = "chunks[0]." if streamed(method) else ""
    outside = not bound.admits(value)
    before = world.state() if outside else None
    answer = world.call(method, request)
    assert answer.code not in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN), answer
    assert len(answer.message) <= MAX_MESSAGE_CHARS and answer.trailer_bytes < 8192
    if outside:
        assert answer.code == grpc.StatusCode.INVALID_ARGUMENT, answer
        assert dotted(steps, prefix) in answer.bad_fields, answer
        assert world.state() == before


def test_property_cases_cover_every_bound() -> None:
    """The property above reaches every field with a range (so a new one is exercised)."""
    named = {(leaf(BASE[m.name](), s).containing_type.name, s[-1].name) for m, s in CASES}
    ranged = {
        (message, name)
        for message, fields in FIELDS.items()
        for name, spec in fields.items()
        if not isinstance(spec, Many) or spec.each is not None
    }
    assert ranged <= named, ranged - named
