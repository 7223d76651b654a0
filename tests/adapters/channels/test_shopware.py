"""The Shopware 6 adapter over real HTTP against a local Shopware peer: the app system's signed
`checkout.order.placed` webhook read into a ChannelOrder, and parcels confirmed on the order's
delivery through the Admin API (OAuth client credentials), once per parcel."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from allocation_engine.adapters.channels import Connection
from allocation_engine.adapters.channels.shopware import CREDENTIALS, OPTIONS, connect
from allocation_engine.adapters.http_client import RetryPolicy
from allocation_engine.errors import BadSignature, InvalidInput, PeerRefused, PeerUnavailable
from allocation_engine.ports.channels import (
    ChannelSettings,
    ParcelShipped,
    ShipmentConfirmer,
    ShippedLine,
    WebhookSource,
)
from allocation_engine.testing.channel_peers import PlatformPeer
from allocation_engine.testing.channel_peers.shopware import ShopwarePeer
from allocation_engine.testing.http_peer import HttpPeer, PeerRequest
from tests.adapters.channels.fuzz import untyped_errors

DATA = Path(__file__).resolve().parents[2] / "data" / "channels" / "shopware"
FAST = RetryPolicy(attempts=3, initial=0.01, maximum=0.05)
B2C_ORDER = "0a5c1f7e3b9d4c2a8e6f1b3d5c7a9e01"
B2B_ORDER = "5f0e1d2c3b4a49588776655443322110"


def sample(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((DATA / name).read_text(encoding="utf-8"))
    return loaded


@pytest.fixture
def peer() -> Iterator[ShopwarePeer]:
    shop = ShopwarePeer(sample("order_placed_b2c.json")).start()
    yield shop
    shop.stop()


@pytest.fixture
def b2b_peer() -> Iterator[ShopwarePeer]:
    shop = ShopwarePeer(sample("order_placed_b2b.json")).start()
    yield shop
    shop.stop()


def connection(shop: ShopwarePeer, **secrets: str) -> Connection:
    settings = ChannelSettings(
        name="shopware-de",
        kind="shopware",
        base_url=shop.url,
        credentials={role: f"SHOPWARE_{role.upper()}" for role in shop.secrets()},
        options=shop.options(),
    )
    return connect(settings, {**shop.secrets(), **secrets}, retry=FAST)


def webhook(shop: ShopwarePeer) -> WebhookSource:
    source = connection(shop).webhook
    assert source is not None
    return source


def confirmer(shop: ShopwarePeer, **secrets: str) -> ShipmentConfirmer:
    found = connection(shop, **secrets).confirmer
    assert found is not None
    return found


def lowered(headers: dict[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


def parcel(shipment_id: str, tracking: str, lines: dict[str, int]) -> ParcelShipped:
    return ParcelShipped(
        channel="shopware-de",
        order_id="O-000042",
        external_id=B2C_ORDER,
        shipment_id=shipment_id,
        node_id="WH-BERLIN",
        carrier="DHL",
        tracking_number=tracking,
        lines=tuple(ShippedLine(sku, qty) for sku, qty in lines.items()),
        shipped_at=1_796_100_000.0,
    )


def test_the_signed_webhook_the_shop_sends_is_accepted(peer: ShopwarePeer) -> None:
    """Given the peer POSTing its sample to an edge, then the adapter verifies the
    shopware-shop-signature over the raw body it received, names the delivery by
    X-Shopware-Event-Id and reads the order placed."""
    edge = HttpPeer()
    edge.route("POST", "/webhooks/{channel}", lambda request: (200, {}))
    edge.start()
    try:
        assert peer.new_order(edge.url, "shopware-de") == B2C_ORDER
        [request] = edge.received("POST", "^/webhooks/shopware-de$")
    finally:
        edge.stop()
    source = webhook(peer)
    source.verify(request.headers, request.body)
    assert source.delivery_id(request.headers, request.body) == "b1e6d0a4c3f24e5a9d8c7b6a5f4e3d21"
    assert [o.external_id for o in source.orders(request.headers, request.body)] == [B2C_ORDER]


def test_a_wrong_or_missing_signature_is_refused(peer: ShopwarePeer) -> None:
    """Given a body signed with another secret, a body changed after signing, or no signature
    header at all, then verify raises BadSignature naming shopware-shop-signature."""
    body = json.dumps(peer.sample).encode()
    source = webhook(peer)
    wrong = lowered(peer.signed(body, secret="not-the-shop-secret"))
    tampered = lowered(peer.signed(body))
    missing = {k: v for k, v in lowered(peer.signed(body)).items() if "signature" not in k}
    for headers, raw in ((wrong, body), (tampered, body + b" "), (missing, body)):
        with pytest.raises(BadSignature) as refused:
            source.verify(headers, raw)
        assert refused.value.header == "shopware-shop-signature"
        assert refused.value.channel == "shopware-de"


def test_the_b2c_order_is_decoded(peer: ShopwarePeer) -> None:
    """Given the B2C sample (two product lines, Berlin, paid), then the ChannelOrder carries the
    order's id, the product numbers, quantities and unit prices in cents, the ship-to with
    the additional address line, the customer, EUR, language de, paid and not b2b."""
    body = json.dumps(peer.sample).encode()
    [order] = webhook(peer).orders(lowered(peer.signed(body)), body)
    assert order.external_id == B2C_ORDER
    assert [(line.sku, line.quantity, line.unit_price) for line in order.lines] == [
        ("MUG-WHT-350", 2, 2499),
        ("TOWEL-LIN-3", 1, 2600),
    ]
    assert order.lines[0].name == "Emaille-Becher weiß 350 ml"
    assert order.ship_to.country == "DE"
    assert order.ship_to.postal_code == "10115"
    assert order.ship_to.city == "Berlin"
    assert order.ship_to.street == "Invalidenstraße 42 Hinterhaus, 3. OG"
    assert order.ship_to.name == "Lena Hoffmann"
    assert (order.ship_to.latitude, order.ship_to.longitude) == (None, None)
    assert order.email == "lena.hoffmann@example.org"
    assert order.customer_id == "7a8b9c0d1e2f4a3b8c5d6e7f8a9b0c1d"
    assert order.currency == "EUR"
    assert order.language == "de"
    assert (order.b2b, order.paid, order.company, order.tax_id) == (False, True, "", "")
    assert peer.received("GET", "^/api/country/") == []


def test_the_b2b_order_is_decoded_and_its_country_read_from_the_admin_api(
    b2b_peer: ShopwarePeer,
) -> None:
    """Given the B2B sample (company and VAT id, invoice not yet paid, a promotion line, a
    ship-to with only a countryId), then the order is b2b with its company and tax id, not
    paid, has the three product lines only, and its country is read with GET
    /api/country/{countryId} under a bearer token."""
    body = json.dumps(b2b_peer.sample).encode()
    [order] = webhook(b2b_peer).orders(lowered(b2b_peer.signed(body)), body)
    assert order.external_id == B2B_ORDER
    assert [(line.sku, line.quantity, line.unit_price) for line in order.lines] == [
        ("MUG-WHT-350", 3, 2100),
        ("POT-CI-28", 1, 6475),
        ("BOARD-OAK-M", 2, 1050),
    ]
    assert (order.ship_to.country, order.ship_to.postal_code) == ("DE", "80331")
    assert order.ship_to.company == "Küchenwerk München GmbH"
    assert order.email == "einkauf@kuechenwerk-muenchen.example"
    assert (order.b2b, order.paid) == (True, False)
    assert (order.company, order.tax_id) == ("Küchenwerk München GmbH", "DE287654321")
    [lookup] = b2b_peer.received("GET", "^/api/country/")
    assert lookup.path == "/api/country/d2c4b1a0e9f84c7db6a5f4e3d2c1b0a9"
    assert lookup.headers["authorization"].startswith("Bearer ")


def test_an_order_without_its_associations_is_read_through_the_admin_api(
    peer: ShopwarePeer,
) -> None:
    """Given a webhook whose order lacks lineItems and deliveries (an app without read
    permission on them gets the entity without), then the order is read with POST
    /api/search/order and decoded from the shop's answer."""
    event = copy.deepcopy(peer.sample)
    for association in ("lineItems", "deliveries"):
        del event["data"]["payload"]["order"][association]
    body = json.dumps(event).encode()
    [order] = webhook(peer).orders(lowered(peer.signed(body)), body)
    assert [line.sku for line in order.lines] == ["MUG-WHT-350", "TOWEL-LIN-3"]
    assert order.ship_to.postal_code == "10115"
    [search] = peer.received("POST", "^/api/search/order$")
    assert search.json()["ids"] == [B2C_ORDER]


