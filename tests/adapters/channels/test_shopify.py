"""The Shopify adapter against a local peer speaking Shopify's webhook and Admin REST formats:
signatures checked both ways, the orders/create payload read field by field, fulfillments
created once per parcel with tracking, and every failure the platform can answer."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from allocation_engine.adapters.channels import Connection, shopify
from allocation_engine.adapters.http_client import RetryPolicy
from allocation_engine.errors import BadSignature, InvalidInput, PeerRefused, PeerUnavailable
from allocation_engine.ports.channels import ChannelSettings, ParcelShipped, ShippedLine
from allocation_engine.testing.channel_peers.shopify import ShopifyPeer
from tests.adapters.channels.fuzz import Rewrites, untyped_errors

DATA = Path(__file__).parent.parent.parent / "data" / "channels" / "shopify"
FAST = RetryPolicy(attempts=3, initial=0.01, maximum=0.05)


def sample(name: str = "orders-create.json") -> dict[str, Any]:
    data: dict[str, Any] = json.loads((DATA / name).read_text())
    return data


@pytest.fixture
def peer() -> Iterator[ShopifyPeer]:
    running = ShopifyPeer(sample()).start()
    yield running
    running.stop()


def connect(peer: ShopifyPeer) -> Connection:
    settings = ChannelSettings("shopify-de", "shopify", base_url=peer.url)
    return shopify.connect(settings, peer.secrets(), retry=FAST)


def headers(peer: ShopifyPeer, body: bytes, **extra: str) -> dict[str, str]:
    return {
        "x-shopify-topic": "orders/create",
        "x-shopify-hmac-sha256": peer.sign(body),
        "x-shopify-webhook-id": "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
        **extra,
    }


def test_the_signature_is_checked_over_the_raw_body(peer: ShopifyPeer) -> None:
    """Given the shop's signature over the raw body, then the webhook verifies; a signature
    made with another secret, a body changed after signing, a hex digest instead of base64,
    and a missing header are each refused with BadSignature naming the header."""
    webhook = connect(peer).webhook
    assert webhook is not None
    body = json.dumps(sample()).encode()
    webhook.verify(headers(peer, body), body)
    forged = ShopifyPeer({}, client_secret="not-the-secret")
    wrong = {
        "another secret": headers(peer, body) | {"x-shopify-hmac-sha256": forged.sign(body)},
        "changed body": headers(peer, body + b" "),
        "hex digest": headers(peer, body)
        | {
            "x-shopify-hmac-sha256": base64.b64decode(peer.sign(body)).hex(),
        },
        "missing": {"x-shopify-topic": "orders/create"},
    }
    for case, given in wrong.items():
        with pytest.raises(BadSignature) as refused:
            webhook.verify(given, body)
        assert refused.value.header == "X-Shopify-Hmac-Sha256", case


def test_the_order_is_read_field_by_field(peer: ShopifyPeer) -> None:
    """Given the orders/create sample, then the order has the numeric id, shipping lines only
    (the gift card is passed over), unit prices in cents after the line's discount, the
    coordinates Shopify sent, the customer and paid; the webhook id is the delivery id."""
    webhook = connect(peer).webhook
    assert webhook is not None
    body = json.dumps(sample()).encode()
    given = headers(peer, body)
    [order] = webhook.orders(given, body)
    assert webhook.delivery_id(given, body) == "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"
    assert order.external_id == "5843219047283"
    assert [(x.sku, x.quantity, x.unit_price) for x in order.lines] == [
        ("MUG-WHT-350", 2, 1490),
        ("TPOT-STONE-1L", 1, 5300),
    ]
    a = order.ship_to
    assert (a.country, a.postal_code, a.city, a.latitude) == ("DE", "10115", "Berlin", 52.531)
    assert a.street == "Invalidenstraße 117 3. OG"
    assert (order.email, order.customer_id, order.language) == (
        "lena.vogel@example.de",
        "7212039475315",
        "de",
    )
    assert order.paid and not order.b2b and order.currency == "EUR"


def test_a_b2b_order_and_a_variant_without_sku(peer: ShopifyPeer) -> None:
    """Given a Shopify B2B order (it names its company) with a variant that has no sku, then
    the order is B2B with the company, not paid yet, and the line carries the variant id."""
    webhook = connect(peer).webhook
    assert webhook is not None
    body = json.dumps(sample("orders-create-b2b.json")).encode()
    [order] = webhook.orders(headers(peer, body), body)
    assert order.b2b and order.company == "Hafenkontor GmbH" and not order.paid
    assert [x.sku for x in order.lines] == ["MUG-WHT-350", "44109917487219"]
    assert order.ship_to.latitude is None  # geocoded by postal code downstream


def test_other_topics_place_nothing_and_a_bad_payload_is_named(peer: ShopifyPeer) -> None:
    """Given an orders/updated delivery, then it brings no order; given payloads with a bad
    quantity, a price that is not a number and no id, then each field is named."""
    webhook = connect(peer).webhook
    assert webhook is not None
    body = json.dumps(sample()).encode()
    assert webhook.orders(headers(peer, body, **{"x-shopify-topic": "orders/updated"}), body) == []
    bad = sample()
    bad["id"] = "abc"
    bad["line_items"][0]["quantity"] = 0
    bad["line_items"][1]["price"] = "fifty"
    raw = json.dumps(bad).encode()
    with pytest.raises(InvalidInput) as raised:
        webhook.orders(headers(peer, raw), raw)
    assert [p.field for p in raised.value.problems] == [
        "id",
        "line_items[0].quantity",
        "line_items[1].price",
    ]
    with pytest.raises(InvalidInput):
        webhook.orders(headers(peer, b"[1]"), b"[1]")


def parcel(**changes: Any) -> ParcelShipped:
    base: dict[str, Any] = {
        "channel": "shopify-de",
        "order_id": "O-000001",
        "external_id": "5843219047283",
        "shipment_id": "O-000001-S1",
        "node_id": "WH-HAMBURG",
        "carrier": "DHL",
        "tracking_number": "00340434161094042557",
        "lines": (ShippedLine("MUG-WHT-350", 2), ShippedLine("TPOT-STONE-1L", 1)),
        "shipped_at": 1_764_000_000.0,
    }
    return ParcelShipped(**(base | changes))


def test_a_parcel_becomes_one_fulfillment_with_tracking(peer: ShopifyPeer) -> None:
    """Given an order the shop took, when a parcel is confirmed twice (an answer lost on the
    way back), then the shop holds one fulfillment with the tracking number, the carrier and
    the fulfillment order's line items, sent with the shop's access token."""
    peer.take(sample())
    confirmer = connect(peer).confirmer
    assert confirmer is not None
    confirmer.confirm(parcel())
    confirmer.confirm(parcel())
    [posted] = peer.received("POST", r"/fulfillments\.json$")
    body = posted.json()["fulfillment"]
    assert body["tracking_info"] == {"number": "00340434161094042557", "company": "DHL"}
    assert body["notify_customer"] is False
    assert posted.headers["x-shopify-access-token"] == peer.access_token
    [confirmed] = peer.confirmations("5843219047283")
    assert confirmed["lines"] == {"MUG-WHT-350": 2, "TPOT-STONE-1L": 1}


def test_two_parcels_split_the_fulfillment_order(peer: ShopifyPeer) -> None:
    """Given an order shipped in two parcels, then each becomes its own fulfillment with its own
    tracking number and only its lines."""
    peer.take(sample())
    confirmer = connect(peer).confirmer
    assert confirmer is not None
    confirmer.confirm(parcel(lines=(ShippedLine("MUG-WHT-350", 2),)))
    confirmer.confirm(
        parcel(
            shipment_id="O-000001-S2",
            tracking_number="00340434161094042558",
            lines=(ShippedLine("TPOT-STONE-1L", 1),),
        )
    )
    lines = [c["lines"] for c in peer.confirmations("5843219047283")]
    assert lines == [{"MUG-WHT-350": 2}, {"TPOT-STONE-1L": 1}]


def test_what_the_shop_refuses_and_what_it_cannot_answer(peer: ShopifyPeer) -> None:
    """Given a wrong access token, then the shop's 401 is a final PeerRefused; given a parcel of
    skus the order does not hold, PeerRefused before anything is posted; given the shop down
    through every retry, PeerUnavailable, and once it is back the parcel is confirmed once."""
    peer.take(sample())
    wrong = shopify.connect(
        ChannelSettings("shopify-de", "shopify", base_url=peer.url),
        {"webhook_secret": "x", "access_token": "shpat_wrong"},
        retry=FAST,
    ).confirmer
    assert wrong is not None
    with pytest.raises(PeerRefused) as refused:
        wrong.confirm(parcel())
    assert refused.value.status == 401
    confirmer = connect(peer).confirmer
    assert confirmer is not None
    with pytest.raises(PeerRefused):
        confirmer.confirm(parcel(lines=(ShippedLine("NOT-IN-ORDER", 1),)))
    peer.down()
    with pytest.raises(PeerUnavailable):
        confirmer.confirm(parcel())
    peer.up()
    peer.throttle(1)  # a 429 with Retry-After first: retried after the wait
    confirmer.confirm(parcel())
    assert len(peer.confirmations("5843219047283")) == 1
    assert peer.received("POST", r"/fulfillments\.json$")[-1].headers["x-shopify-access-token"]


def test_a_non_ascii_signature_header_is_a_bad_signature(peer: ShopifyPeer) -> None:
    """Given a signature header with non-ASCII characters (Starlette decodes header bytes as
    latin-1), when verified, then BadSignature, not compare_digest's TypeError."""
    webhook = connect(peer).webhook
    assert webhook is not None
    body = json.dumps(sample()).encode()
    for given in ("é" + peer.sign(body)[1:], "\u00ff" * 44, "\ud800"):
        with pytest.raises(BadSignature):
            webhook.verify(headers(peer, body, **{"x-shopify-hmac-sha256": given}), body)


