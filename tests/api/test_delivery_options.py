"""GetDeliveryOptions over gRPC and the HTTP edge, against a real redis-server: what a checkout
offers is what Reserve then grants while the stock does not move; click & collect is "ready now"
from a store's own shelf and "ready by" the day a transfer arrives; nothing is held; bad values
are INVALID_ARGUMENT naming the field.

The network around Cologne (the ship-to): two warehouses, four active stores at increasing
distance, one inactive store right next to the ship-to (never offered) and a supplier.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import grpc
import httpx
import pytest

from allocation_engine.adapters.clock import FakeClock
from allocation_engine.adapters.redis.inventory import RedisStore
from allocation_engine.adapters.redis.tokens import RedisCallers
from allocation_engine.api.server import AllocationServer
from allocation_engine.app.orders import OrderConfig
from allocation_engine.app.serve import AccessConfig, ServeConfig, start
from allocation_engine.engine import Node, NodeType
from allocation_engine.engine.rules import default_rules_text
from allocation_engine.ports.inventory import SnapshotLine, SupplyLot
from allocation_engine.proto.allocation.v1 import allocation_pb2 as apb
from allocation_engine.proto.allocation.v1 import allocation_pb2_grpc as apb_grpc
from allocation_engine.proto.allocation.v1 import common_pb2 as cpb
from allocation_engine.proto.allocation.v1 import promise_pb2 as ppb
from allocation_engine.proto.allocation.v1 import promise_pb2_grpc as ppb_grpc
from allocation_engine.proto.allocation.v1 import rules_pb2 as rpb
from allocation_engine.proto.allocation.v1 import rules_pb2_grpc as rpb_grpc
from allocation_engine.service.access import register
from allocation_engine.service.promise import transit_days
from tests.support.grpc_inventory import bad_fields, start_server

NODES = [
    Node("WH-FRA", NodeType.WAREHOUSE, 50.11, 8.68, "DE"),
    Node("WH-BER", NodeType.WAREHOUSE, 52.52, 13.40, "DE"),
    Node("ST-CGN", NodeType.STORE, 50.94, 6.96, "DE", unit_handling_cost=0.25),
    Node("ST-BON", NodeType.STORE, 50.73, 7.10, "DE", unit_handling_cost=0.25),
    Node("ST-DUS", NodeType.STORE, 51.23, 6.78, "DE", unit_handling_cost=0.25),
    Node("ST-MUC", NodeType.STORE, 48.14, 11.58, "DE", unit_handling_cost=0.25),
    Node("ST-OLD", NodeType.STORE, 50.941, 6.961, "DE", active=False),
    Node("SU-HAM", NodeType.SUPPLIER, 53.55, 9.99, "DE", shipment_surcharge=1.5),
]

STOCK = [
    SnapshotLine("WH-FRA", "A", 10),
    SnapshotLine("WH-FRA", "B", 5),
    SnapshotLine("WH-FRA", "C", 2),
    SnapshotLine("WH-BER", "A", 20),
    SnapshotLine("WH-BER", "C", 10),
    SnapshotLine("ST-CGN", "A", 2),
    SnapshotLine("ST-CGN", "B", 1),
    SnapshotLine("ST-DUS", "B", 4),
    SnapshotLine("ST-MUC", "A", 5),
    SnapshotLine("ST-MUC", "C", 5),
    SnapshotLine("ST-OLD", "A", 50),
    SnapshotLine("SU-HAM", "D", 30),
    SnapshotLine("WH-FRA", "E", 0),  # E is only on its way (see the supply test)
]

COLOGNE = cpb.ShipTo(latitude=50.94, longitude=6.96, country="DE", postal_code="50667")
NEAREST = ["ST-CGN", "ST-BON", "ST-DUS"]  # ST-OLD is nearer still, but inactive

CARTS = [
    {"A": 1},
    {"A": 2, "B": 1},
    {"A": 3, "C": 1},
    {"B": 6, "C": 4},
    {"A": 12, "B": 2, "C": 3, "D": 5},
    {"A": 100},  # more than the whole network holds
]


@pytest.fixture
def server(redis_url: str, clock: FakeClock) -> Iterator[AllocationServer]:
    """A real server over the session's redis-server, seeded with the Cologne network."""
    store = RedisStore.from_url(redis_url)
    store.upsert_nodes(NODES)
    store.apply_snapshot(1, STOCK)
    running = start_server(store, clock)
    yield running
    running.stop(grace=0)