def test_another_event_brings_no_order(peer: ShopwarePeer) -> None:
    """Given a verified webhook for another event (state_enter.order.state.cancelled), then it
    brings no order."""
    event = copy.deepcopy(peer.sample)
    event["data"]["event"] = "state_enter.order.state.cancelled"
    body = json.dumps(event).encode()
    assert webhook(peer).orders(lowered(peer.signed(body)), body) == []


def test_a_bad_payload_names_every_bad_field(peer: ShopwarePeer) -> None:
    """Given an order whose first line's unitPrice is not a number and whose ship-to has no
    zipcode, then InvalidInput names both fields by their path in the webhook body and
    quotes the values."""
    event = copy.deepcopy(peer.sample)
    order = event["data"]["payload"]["order"]
    order["lineItems"][0]["unitPrice"] = "zwanzig"
    order["deliveries"][0]["shippingOrderAddress"]["zipcode"] = ""
    body = json.dumps(event).encode()
    with pytest.raises(InvalidInput) as bad:
        webhook(peer).orders(lowered(peer.signed(body)), body)
    fields = {p.field: p.value for p in bad.value.problems}
    assert fields == {
        "data.payload.order.lineItems[0].unitPrice": "zwanzig",
        "data.payload.order.deliveries[0].shippingOrderAddress.zipcode": "",
    }
    with pytest.raises(InvalidInput) as not_json:
        webhook(peer).orders({}, b"{not json")
    assert not_json.value.problems[0].field == "body"