def test_a_unit_price_rounds_half_up_as_on_every_other_platform(peer: ShopifyPeer) -> None:
    """Given 2 units at 14.90 with a 0.03 discount on the line (29.77 for two: 14.885 each),
    when read, then the unit price is 1489 cents (half up), not 1488 (half to even)."""
    webhook = connect(peer).webhook
    assert webhook is not None
    order = sample()
    order["line_items"][0]["discount_allocations"] = [{"amount": "0.03"}]
    body = json.dumps(order).encode()
    [read] = webhook.orders(headers(peer, body), body)
    assert read.lines[0].unit_price == 1489


def test_a_sku_on_two_line_items_is_fulfilled_over_both(peer: ShopifyPeer) -> None:
    """Given an order holding the same sku on two line items (2 and 1 units), when a parcel of
    all 3 units is confirmed, then the fulfillment takes units from both line items."""
    order = sample()
    again = dict(order["line_items"][0], id=14220557499999, quantity=1)
    order["line_items"].append(again)
    peer.take(order)
    confirmer = connect(peer).confirmer
    assert confirmer is not None
    confirmer.confirm(parcel(lines=(ShippedLine("MUG-WHT-350", 3),)))
    [confirmed] = peer.confirmations("5843219047283")
    assert confirmed["lines"] == {"MUG-WHT-350": 3}


