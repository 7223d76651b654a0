"""The BigCommerce adapter over real HTTP against a local BigCommerce peer: the thin
`store/order/created` webhook (custom header and Standard Webhooks signature) read into a
ChannelOrder through the V2 Orders API, and parcels confirmed as order shipments, once."""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from allocation_engine.adapters.channels import Connection
from allocation_engine.adapters.channels.bigcommerce import (
    CREDENTIALS,
    OPTIONS,
    connect,
    quota_wait,
)
from allocation_engine.adapters.http_client import RetryPolicy
from allocation_engine.errors import BadSignature, InvalidInput, PeerUnavailable
from allocation_engine.ports.channels import (
    ChannelSettings,
    ParcelShipped,
    ShipmentConfirmer,
    ShippedLine,
    WebhookSource,
)
from allocation_engine.testing.channel_peers import PlatformPeer
from allocation_engine.testing.channel_peers.bigcommerce import BigCommercePeer
from allocation_engine.testing.http_peer import HttpPeer
from tests.adapters.channels.fuzz import Rewrites, untyped_errors

DATA = Path(__file__).resolve().parents[2] / "data" / "channels" / "bigcommerce"
FAST = RetryPolicy(attempts=3, initial=0.01, maximum=0.05)


def sample(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((DATA / name).read_text(encoding="utf-8"))
    return loaded


def started(data: dict[str, Any]) -> BigCommercePeer:
    return BigCommercePeer(data).start()


@pytest.fixture
def peer() -> Iterator[BigCommercePeer]:
    store = started(sample("order_created_b2c.json"))
    yield store
    store.stop()


def connection(store: BigCommercePeer) -> Connection:
    settings = ChannelSettings(
        name="bigcommerce-de",
        kind="bigcommerce",
        base_url=store.url,
        credentials={role: f"BIGCOMMERCE_{role.upper()}" for role in store.secrets()},
        options=store.options(),
    )
    return connect(settings, store.secrets(), retry=FAST)


def webhook(store: BigCommercePeer) -> WebhookSource:
    source = connection(store).webhook
    assert source is not None
    return source


def confirmer(store: BigCommercePeer) -> ShipmentConfirmer:
    found = connection(store).confirmer
    assert found is not None
    return found


def hook(store: BigCommercePeer, **changes: Any) -> tuple[dict[str, str], bytes]:
    """The store's webhook (with `changes` to its payload), signed, headers lower-case."""
    payload = {**copy.deepcopy(store.sample["webhook"]), **changes}
    body = json.dumps(payload).encode()
    return {k.lower(): v for k, v in store.signed(body).items()}, body


def parcel(shipment_id: str, tracking: str, lines: dict[str, int]) -> ParcelShipped:
    return ParcelShipped(
        channel="bigcommerce-de",
        order_id="O-000043",
        external_id="1187",
        shipment_id=shipment_id,
        node_id="WH-HAMBURG",
        carrier="DHL",
        tracking_number=tracking,
        lines=tuple(ShippedLine(sku, qty) for sku, qty in lines.items()),
        shipped_at=1_796_100_000.0,
    )


WHOLE = {"CUP-ESP-90": 2, "JUG-STL-300": 1, "BEAN-HM-500": 3}


def test_the_webhook_the_store_sends_is_accepted_and_the_order_fetched(
    peer: BigCommercePeer,
) -> None:
    """Given the peer POSTing its hook to an edge, then the adapter verifies the custom header
    and the webhook-signature over the raw body, names the delivery by webhook-id and reads
    the order through the V2 API with the X-Auth-Token."""
    edge = HttpPeer()
    edge.route("POST", "/webhooks/{channel}", lambda request: (200, {}))
    edge.start()
    try:
        assert peer.new_order(edge.url, "bigcommerce-de") == "1187"
        [request] = edge.received("POST", "^/webhooks/bigcommerce-de$")
    finally:
        edge.stop()
    source = webhook(peer)
    source.verify(request.headers, request.body)
    assert source.delivery_id(request.headers, request.body) == request.headers["webhook-id"]
    [order] = source.orders(request.headers, request.body)
    assert order.external_id == "1187"
    paths = [r.path for r in peer.received("GET", "^/stores/")]
    assert paths == [
        "/stores/k7nd42x1qa/v2/orders/1187",
        "/stores/k7nd42x1qa/v2/orders/1187/products",
        "/stores/k7nd42x1qa/v2/orders/1187/shipping_addresses",
    ]
    assert all(r.headers["x-auth-token"] == peer.secrets()["access_token"] for r in peer.requests)


def test_a_wrong_or_missing_header_or_signature_is_refused(peer: BigCommercePeer) -> None:
    """Given a missing or wrong custom header, a signature by another secret, a changed body,
    no signature, or a timestamp an hour old, then verify raises BadSignature naming the
    header that failed."""
    body = json.dumps(peer.sample["webhook"]).encode()
    good = {k.lower(): v for k, v in peer.signed(body).items()}
    other = {k.lower(): v for k, v in peer.signed(body, client_secret="not-ours").items()}
    stale = {k.lower(): v for k, v in peer.signed(body, at=time.time() - 3600).items()}
    cases = [
        ({k: v for k, v in good.items() if k != "x-webhook-secret"}, body, "X-Webhook-Secret"),
        ({**good, "x-webhook-secret": "guessed"}, body, "X-Webhook-Secret"),
        (other, body, "webhook-signature"),
        (good, body.replace(b"1187", b"1188"), "webhook-signature"),
        ({k: v for k, v in good.items() if k != "webhook-signature"}, body, "webhook-signature"),
        (stale, body, "webhook-signature"),
    ]
    source = webhook(peer)
    for headers, raw, header in cases:
        with pytest.raises(BadSignature) as refused:
            source.verify(headers, raw)
        assert (refused.value.channel, refused.value.header) == ("bigcommerce-de", header)


def test_the_b2c_order_is_decoded(peer: BigCommercePeer) -> None:
    """Given the B2C sample (three lines, one with a product coupon, Hamburg, captured), then
    the ChannelOrder carries the order id, the skus, quantities and unit prices in cents after
    the line's coupon, the ship-to, the customer, EUR, paid and not b2b."""
    [order] = webhook(peer).orders(*hook(peer))
    assert order.external_id == "1187"
    assert [(line.sku, line.quantity, line.unit_price) for line in order.lines] == [
        ("CUP-ESP-90", 2, 1290),
        ("JUG-STL-300", 1, 1755),
        ("BEAN-HM-500", 3, 1100),
    ]
    assert order.lines[0].name == "Espressotasse Steingut 90 ml"
    ship_to = order.ship_to
    assert (ship_to.country, ship_to.postal_code, ship_to.city) == ("DE", "20095", "Hamburg")
    assert ship_to.street == "Mönckebergstraße 11, 3. Etage"
    assert ship_to.name == "Jonas Petersen"
    assert (ship_to.latitude, ship_to.longitude) == (None, None)
    assert (order.email, order.customer_id) == ("jonas.petersen@example.net", "5521")
    assert (order.currency, order.language) == ("EUR", "de")
    assert (order.b2b, order.paid, order.company, order.tax_id) == (False, True, "", "")


def test_the_b2b_order_is_decoded_with_its_vat_id_form_field() -> None:
    """Given the B2B sample (a company, its VAT id in the billing address's USt-IdNr. form
    field, bank deposit awaiting payment), then the order is b2b with company and tax id and
    not paid."""
    store = started(sample("order_created_b2b.json"))
    try:
        [order] = webhook(store).orders(*hook(store))
    finally:
        store.stop()
    assert order.external_id == "1188"
    assert [(line.sku, line.quantity, line.unit_price) for line in order.lines] == [
        ("CUP-ESP-90", 3, 1290),
        ("TAMP-58", 1, 3490),
    ]
    assert (order.ship_to.country, order.ship_to.postal_code) == ("DE", "50667")
    assert order.email == "bestellung@rheinroester.example"
    assert (order.b2b, order.paid) == (True, False)
    assert (order.company, order.tax_id) == ("Rheinröster Kaffeebar GmbH", "DE312345678")


def test_only_completed_orders_are_read() -> None:
    """Given an order still Incomplete (status 0), then store/order/created brings nothing;
    its store/order/statusUpdated leaving status 0 brings it; a later status change and other
    scopes bring nothing and call nobody."""
    data = sample("order_created_b2c.json")
    data["order"]["status_id"] = 0
    store = started(data)
    try:
        source = webhook(store)
        assert source.orders(*hook(store)) == []
        store._orders[1187]["status_id"] = 11
        moved = {"type": "order", "id": 1187, "status": {"previous_status_id": 0}}
        assert [o.external_id for o in source.orders(*hook(store, scope=SU, data=moved))] == [
            "1187"
        ]
        calls = len(store.requests)
        later = {**moved, "status": {"previous_status_id": 7, "new_status_id": 11}}
        assert source.orders(*hook(store, scope=SU, data=later)) == []
        assert source.orders(*hook(store, scope="store/order/archived")) == []
        assert len(store.requests) == calls
    finally:
        store.stop()


SU = "store/order/statusUpdated"


def test_a_bad_payload_or_order_names_the_field() -> None:
    """Given a hook whose data.id is not a number, and an order product whose total_inc_tax is
    not an amount, then InvalidInput names data.id, and products[1].total_inc_tax with its
    value."""
    data = sample("order_created_b2c.json")
    data["products"][1]["total_inc_tax"] = "neunzehn"
    store = started(data)
    try:
        source = webhook(store)
        with pytest.raises(InvalidInput) as bad_id:
            source.orders(*hook(store, data={"type": "order", "id": "1187x"}))
        assert [(p.field, p.value) for p in bad_id.value.problems] == [("data.id", "1187x")]
        with pytest.raises(InvalidInput) as bad_price:
            source.orders(*hook(store))
        assert [(p.field, p.value) for p in bad_price.value.problems] == [
            ("products[1].total_inc_tax", "neunzehn")
        ]
    finally:
        store.stop()


def test_a_parcel_becomes_one_shipment_however_often_it_is_confirmed(
    peer: BigCommercePeer,
) -> None:
    """Given the whole order in one parcel, when it is confirmed twice, then one shipment
    exists with the order address, the tracking number, the AfterShip carrier slug, our
    carrier as shipping method and every order product with its quantity."""
    confirm = confirmer(peer)
    confirm.confirm(parcel("O-000043-S1", "00340434161094042558", WHOLE))
    confirm.confirm(parcel("O-000043-S1", "00340434161094042558", WHOLE))
    [confirmation] = peer.confirmations("1187")
    assert confirmation["carrier"] == "DHL"
    assert confirmation["tracking_number"] == "00340434161094042558"
    assert confirmation["lines"] == WHOLE
    raw = confirmation["raw"]
    assert raw["order_address_id"] == 612
    assert raw["tracking_carrier"] == "dhl-germany"
    assert raw["items"] == [
        {"order_product_id": 318, "quantity": 2},
        {"order_product_id": 319, "quantity": 1},
        {"order_product_id": 320, "quantity": 3},
    ]
    assert "O-000043-S1" in raw["comments"]
    assert len(peer.received("POST", "/shipments$")) == 1


def test_a_shipment_naming_our_shipment_id_counts_as_confirmed(peer: BigCommercePeer) -> None:
    """Given a shipment made for our shipment id, when the same parcel comes again with its
    tracking number typed differently, then the comment naming the shipment id is found and
    nothing new is sent."""
    confirm = confirmer(peer)
    confirm.confirm(parcel("O-000043-S1", "TRACK-A", WHOLE))
    confirm.confirm(parcel("O-000043-S1", "track-a ", WHOLE))
    assert [c["tracking_number"] for c in peer.confirmations("1187")] == ["TRACK-A"]


def test_two_parcels_become_two_shipments(peer: BigCommercePeer) -> None:
    """Given the order shipped from two warehouses, then each parcel is its own shipment with
    its own lines, and the order products count every unit shipped."""
    confirm = confirmer(peer)
    confirm.confirm(parcel("O-000043-S1", "TRACK-A", {"CUP-ESP-90": 2, "BEAN-HM-500": 1}))
    confirm.confirm(parcel("O-000043-S2", "TRACK-B", {"JUG-STL-300": 1, "BEAN-HM-500": 2}))
    assert [(c["tracking_number"], c["lines"]) for c in peer.confirmations("1187")] == [
        ("TRACK-A", {"CUP-ESP-90": 2, "BEAN-HM-500": 1}),
        ("TRACK-B", {"JUG-STL-300": 1, "BEAN-HM-500": 2}),
    ]
    assert peer.product(1187, "BEAN-HM-500")["quantity_shipped"] == 3


def test_a_parcel_with_more_than_is_left_is_refused_before_sending(peer: BigCommercePeer) -> None:
    """Given a parcel with more units of a sku than the order has left to ship, then
    InvalidInput names the line and no shipment is sent."""
    with pytest.raises(InvalidInput) as bad:
        confirmer(peer).confirm(parcel("O-000043-S1", "TRACK-A", {"CUP-ESP-90": 5}))
    assert bad.value.problems[0].field == "lines[0].quantity"
    assert peer.received("POST", "/shipments$") == []


def test_an_unanswered_shipment_is_sent_once_and_found_later(peer: BigCommercePeer) -> None:
    """Given the store down, then confirm raises PeerUnavailable; the shipment POST is never
    retried (BigCommerce does not deduplicate it); once the store is up the parcel is
    confirmed, once."""
    confirm = confirmer(peer)
    whole = parcel("O-000043-S1", "TRACK-A", WHOLE)
    peer.down()
    with pytest.raises(PeerUnavailable):
        confirm.confirm(whole)
    peer.up()
    confirm.confirm(whole)
    confirm.confirm(whole)
    assert len(peer.confirmations("1187")) == 1


def test_the_rate_limit_header_becomes_the_wait(peer: BigCommercePeer) -> None:
    """Given the store answering 429 with X-Rate-Limit-Time-Reset-Ms (BigCommerce sends no
    Retry-After), then the reset time is the wait the client honours (a Retry-After would win),
    and a throttled fetch still reads the order."""
    assert quota_wait(httpx.Response(429, headers={"X-Rate-Limit-Time-Reset-Ms": "1500"})) == 1.5
    both = {"X-Rate-Limit-Time-Reset-Ms": "1500", "Retry-After": "2"}
    assert quota_wait(httpx.Response(429, headers=both)) == 2.0
    assert quota_wait(httpx.Response(429)) is None
    peer.throttle(2)
    [order] = webhook(peer).orders(*hook(peer))
    assert order.external_id == "1187"
    throttled = [r for r in peer.requests if r.path.endswith("/orders/1187")]
    assert len(throttled) == 3


def test_a_store_down_mid_fetch_is_unavailable(peer: BigCommercePeer) -> None:
    """Given the store down while the hook's order is read, then orders raises
    PeerUnavailable (the edge answers so and BigCommerce delivers the hook again)."""
    peer.down()
    with pytest.raises(PeerUnavailable):
        webhook(peer).orders(*hook(peer))


def test_the_peer_offers_the_platform_peer_surface(peer: BigCommercePeer) -> None:
    """Given the peer, then it has the PlatformPeer surface: a secret for every credential the
    adapter reads, the options it needs, and the sample's platform skus mapped to demo skus
    (different strings, so the mapping is exercised)."""
    surface: PlatformPeer = peer
    assert sorted(surface.secrets()) == sorted(CREDENTIALS)
    assert all(surface.secrets().values())
    assert {k for k, required in OPTIONS.items() if required} <= set(surface.options())
    assert surface.skus() == {
        "CUP-ESP-90": "SKU-0011",
        "JUG-STL-300": "SKU-0012",
        "BEAN-HM-500": "SKU-0013",
    }
    assert surface.confirmations(str(peer.order_id)) == []


def test_non_ascii_or_oversized_signature_headers_are_a_bad_signature(
    peer: BigCommercePeer,
) -> None:
    """Given a webhook-id holding a lone surrogate, a custom header or webhook-signature with
    one, or a webhook-timestamp of 400 digits (too large for a float), when verified, then
    BadSignature, never a UnicodeEncodeError or OverflowError."""
    body = json.dumps(peer.sample["webhook"]).encode()
    good = {k.lower(): v for k, v in peer.signed(body).items()}
    for change in (
        {"webhook-id": "msg_\ud800"},
        {"x-webhook-secret": "\ud800"},
        {"webhook-signature": "v1,\ud800"},
        {"webhook-timestamp": "9" * 400},
    ):
        with pytest.raises(BadSignature):
            webhook(peer).verify(good | change, body)


def test_wrong_typed_fields_raise_only_typed_errors(peer: BigCommercePeer) -> None:
    """Given every field of the webhook, of the order answer and of the products answer
    replaced in turn by null, a number, a bool, a list, an object, a string and a lone
    surrogate, when read, then only InvalidInput, PeerUnavailable or PeerRefused come out; an
    HTML page for the order is PeerUnavailable."""
    source = webhook(peer)
    rewrites = Rewrites(peer)
    source.orders(*hook(peer))
    order = rewrites.last(r"/orders/\d+$")
    products = rewrites.last(r"/orders/\d+/products$")

    def read(doc: Any) -> object:
        body = json.dumps(doc).encode()
        return source.orders({k.lower(): v for k, v in peer.signed(body).items()}, body)

    assert untyped_errors(peer.sample["webhook"], read) == []

    def read_with(path: str) -> Callable[[Any], object]:
        def poll(doc: Any) -> object:
            rewrites.answer(path, doc)
            return source.orders(*hook(peer))

        return poll

    assert untyped_errors(order, read_with(r"/orders/\d+$")) == []
    rewrites.clear()
    assert untyped_errors(products, read_with(r"/orders/\d+/products$")) == []
    rewrites.answer(r"/orders/\d+$", b"<html>Store is down for maintenance</html>")
    with pytest.raises(PeerUnavailable):
        source.orders(*hook(peer))