@pytest.fixture
def promise(channel: grpc.Channel) -> ppb_grpc.PromiseServiceStub:
    return ppb_grpc.PromiseServiceStub(channel)


def cart(lines: dict[str, int], **fields: object) -> ppb.GetDeliveryOptionsRequest:
    return ppb.GetDeliveryOptionsRequest(
        lines=[cpb.OrderLine(sku=sku, quantity=q) for sku, q in lines.items()],
        ship_to=COLOGNE,
        **fields,  # type: ignore[arg-type]
    )


def order_of(lines: dict[str, int], option: ppb.DeliveryOption) -> cpb.Order:
    """The order a checkout places for `option` of a cart."""
    return cpb.Order(
        id="o-checkout",
        lines=[cpb.OrderLine(sku=sku, quantity=q) for sku, q in lines.items()],
        ship_to=COLOGNE,
        delivery_mode=option.mode,
        pickup_store_id=option.pickup_store_id,
    )


def packages(option: ppb.DeliveryOption) -> list[tuple[str, list[tuple[str, int]], str]]:
    return sorted(
        (p.node_id, sorted((line.sku, line.quantity) for line in p.lines), p.transfer_to)
        for p in option.packages
    )


def shipments(plan: apb.Plan) -> list[tuple[str, list[tuple[str, int]], str]]:
    return sorted(
        (s.node_id, sorted((line.sku, line.quantity) for line in s.lines), s.transfer_to)
        for s in plan.shipments
    )


def options_of(answer: ppb.GetDeliveryOptionsResponse) -> list[ppb.DeliveryOption]:
    return [answer.home_delivery, *answer.click_and_collect]


def today(clock: FakeClock) -> date:
    return datetime.fromtimestamp(clock.now(), UTC).date()


@pytest.mark.parametrize(
    "lines", CARTS, ids=[",".join(f"{k}{v}" for k, v in c.items()) for c in CARTS]
)
def test_every_available_option_is_what_reserve_then_grants(
    lines: dict[str, int],
    promise: ppb_grpc.PromiseServiceStub,
    allocation: apb_grpc.AllocationServiceStub,
) -> None:
    """Given a cart, when its options are asked for and then each available one is reserved
    (and released again, so the stock does not move), then Reserve holds exactly the nodes,
    units and cost the option offered; an unavailable option names what is short."""
    answer = promise.GetDeliveryOptions(cart(lines))
    assert [o.pickup_store_id for o in answer.click_and_collect] == NEAREST
    for i, option in enumerate(options_of(answer)):
        if not option.available:
            assert option.shortfalls and not option.packages and not option.ready_date
            continue
        granted = allocation.Reserve(
            apb.ReserveRequest(idempotency_key=f"k-{i}", order=order_of(lines, option))
        ).reservation
        assert granted.state == apb.RESERVATION_STATE_HELD
        assert shipments(granted.plan) == packages(option), option.pickup_store_id
        assert granted.plan.total_cost == pytest.approx(option.total_cost)
        assert sum(p.cost for p in option.packages) == pytest.approx(option.total_cost)
        allocation.ReleaseReservation(
            apb.ReleaseReservationRequest(reservation_id=granted.id, idempotency_key=f"r-{i}")
        )
    assert promise.GetDeliveryOptions(cart(lines)) == answer  # nothing held, nothing moved


def test_asking_holds_nothing_and_matches_allocate(
    promise: ppb_grpc.PromiseServiceStub, allocation: apb_grpc.AllocationServiceStub
) -> None:
    """Given a cart, its home option is Allocate's plan of the same order; asking twice and
    then reserving the whole stock of A shows nothing was held by the asking."""
    lines = {"A": 3, "C": 1}
    answer = promise.GetDeliveryOptions(cart(lines))
    plan = allocation.Allocate(
        apb.AllocateRequest(order=order_of(lines, answer.home_delivery))
    ).plan
    assert shipments(plan) == packages(answer.home_delivery)
    assert plan.total_cost == pytest.approx(answer.home_delivery.total_cost)
    everything = cpb.Order(
        id="o-all",
        lines=[cpb.OrderLine(sku="A", quantity=37)],  # every active unit of A
        ship_to=COLOGNE,
    )
    held = allocation.Reserve(apb.ReserveRequest(idempotency_key="all", order=everything))
    assert held.reservation.state == apb.RESERVATION_STATE_HELD