def test_a_parcel_with_every_line_ships_the_delivery_once(peer: ShopwarePeer) -> None:
    """Given a parcel holding every line, when it is confirmed twice, then the delivery holds
    its tracking code, records the parcel (carrier, lines by product number) and is moved
    with the ship transition; the second confirm patches and transitions nothing."""
    confirm = confirmer(peer)
    whole = parcel("O-000042-S1", "00340434161094042557", {"MUG-WHT-350": 2, "TOWEL-LIN-3": 1})
    confirm.confirm(whole)
    confirm.confirm(whole)
    delivery = peer.delivery(B2C_ORDER)
    assert delivery["trackingCodes"] == ["00340434161094042557"]
    assert delivery["stateMachineState"]["technicalName"] == "shipped"
    [confirmation] = peer.confirmations(B2C_ORDER)
    assert confirmation["carrier"] == "DHL"
    assert confirmation["tracking_number"] == "00340434161094042557"
    assert confirmation["lines"] == {"MUG-WHT-350": 2, "TOWEL-LIN-3": 1}
    assert confirmation["raw"]["trackingCodes"] == ["00340434161094042557"]
    assert len(peer.received("PATCH", "^/api/order-delivery/")) == 1
    [move] = peer.received("POST", "^/api/_action/order_delivery/")
    assert move.path == "/api/_action/order_delivery/9e8d7c6b5a4f43e2d1c0b9a8f7e6d5c4/state/ship"
    assert len(peer.received("POST", "^/api/oauth/token$")) == 1


def test_parcels_of_part_of_the_order_ship_it_partially_then_fully(peer: ShopwarePeer) -> None:
    """Given two parcels from two warehouses, then the first moves the delivery to
    shipped_partially, the second (which completes the order) to shipped, and the delivery
    holds both tracking codes and both parcels."""
    confirm = confirmer(peer)
    confirm.confirm(parcel("O-000042-S1", "TRACK-A", {"MUG-WHT-350": 2}))
    assert peer.delivery(B2C_ORDER)["stateMachineState"]["technicalName"] == "shipped_partially"
    confirm.confirm(parcel("O-000042-S2", "TRACK-B", {"TOWEL-LIN-3": 1}))
    delivery = peer.delivery(B2C_ORDER)
    assert delivery["stateMachineState"]["technicalName"] == "shipped"
    assert delivery["trackingCodes"] == ["TRACK-A", "TRACK-B"]
    assert [(c["tracking_number"], c["lines"]) for c in peer.confirmations(B2C_ORDER)] == [
        ("TRACK-A", {"MUG-WHT-350": 2}),
        ("TRACK-B", {"TOWEL-LIN-3": 1}),
    ]
    moves = [r.path.rsplit("/", 1)[1] for r in peer.received("POST", "^/api/_action/")]
    assert moves == ["ship_partially", "ship"]


def test_an_expired_token_is_fetched_anew(peer: ShopwarePeer) -> None:
    """Given a token the shop no longer accepts, then the next call's 401 fetches a new one
    with the client credentials and the confirmation goes through."""
    confirm = confirmer(peer)
    confirm.confirm(parcel("O-000042-S1", "TRACK-A", {"MUG-WHT-350": 2}))
    peer.expire_tokens()
    confirm.confirm(parcel("O-000042-S2", "TRACK-B", {"TOWEL-LIN-3": 1}))
    assert len(peer.received("POST", "^/api/oauth/token$")) == 2
    assert len(peer.confirmations(B2C_ORDER)) == 2


def test_wrong_client_credentials_are_a_final_refusal(peer: ShopwarePeer) -> None:
    """Given a wrong client secret, then the token route's 401 is PeerRefused, not retried."""
    with pytest.raises(PeerRefused) as refused:
        confirmer(peer, client_secret="wrong").confirm(parcel("S1", "T1", {"MUG-WHT-350": 2}))
    assert refused.value.status == 401
    assert len(peer.received("POST", "^/api/oauth/token$")) == 1