def test_a_lost_answer_to_the_fulfillment_post_is_not_retried(peer: ShopifyPeer) -> None:
    """Given the shop makes the fulfillment but answers 503, when confirmed, then the POST
    went out once and the confirm raises PeerUnavailable (the outbox tries again); the next
    confirm finds the tracking number and posts nothing."""
    peer.take(sample())
    confirmer = connect(peer).confirmer
    assert confirmer is not None
    rewrites = Rewrites(peer)
    rewrites.answer(r"/fulfillments\.json$", {"errors": "down"}, method="POST", status=503)
    with pytest.raises(PeerUnavailable):
        confirmer.confirm(parcel())
    assert len(peer.received("POST", r"/fulfillments\.json$")) == 1
    rewrites.clear()
    confirmer.confirm(parcel())
    assert len(peer.received("POST", r"/fulfillments\.json$")) == 1
    assert len(peer.confirmations("5843219047283")) == 1


def test_wrong_typed_fields_of_the_payload_raise_only_invalid_input(peer: ShopifyPeer) -> None:
    """Given every field of the orders/create sample replaced in turn by null, a number, a
    bool, a list, an object, a string and a lone surrogate (line_items a number or true,
    discount_allocations no list among them), when read, then only InvalidInput comes out;
    a lone surrogate is InvalidInput naming its field."""
    webhook = connect(peer).webhook
    assert webhook is not None

    def read(doc: Any) -> object:
        body = json.dumps(doc).encode()
        return webhook.orders(headers(peer, body), body)

    assert untyped_errors(sample(), read) == []
    order = sample()
    order["shipping_address"]["city"] = "Hamburg\ud800"
    with pytest.raises(InvalidInput) as refused:
        read(order)
    assert [p.field for p in refused.value.problems] == ["shipping_address.city"]
    for body in (b"[" * 100_000, b'{"id": 1' + b"9" * 5000 + b"}"):
        with pytest.raises(InvalidInput):
            webhook.orders(headers(peer, body), body)