def test_click_and_collect_is_ready_now_from_the_store_shelf_else_ready_by_a_transfer(
    promise: ppb_grpc.PromiseServiceStub, clock: FakeClock
) -> None:
    """Given ST-CGN holds A=2 and B=1, when the cart fits its shelf then it is ready now
    (today, no transfer, cost its handling only); when it does not, it is ready the day the
    transfer arrives: ship date + ceil(km / 500) + 1. Home delivery arrives on the same model."""
    day = today(clock)
    now = promise.GetDeliveryOptions(cart({"A": 2, "B": 1})).click_and_collect[0]
    assert (now.pickup_store_id, now.available) == ("ST-CGN", True)
    assert now.readiness == ppb.READINESS_READY_NOW
    assert packages(now) == [("ST-CGN", [("A", 2), ("B", 1)], "")]
    assert (now.ship_date, now.ready_date) == (day.isoformat(), day.isoformat())
    assert now.total_cost == pytest.approx(0.75)

    answer = promise.GetDeliveryOptions(cart({"A": 3, "C": 1}))
    later = answer.click_and_collect[0]
    assert later.readiness == ppb.READINESS_READY_BY
    transfers = [p for p in later.packages if p.transfer_to == "ST-CGN"]
    assert transfers
    arrives = max(day + timedelta(days=transit_days(p.distance_km)) for p in transfers)
    assert later.ready_date == arrives.isoformat() and later.ready_date > day.isoformat()
    for p in later.packages:
        if p.node_id == "ST-CGN":
            assert p.arrival_date == p.ship_date == day.isoformat()

    home = answer.home_delivery
    assert home.mode == cpb.DELIVERY_MODE_SHIP_TO_ADDRESS
    assert home.readiness == ppb.READINESS_UNSPECIFIED
    for p in home.packages:
        assert p.ship_date == day.isoformat()
        assert p.arrival_date == (day + timedelta(days=transit_days(p.distance_km))).isoformat()
    assert home.ready_date == max(p.arrival_date for p in home.packages)


def test_an_option_that_waits_for_incoming_supply_is_ready_by_the_day_it_ships(
    server: AllocationServer,
    promise: ppb_grpc.PromiseServiceStub,
    allocation: apb_grpc.AllocationServiceStub,
    rules: rpb_grpc.RulesServiceStub,
    clock: FakeClock,
) -> None:
    """Given backorders enabled and E only on its way (a lot due at ST-CGN in 3 days), when a
    cart of E is asked for, then click & collect at ST-CGN ships from that lot in 3 days and is
    ready by then (not ready now), and Reserve grants that same plan."""
    day = today(clock)
    server.services.store.put_supply(
        "s-1", [SupplyLot("PO-1", "ST-CGN", "E", 5, day + timedelta(days=3))]
    )
    enabled = re.sub(
        r"(\[backorders\][^\[]*?)enabled = false", r"\1enabled = true", default_rules_text()
    )
    rules.PutRules(rpb.PutRulesRequest(toml=enabled, expected_revision=0, idempotency_key="p1"))
    lines = {"E": 2}
    store = promise.GetDeliveryOptions(cart(lines)).click_and_collect[0]
    assert (store.pickup_store_id, store.available) == ("ST-CGN", True)
    assert store.readiness == ppb.READINESS_READY_BY
    assert packages(store) == [("ST-CGN", [("E", 2)], "")]
    in_three = (day + timedelta(days=3)).isoformat()
    assert (store.ship_date, store.ready_date) == (in_three, in_three)
    granted = allocation.Reserve(
        apb.ReserveRequest(idempotency_key="k-e", order=order_of(lines, store))
    ).reservation
    assert shipments(granted.plan) == packages(store)
    assert granted.plan.total_cost == pytest.approx(store.total_cost)