def test_an_unreachable_shop_is_retried_later_and_confirmed_once(peer: ShopwarePeer) -> None:
    """Given the shop down, then confirm raises PeerUnavailable; once it is up again the same
    parcel is confirmed, and only once."""
    confirm = confirmer(peer)
    whole = parcel("O-000042-S1", "TRACK-A", {"MUG-WHT-350": 2, "TOWEL-LIN-3": 1})
    peer.down()
    with pytest.raises(PeerUnavailable):
        confirm.confirm(whole)
    peer.up()
    confirm.confirm(whole)
    confirm.confirm(whole)
    assert len(peer.confirmations(B2C_ORDER)) == 1
    assert peer.delivery(B2C_ORDER)["stateMachineState"]["technicalName"] == "shipped"


def test_a_rate_limited_shop_is_waited_for(peer: ShopwarePeer) -> None:
    """Given the shop answering the next two calls 429 with Retry-After, then the client
    waits and the confirmation still arrives."""
    peer.throttle(2)
    confirmer(peer).confirm(parcel("O-000042-S1", "TRACK-A", {"MUG-WHT-350": 2}))
    assert [c["tracking_number"] for c in peer.confirmations(B2C_ORDER)] == ["TRACK-A"]


def test_a_transition_that_already_happened_is_accepted(peer: ShopwarePeer) -> None:
    """Given a delivery the shop moved to shipped after we read it (a first try whose answer
    was lost), then the refused transition is read back and the confirmation stands."""
    original = peer._transition

    def moved_meanwhile(request: PeerRequest) -> Any:
        peer._orders[B2C_ORDER]["deliveries"][0]["stateMachineState"] = {"technicalName": "shipped"}
        return original(request)

    peer.route("POST", "/api/_action/order_delivery/{id}/state/{transition}", moved_meanwhile)
    peer._routes.insert(0, peer._routes.pop())
    confirmer(peer).confirm(parcel("O-000042-S1", "TRACK-A", {"MUG-WHT-350": 2, "TOWEL-LIN-3": 1}))
    assert peer.delivery(B2C_ORDER)["stateMachineState"]["technicalName"] == "shipped"


def test_the_peer_offers_the_platform_peer_surface(peer: ShopwarePeer) -> None:
    """Given the peer, then it has the PlatformPeer surface: a secret for every credential the
    adapter reads, the options it needs, and the sample's platform skus mapped to demo skus
    (different strings, so the mapping is exercised)."""
    surface: PlatformPeer = peer
    assert sorted(surface.secrets()) == sorted(CREDENTIALS)
    assert all(surface.secrets().values())
    assert {k for k, required in OPTIONS.items() if required} <= set(surface.options())
    assert surface.skus() == {"MUG-WHT-350": "SKU-0001", "TOWEL-LIN-3": "SKU-0002"}
    assert surface.confirmations(str(peer.order_id)) == []


def test_a_non_ascii_signature_header_is_a_bad_signature(peer: ShopwarePeer) -> None:
    """Given a shopware-shop-signature with non-ASCII characters (Starlette decodes header
    bytes as latin-1), when verified, then BadSignature, not compare_digest's TypeError."""
    body = json.dumps(peer.sample).encode()
    signed = lowered(peer.signed(body))
    for given in ("é" + signed["shopware-shop-signature"][1:], "\u00e4" * 64, "\ud800"):
        with pytest.raises(BadSignature):
            webhook(peer).verify(signed | {"shopware-shop-signature": given}, body)


def test_a_body_nested_too_deep_has_no_delivery_id_and_is_refused(peer: ShopwarePeer) -> None:
    """Given a body of 100000 nested lists (json.loads raises RecursionError), then its
    delivery id is "" (no event id header) and reading it is InvalidInput naming the body."""
    body = b"[" * 100_000 + b"]" * 100_000
    source = webhook(peer)
    assert source.delivery_id({}, body) == ""
    with pytest.raises(InvalidInput) as refused:
        source.orders({}, body)
    assert [p.field for p in refused.value.problems] == ["body"]


def test_wrong_typed_fields_of_the_payload_raise_only_typed_errors(peer: ShopwarePeer) -> None:
    """Given every field of the B2C webhook replaced in turn by null, a number, a bool, a
    list, an object, a string and a lone surrogate, when read, then only InvalidInput,
    PeerUnavailable or PeerRefused come out; a lone surrogate is InvalidInput naming it."""
    source = webhook(peer)

    def read(doc: Any) -> object:
        body = json.dumps(doc).encode()
        return source.orders(lowered(peer.signed(body)), body)

    assert untyped_errors(peer.sample, read) == []
    event = copy.deepcopy(peer.sample)
    event["data"]["payload"]["order"]["orderCustomer"]["email"] = "\ud800@example.com"
    with pytest.raises(InvalidInput) as refused:
        read(event)
    assert [p.field for p in refused.value.problems] == ["data.payload.order.orderCustomer.email"]