def test_unfillable_options_list_the_shortfall(promise: ppb_grpc.PromiseServiceStub) -> None:
    """Given more A than the active network holds (37), every option is unavailable and says
    how much A it is short of."""
    answer = promise.GetDeliveryOptions(cart({"A": 100, "B": 1}))
    for option in options_of(answer):
        assert not option.available
        assert [(s.sku, s.requested) for s in option.shortfalls] == [("A", 100)]
        assert option.shortfalls[0].available < 100


def test_the_answer_says_what_it_read_and_how_many_stores(
    promise: ppb_grpc.PromiseServiceStub, rules: rpb_grpc.RulesServiceStub, clock: FakeClock
) -> None:
    """The answer names the network version, the rules revision (0 before any is published,
    then the published one) and the read time; pickup_stores picks how many stores (0: home
    delivery only, unset: 3)."""
    first = promise.GetDeliveryOptions(cart({"A": 1}))
    assert (first.network_version, first.rules_revision) == (1, 0)
    assert first.read_at.ToSeconds() == int(clock.now())
    assert first.today == today(clock).isoformat()
    current = rules.GetRules(rpb.GetRulesRequest()).rules
    rules.PutRules(
        rpb.PutRulesRequest(toml=current.toml, expected_revision=0, idempotency_key="p1")
    )
    again = promise.GetDeliveryOptions(cart({"A": 1}, pickup_stores=0))
    assert again.rules_revision == 1
    assert not again.click_and_collect and again.home_delivery.available
    many = promise.GetDeliveryOptions(cart({"A": 1}, pickup_stores=10))
    assert [o.pickup_store_id for o in many.click_and_collect] == [*NEAREST, "ST-MUC"]


def quantity_of(value: int) -> bytes:
    """A GetDeliveryOptionsRequest with one line of sku A and `value` written as its quantity
    (varint), which protobuf's own setters refuse past int32: as a hostile client sends it."""
    varint = bytearray()
    rest = value
    while True:
        byte, rest = rest & 0x7F, rest >> 7
        varint.append(byte | (0x80 if rest else 0))
        if not rest:
            break
    line = b"\x0a\x01A" + b"\x10" + bytes(varint)
    ship_to = COLOGNE.SerializeToString()
    return b"\x0a" + bytes([len(line)]) + line + b"\x12" + bytes([len(ship_to)]) + ship_to


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (cart({"A": 0}), "lines[0].quantity"),
        (cart({"A": 1, "ZZ": 1}), "lines[1].sku"),
        (cart({"A": 1}, pickup_stores=11), "pickup_stores"),
        (
            ppb.GetDeliveryOptionsRequest(
                lines=[cpb.OrderLine(sku="A", quantity=1)],
                ship_to=cpb.ShipTo(latitude=91.0, longitude=6.96, country="DE"),
            ),
            "ship_to.latitude",
        ),
        (ppb.GetDeliveryOptionsRequest(ship_to=COLOGNE), "lines"),
        (ppb.GetDeliveryOptionsRequest(lines=[cpb.OrderLine(sku="A", quantity=1)]), "ship_to"),
    ],
    ids=["quantity-0", "unknown-sku", "11-stores", "latitude-91", "no-lines", "no-ship-to"],
)
def test_bad_values_are_invalid_argument_naming_the_field(
    request_: ppb.GetDeliveryOptionsRequest, field: str, promise: ppb_grpc.PromiseServiceStub
) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        promise.GetDeliveryOptions(request_)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad_fields(caught.value) == [field]


def test_a_quantity_of_ten_billion_is_invalid_argument(channel: grpc.Channel) -> None:
    """10^10 does not fit the int32 quantity: what reaches the server is out of range and is
    refused naming the field, never planned."""
    raw: grpc.UnaryUnaryMultiCallable[bytes, ppb.GetDeliveryOptionsResponse]
    raw = channel.unary_unary(
        "/allocation.v1.PromiseService/GetDeliveryOptions",
        request_serializer=None,
        response_deserializer=ppb.GetDeliveryOptionsResponse.FromString,
    )
    with pytest.raises(grpc.RpcError) as caught:
        raw(quantity_of(10**10))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad_fields(caught.value) == ["lines[0].quantity"]


def test_the_http_edge_answers_delivery_options_as_grpc_does(
    redis_url: str, tmp_path: Path
) -> None:
    """Given a server with its HTTP edge over Redis (the demo network), when a cart is POSTed
    to /v1/delivery-options as protobuf JSON, then the answer is the gRPC answer in JSON; a bad
    value is a 400 naming the field."""
    orders = OrderConfig(
        redis_url=redis_url, mail_dir=str(tmp_path / "mail"), wms_dir=str(tmp_path / "wms")
    )
    running = start(ServeConfig(port=0, http_port=0, demo=True, redis_url=redis_url, orders=orders))
    try:
        assert running.http is not None
        body = {
            "lines": [{"sku": "SKU-0001", "quantity": 1}, {"sku": "SKU-0002", "quantity": 2}],
            "ship_to": {"latitude": 50.94, "longitude": 6.96, "country": "DE"},
            "pickup_stores": 2,
        }
        answer = httpx.post(running.http.url + "/v1/delivery-options", json=body)
        assert answer.status_code == 200, answer.text
        got = answer.json()
        with grpc.insecure_channel(running.server.address) as channel:
            stub = ppb_grpc.PromiseServiceStub(channel)
            request = ppb.GetDeliveryOptionsRequest(
                lines=[
                    cpb.OrderLine(sku="SKU-0001", quantity=1),
                    cpb.OrderLine(sku="SKU-0002", quantity=2),
                ],
                ship_to=cpb.ShipTo(latitude=50.94, longitude=6.96, country="DE"),
                pickup_stores=2,
            )
            expected = stub.GetDeliveryOptions(request)
        assert got["home_delivery"]["available"] is True
        assert got["home_delivery"]["total_cost"] == pytest.approx(
            expected.home_delivery.total_cost
        )
        assert (
            [o["pickup_store_id"] for o in got["click_and_collect"]]
            == [o.pickup_store_id for o in expected.click_and_collect]
            == ["ST-COLOGNE", "ST-BONN"]
        )
        assert got["click_and_collect"][0]["readiness"] in (
            "READINESS_READY_NOW",
            "READINESS_READY_BY",
        )
        body["pickup_stores"] = 11
        refused = httpx.post(running.http.url + "/v1/delivery-options", json=body)
        assert refused.status_code == 400
        assert [p["field"] for p in refused.json()["problems"]] == ["pickup_stores"]
    finally:
        running.stop(1.0)


def test_the_http_route_takes_the_allocate_scope_and_the_callers_channels(
    redis_url: str, tmp_path: Path
) -> None:
    """Given a server with --auth, when a shop token without the allocate scope asks, then 403;
    a shop token given it asks for its own channel (200) and for another one (403); no token is
    401."""
    registry = RedisCallers.from_url(redis_url)
    plain = register(registry, name="plain-shop", role="shop", channels=["app-de"]).token
    checkout = register(
        registry, name="checkout", role="shop", scopes=["allocate"], channels=["app-de"]
    ).token
    orders = OrderConfig(
        redis_url=redis_url, mail_dir=str(tmp_path / "mail"), wms_dir=str(tmp_path / "wms")
    )
    running = start(
        ServeConfig(
            port=0,
            http_port=0,
            demo=True,
            redis_url=redis_url,
            orders=orders,
            access=AccessConfig(auth=True),
        )
    )
    try:
        assert running.http is not None
        route = running.http.url + "/v1/delivery-options"
        body = {
            "lines": [{"sku": "SKU-0001", "quantity": 1}],
            "ship_to": {"latitude": 50.94, "longitude": 6.96, "country": "DE"},
            "channel": "app-de",
        }

        def post(token: str | None, **changes: str) -> int:
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            return httpx.post(route, json=body | changes, headers=headers).status_code

        assert post(None) == 401
        assert post(plain) == 403
        assert post(checkout) == 200
        assert post(checkout, channel="web") == 403
    finally:
        running.stop(1.0)
