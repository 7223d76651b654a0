"""Amazon SP-API over real HTTP against the local SP-API and LWA peer: the LWA token and the
Restricted Data Token, getOrders polled with its NextToken and a PurchaseDate cursor, the order
and its items read into a ChannelOrder, confirmShipment sent once per package."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from allocation_engine.adapters.channels import amazon
from allocation_engine.adapters.channels.amazon import package_reference_id, read_order
from allocation_engine.adapters.http_client import RetryPolicy
from allocation_engine.errors import InvalidInput, PeerRefused, PeerUnavailable
from allocation_engine.ports.channels import (
    ChannelLine,
    ChannelSettings,
    OrderImporter,
    ParcelShipped,
    ShipmentConfirmer,
    ShippedLine,
)
from allocation_engine.testing.channel_peers.amazon import AmazonPeer
from tests.adapters.channels.fuzz import Rewrites, untyped_errors

DATA = Path(__file__).resolve().parents[2] / "data" / "channels" / "amazon"
FAST = RetryPolicy(attempts=3, initial=0.01, maximum=0.05)
B2C_ID = "305-4829163-7751320"


def sample(name: str = "order_b2c.json") -> dict[str, Any]:
    data: dict[str, Any] = json.loads((DATA / name).read_text(encoding="utf-8"))
    return data


def decoded(name: str) -> Any:
    raw = sample(name)
    return read_order(raw["getOrder"]["payload"], raw["getOrderItems"]["payload"]["OrderItems"])


@pytest.fixture
def peer() -> Iterator[AmazonPeer]:
    running = AmazonPeer(sample()).start()
    yield running
    running.stop()


def connect(peer: AmazonPeer, secrets: dict[str, str] | None = None, **options: Any) -> Any:
    settings = ChannelSettings(
        name="amazon-de",
        kind="amazon",
        base_url=peer.url,
        credentials={role: f"AMAZON_{role.upper()}" for role in amazon.CREDENTIALS},
        options={**peer.options(), **options},
    )
    return amazon.connect(settings, secrets or peer.secrets(), retry=FAST)


def importer(peer: AmazonPeer, **options: Any) -> OrderImporter:
    connection = connect(peer, **options)
    assert connection.importer is not None and connection.webhook is None
    return connection.importer  # type: ignore[no-any-return]


def confirmer(peer: AmazonPeer) -> ShipmentConfirmer:
    connection = connect(peer)
    assert connection.confirmer is not None
    return connection.confirmer  # type: ignore[no-any-return]


def order_at(order_id: str, purchased: str, status: str = "Unshipped") -> tuple[Any, Any]:
    raw = sample()
    order, items = raw["getOrder"]["payload"], raw["getOrderItems"]["payload"]["OrderItems"]
    order["AmazonOrderId"], order["PurchaseDate"], order["OrderStatus"] = (
        order_id,
        purchased,
        status,
    )
    return order, items


def drain(source: OrderImporter, cursor: str = "") -> tuple[list[str], str, int]:
    """Every order id the importer hands out from `cursor` on, the last cursor, the pages."""
    ids: list[str] = []
    pages = 0
    while True:
        page = source.fetch(cursor)
        pages += 1
        ids += [o.external_id for o in page.orders]
        cursor = page.cursor
        if not page.more:
            return ids, cursor, pages


def parcel(shipment_id: str = "O-000077-S1", **changes: Any) -> ParcelShipped:
    fields: dict[str, Any] = {
        "channel": "amazon-de",
        "order_id": "O-000077",
        "external_id": B2C_ID,
        "shipment_id": shipment_id,
        "node_id": "WH-MUENCHEN",
        "carrier": "DHL",
        "tracking_number": "00340434161094077712",
        "lines": (ShippedLine("KB-MECH-TKL-DE", 1), ShippedLine("CBL-USBC-2M", 3)),
        "shipped_at": 1_796_116_800.0,  # 2026-12-01T09:20:00Z
    }
    return ParcelShipped(**(fields | changes))


def test_the_b2c_sample_reads_into_the_channel_order() -> None:
    """Given the B2C sample (a keyboard with a 5 EUR promotion, three cables for 20 EUR, to
    München), then the order is its AmazonOrderId with the SellerSKUs, the keyboard's line
    total less its discount, the cables split 1 x 6.66 + 2 x 6.67 so the line stays 20.00,
    paid by Amazon, not B2B."""
    order = decoded("order_b2c.json")
    assert order.external_id == B2C_ID
    assert order.lines == (
        ChannelLine("KB-MECH-TKL-DE", 1, 4499, "Mechanische Tastatur TKL, deutsches Layout"),
        ChannelLine("CBL-USBC-2M", 1, 666, "USB-C auf USB-C Kabel, 2 m, geflochten"),
        ChannelLine("CBL-USBC-2M", 2, 667, "USB-C auf USB-C Kabel, 2 m, geflochten"),
    )
    assert sum(li.quantity * li.unit_price for li in order.lines) == 6499
    assert order.ship_to.country == "DE" and order.ship_to.postal_code == "80331"
    assert order.ship_to.city == "München" and order.ship_to.name == "Maximilian Krüger"
    assert order.ship_to.street == "Sendlinger Straße 24, 2. Stock"
    assert order.email == "k7x2m9q4w1z8t3v@marketplace.amazon.de"
    assert order.currency == "EUR"
    assert order.paid is True and order.b2b is False and order.tax_id == ""


def test_the_b2b_sample_is_a_business_order_with_its_vat_id() -> None:
    """Given the Amazon Business sample to Köln, then it is B2B with the company and the
    VATNumber of the buyer's tax info, and paid."""
    order = decoded("order_b2b.json")
    assert order.external_id == "304-6610287-4419551"
    assert [(li.sku, li.quantity, li.unit_price) for li in order.lines] == [
        ("MON-ARM-DUAL", 2, 8998),
        ("HUB-USB-7P", 1, 3490),
    ]
    assert order.b2b is True and order.paid is True
    assert order.company == "Lindner Medientechnik GmbH" and order.tax_id == "DE312456789"
    assert order.ship_to.company == "Lindner Medientechnik GmbH"
    assert order.ship_to.postal_code == "50667" and order.ship_to.city == "Köln"


def test_an_unreadable_order_names_every_bad_field() -> None:
    """Given an order whose currency is missing, an item priced in words and one with a
    fractional quantity, then InvalidInput names each field and quotes the value."""
    raw = sample()
    order, items = raw["getOrder"]["payload"], raw["getOrderItems"]["payload"]["OrderItems"]
    del order["OrderTotal"]
    items[0]["ItemPrice"]["Amount"] = "neunundvierzig"
    items[1]["QuantityOrdered"] = 1.5
    with pytest.raises(InvalidInput) as caught:
        read_order(order, items)
    fields = {p.field: p.value for p in caught.value.problems}
    assert fields["OrderTotal.CurrencyCode"] is None
    assert fields["OrderItems[0].ItemPrice.Amount"] == "neunundvierzig"
    assert fields["OrderItems[1].QuantityOrdered"] == 1.5


def test_the_sample_is_polled_with_lwa_and_a_restricted_data_token(peer: AmazonPeer) -> None:
    """Given the sample listed, when polled, then the adapter exchanged the refresh token at
    LWA (form-encoded), asked for an RDT for getOrders' buyerInfo and shippingAddress, listed
    MFN orders of the marketplace with the RDT, read the items with the LWA token, and got
    the full address; no AWS signature is sent."""
    peer.new_order("http://unused", "amazon-de")
    page = importer(peer).fetch("")
    assert [o.external_id for o in page.orders] == [B2C_ID] and not page.more
    assert page.orders[0].ship_to.street.startswith("Sendlinger Straße 24")
    [grant] = peer.received("POST", r"^/auth/o2/token$")
    assert grant.headers["content-type"].startswith("application/x-www-form-urlencoded")
    assert b"grant_type=refresh_token" in grant.body
    [rdt] = peer.received("POST", r"restrictedDataToken$")
    assert rdt.json()["restrictedResources"][0]["dataElements"] == ["buyerInfo", "shippingAddress"]
    [listing] = peer.received("GET", r"^/orders/v0/orders$")
    assert listing.headers["x-amz-access-token"].startswith("Atz.sprdt|")
    assert listing.arg("MarketplaceIds") == "A1PA6795UKMFR9"
    assert listing.arg("CreatedAfter") == "2026-01-01T00:00:00Z"
    assert listing.arg("FulfillmentChannels") == "MFN"
    [items] = peer.received("GET", r"/orderItems$")
    assert items.headers["x-amz-access-token"].startswith("Atza|")
    assert "authorization" not in listing.headers


def test_the_tokens_are_kept_between_polls(peer: AmazonPeer) -> None:
    """Given two polls within the hour, then LWA and the Tokens API were asked once each."""
    source = importer(peer)
    cursor = source.fetch("").cursor
    source.fetch(cursor)
    assert len(peer.received("POST", r"^/auth/o2/token$")) == 1
    assert len(peer.received("POST", r"restrictedDataToken$")) == 1


def test_a_token_about_to_expire_is_renewed(peer: AmazonPeer) -> None:
    """Given LWA handing out tokens that expire within the minute kept as margin, then every
    poll asks for fresh ones instead of sending an expiring token."""
    peer.token_lifetime = 30
    source = importer(peer)
    cursor = source.fetch("").cursor
    source.fetch(cursor)
    assert len(peer.received("POST", r"^/auth/o2/token$")) >= 2
    assert len(peer.received("POST", r"restrictedDataToken$")) == 2


def test_a_cursor_it_did_not_write_is_refused(peer: AmazonPeer) -> None:
    """Given a cursor that is not this adapter's JSON, then InvalidInput names the cursor."""
    with pytest.raises(InvalidInput, match="cursor"):
        importer(peer).fetch("2026-12-01T00:00:00Z")


def test_wrong_client_credentials_are_refused(peer: AmazonPeer) -> None:
    """Given a wrong client secret, then LWA's 401 invalid_client is a final refusal."""
    secrets = {**peer.secrets(), "client_secret": "amzn1.oa2-cs.v1.wrong"}
    with pytest.raises(PeerRefused) as caught:
        connect(peer, secrets).importer.fetch("")
    assert caught.value.status == 401 and "invalid_client" in caught.value.detail


def test_missing_credentials_and_marketplace_are_named() -> None:
    """Given no secrets and no marketplace, then InvalidInput names each of them."""
    settings = ChannelSettings(
        name="a", kind="amazon", options={"created_after": "2026-01-01T00:00:00Z"}
    )
    with pytest.raises(InvalidInput) as caught:
        amazon.connect(settings, {})
    assert {p.field for p in caught.value.problems} == {
        "credentials.refresh_token",
        "credentials.client_id",
        "credentials.client_secret",
        "options.marketplace_id",
    }


def test_next_token_pages_and_a_shared_purchase_date_is_neither_skipped_nor_doubled(
    peer: AmazonPeer,
) -> None:
    """Given five orders, three bought in the same second, when polled two per page, then the
    NextToken pages hand out each exactly once; the next sweep starts at that second and
    skips the ones seen there, and an order added at the same second later comes alone."""
    times = ["2026-12-01T08:00:00Z"] + ["2026-12-01T09:00:00Z"] * 3 + ["2026-12-01T10:00:00Z"]
    ids = ["302-0000001-0000001", "302-0000003-0000003", "302-0000002-0000002"]
    ids += ["302-0000004-0000004", "302-0000005-0000005"]
    for order_id, purchased in zip(ids, times, strict=True):
        peer.add_order(*order_at(order_id, purchased))
    source = importer(peer, page_size=2)
    seen, cursor, pages = drain(source)
    assert sorted(seen) == sorted(ids) and len(seen) == 5
    assert pages == 3
    assert peer.received("GET", r"^/orders/v0/orders$")[1].arg("NextToken").startswith("peer-")
    assert source.fetch(cursor).orders == ()
    assert json.loads(cursor)["after"] == "2026-12-01T10:00:00Z"
    peer.add_order(*order_at("302-0000006-0000006", "2026-12-01T10:00:00Z"))
    assert [o.external_id for o in source.fetch(cursor).orders] == ["302-0000006-0000006"]


def test_a_pending_order_is_held_until_it_is_unshipped(peer: AmazonPeer) -> None:
    """Given a Pending order (payment not yet authorised), when polled, then it is not taken
    but held in the cursor; once Amazon moves it to Unshipped, the next poll takes it, and a
    later one does not take it again."""
    peer.add_order(*order_at("302-0000010-0000010", "2026-12-01T11:00:00Z", "Pending"))
    source = importer(peer)
    first = source.fetch("")
    assert first.orders == () and json.loads(first.cursor)["pending"] == ["302-0000010-0000010"]
    still = source.fetch(first.cursor)
    assert still.orders == () and json.loads(still.cursor)["pending"] == ["302-0000010-0000010"]
    peer.set_status("302-0000010-0000010", "Unshipped")
    taken = source.fetch(still.cursor)
    assert [o.external_id for o in taken.orders] == ["302-0000010-0000010"]
    assert "pending" not in json.loads(taken.cursor)
    assert source.fetch(taken.cursor).orders == ()


def test_shipped_and_canceled_orders_are_passed_over(peer: AmazonPeer) -> None:
    """Given a Canceled and a Shipped order beside an Unshipped one, then only the Unshipped
    one is taken."""
    peer.add_order(*order_at("302-0000020-0000020", "2026-12-01T12:00:00Z", "Canceled"))
    peer.add_order(*order_at("302-0000021-0000021", "2026-12-01T12:00:01Z", "Shipped"))
    peer.add_order(*order_at("302-0000022-0000022", "2026-12-01T12:00:02Z"))
    assert [o.external_id for o in importer(peer).fetch("").orders] == ["302-0000022-0000022"]


def test_a_throttled_listing_is_retried(peer: AmazonPeer) -> None:
    """Given SP-API answering 429 (with x-amzn-RateLimit-Limit) to the next two calls, when
    polled, then the calls are retried and the order arrives."""
    peer.new_order("http://unused", "amazon-de")
    source = importer(peer)
    source.fetch("")  # tokens taken; the next poll's calls are all SP-API's
    before = len(peer.received("GET", r"^/orders/v0/orders$"))
    peer.throttle(2)
    page = source.fetch("")
    assert [o.external_id for o in page.orders] == [B2C_ID]
    assert len(peer.received("GET", r"^/orders/v0/orders$")) == before + 3


def test_amazon_down_mid_poll_then_the_same_cursor_gets_the_same_orders(
    peer: AmazonPeer,
) -> None:
    """Given four orders and the first page of two taken, when SP-API goes down, then the next
    fetch raises PeerUnavailable; once it is back, the same cursor (holding the NextToken)
    gets the other two, and nothing is doubled."""
    for n in range(4):
        peer.add_order(*order_at(f"302-000003{n}-000003{n}", f"2026-12-01T13:00:0{n}Z"))
    source = importer(peer, page_size=2)
    first = source.fetch("")
    assert len(first.orders) == 2 and first.more
    peer.down()
    with pytest.raises(PeerUnavailable):
        source.fetch(first.cursor)
    peer.up()
    second = source.fetch(first.cursor)
    assert {o.external_id for o in first.orders + second.orders} == {
        f"302-000003{n}-000003{n}" for n in range(4)
    }
    assert len(second.orders) == 2 and not second.more


def test_a_bad_order_in_the_listing_is_named(peer: AmazonPeer) -> None:
    """Given a listed order whose item has no SellerSKU nor ASIN, when polled, then
    InvalidInput names the field under the order's id."""
    order, items = order_at("302-0000040-0000040", "2026-12-01T14:00:00Z")
    del items[0]["SellerSKU"], items[0]["ASIN"]
    peer.add_order(order, items)
    with pytest.raises(InvalidInput, match=r"302-0000040-0000040\.OrderItems\[0\]\.SellerSKU"):
        importer(peer).fetch("")


def test_the_parcel_is_confirmed_in_amazons_format(peer: AmazonPeer) -> None:
    """Given the sample order, when the parcel is confirmed, then Amazon receives
    confirmShipment with the marketplace, a numeric packageReferenceId from our shipment id,
    DHL, the tracking number, the ship date and the OrderItemIds with their quantities."""
    peer.new_order("http://unused", "amazon-de")
    confirmer(peer).confirm(parcel())
    [confirmation] = peer.confirmations(B2C_ID)
    assert confirmation["carrier"] == "DHL"
    assert confirmation["tracking_number"] == "00340434161094077712"
    assert confirmation["lines"] == {"KB-MECH-TKL-DE": 1, "CBL-USBC-2M": 3}
    assert confirmation["raw"] == {
        "marketplaceId": "A1PA6795UKMFR9",
        "packageDetail": {
            "packageReferenceId": package_reference_id("O-000077-S1"),
            "carrierCode": "DHL",
            "trackingNumber": "00340434161094077712",
            "shipDate": "2026-12-01T09:20:00Z",
            "orderItems": [
                {"orderItemId": "52718364920175", "quantity": 1},
                {"orderItemId": "52718364920176", "quantity": 3},
            ],
        },
    }
    assert package_reference_id("O-000077-S1").isdigit()


def test_a_second_confirm_of_the_parcel_leaves_one_package(peer: AmazonPeer) -> None:
    """Given a parcel confirmed once, when it is confirmed again (the outbox retrying), then
    the same packageReferenceId is sent and Amazon still holds one package."""
    peer.new_order("http://unused", "amazon-de")
    channel = confirmer(peer)
    channel.confirm(parcel())
    channel.confirm(parcel())
    sent = peer.received("POST", r"/shipmentConfirmation$")
    assert len(sent) == 2 and sent[0].body == sent[1].body
    assert len(peer.confirmations(B2C_ID)) == 1


def test_two_parcels_are_two_packages_and_an_unknown_carrier_is_other(peer: AmazonPeer) -> None:
    """Given the order in two parcels, the second with a courier Amazon has no code for, then
    Amazon holds two packages, the second as carrierCode Other with the carrier's name."""
    peer.new_order("http://unused", "amazon-de")
    channel = confirmer(peer)
    channel.confirm(parcel(lines=(ShippedLine("KB-MECH-TKL-DE", 1),)))
    channel.confirm(
        parcel(
            "O-000077-S2",
            carrier="Kurierdienst München",
            tracking_number="KM-2026-44812",
            lines=(ShippedLine("CBL-USBC-2M", 3),),
        )
    )
    first, second = peer.confirmations(B2C_ID)
    assert first["lines"] == {"KB-MECH-TKL-DE": 1} and first["carrier"] == "DHL"
    assert second["lines"] == {"CBL-USBC-2M": 3}
    assert second["carrier"] == "Kurierdienst München"
    assert second["raw"]["packageDetail"]["carrierCode"] == "Other"


def test_more_units_than_ordered_are_refused_before_any_confirmation(peer: AmazonPeer) -> None:
    """Given a parcel with more cables than ordered, then InvalidInput names the line and
    nothing is sent to Amazon."""
    peer.new_order("http://unused", "amazon-de")
    with pytest.raises(InvalidInput, match=r"lines\[0\]"):
        confirmer(peer).confirm(parcel(lines=(ShippedLine("CBL-USBC-2M", 4),)))
    assert peer.received("POST", r"/shipmentConfirmation$") == []


def test_amazon_down_while_confirming_is_retryable(peer: AmazonPeer) -> None:
    """Given SP-API down, when the parcel is confirmed, then PeerUnavailable; once it is back,
    the retry leaves one package."""
    peer.new_order("http://unused", "amazon-de")
    channel = confirmer(peer)
    peer.down()
    with pytest.raises(PeerUnavailable):
        channel.confirm(parcel())
    peer.up()
    channel.confirm(parcel())
    assert len(peer.confirmations(B2C_ID)) == 1


def test_without_a_restricted_data_token_the_address_is_partial(peer: AmazonPeer) -> None:
    """Given getOrders called with a plain LWA token (what an app without the restricted role
    gets), then the peer, like Amazon, returns only City, StateOrRegion, PostalCode and
    CountryCode and no BuyerInfo."""
    peer.new_order("http://unused", "amazon-de")
    importer(peer).fetch("")
    token = peer.received("GET", r"/orderItems$")[0].headers["x-amz-access-token"]
    answer = httpx.get(
        f"{peer.url}/orders/v0/orders",
        params={"MarketplaceIds": "A1PA6795UKMFR9", "CreatedAfter": "2026-01-01T00:00:00Z"},
        headers={"x-amz-access-token": token},
    ).json()
    [order] = answer["payload"]["Orders"]
    assert set(order["ShippingAddress"]) == {"City", "StateOrRegion", "PostalCode", "CountryCode"}
    assert "BuyerInfo" not in order


def test_the_peer_maps_the_sample_skus_to_demo_skus() -> None:
    """Given the sample, then each SellerSKU maps to a different demo sku."""
    assert AmazonPeer(copy.deepcopy(sample())).skus() == {
        "KB-MECH-TKL-DE": "SKU-0001",
        "CBL-USBC-2M": "SKU-0002",
    }


def test_more_pending_orders_than_one_lookup_takes_are_all_imported_once(
    peer: AmazonPeer,
) -> None:
    """Given 55 Pending orders (more than the 50 AmazonOrderIds one getOrders call takes),
    when polled and later all become Unshipped, then every one of the 55 is imported exactly
    once (none dropped from the held list as the sweep moved past them), each lookup asking
    for at most 50 ids."""
    ids = [f"302-0000100-{n:07d}" for n in range(55)]
    for n, order_id in enumerate(ids):
        peer.add_order(*order_at(order_id, f"2026-12-01T10:{n:02d}:00Z", "Pending"))
    source = importer(peer)
    taken, cursor, _ = drain(source)
    assert taken == []
    for order_id in ids:
        peer.set_status(order_id, "Unshipped")
    taken, cursor, _ = drain(source, cursor)
    later, cursor, _ = drain(source, cursor)
    assert sorted(taken + later) == ids
    lookups = [r.arg("AmazonOrderIds") for r in peer.received("GET", r"/orders/v0/orders$")]
    assert all(len(x.split(",")) <= 50 for x in lookups if x)


def test_an_answer_that_is_no_order_list_is_peer_unavailable(peer: AmazonPeer) -> None:
    """Given getOrders or getOrderItems answering 200 with an HTML page, [], null or a payload
    without its list, when polled, then PeerUnavailable, never a ValueError or AttributeError."""
    peer.new_order("http://unused", "amazon-de")
    source = importer(peer)
    rewrites = Rewrites(peer)
    for path in (r"/orders/v0/orders$", r"/orderItems$"):
        for body in (b"<html>Throttled</html>", [], None, {"payload": {"Orders": 5}}):
            rewrites.answer(path, body)
            with pytest.raises(PeerUnavailable):
                source.fetch("")
        rewrites.clear()


def test_wrong_typed_fields_of_the_answers_raise_only_typed_errors(peer: AmazonPeer) -> None:
    """Given every field of getOrders' and getOrderItems' answers replaced in turn by null, a
    number, a bool, a list, an object, a string and a lone surrogate, when polled, then only
    InvalidInput, PeerUnavailable or PeerRefused come out; a lone surrogate in the buyer's
    name is InvalidInput naming the field."""
    peer.new_order("http://unused", "amazon-de")
    source = importer(peer)
    rewrites = Rewrites(peer)
    source.fetch("")
    orders, items = rewrites.last(r"/orders/v0/orders$"), rewrites.last(r"/orderItems$")

    def poll_with(path: str) -> Callable[[Any], object]:
        def poll(doc: Any) -> object:
            rewrites.answer(path, doc)
            return source.fetch("")

        return poll

    assert untyped_errors(orders, poll_with(r"/orders/v0/orders$")) == []
    rewrites.clear()
    assert untyped_errors(items, poll_with(r"/orderItems$")) == []
    rewrites.clear()
    orders["payload"]["Orders"][0]["BuyerInfo"]["BuyerName"] = "\ud800"
    rewrites.answer(r"/orders/v0/orders$", orders)
    with pytest.raises(InvalidInput) as refused:
        source.fetch("")
    assert [p.field for p in refused.value.problems] == ["payload.Orders[0].BuyerInfo.BuyerName"]


def test_a_sweep_reads_only_what_amazon_has_settled(peer: AmazonPeer) -> None:
    """Given an order placed 30 s ago (Amazon lists orders about two minutes late, and takes no
    CreatedBefore later than two minutes ago), then a sweep now does not read it and keeps its
    cursor before it; a sweep three minutes later takes it, once: the cursor never moved past
    a window where it could still appear."""
    now = datetime.now(UTC)
    order, items = order_at(
        "302-7777777-0000001", (now - timedelta(seconds=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    )
    peer.add_order(order, items)
    clock = [now]
    settings = ChannelSettings(
        name="amazon-de",
        kind="amazon",
        base_url=peer.url,
        options={**peer.options(), "created_after": (now - timedelta(hours=1)).isoformat()},
    )
    source = amazon.AmazonChannel(settings, peer.secrets(), retry=FAST, now=lambda: clock[0])
    ids, cursor, _ = drain(source)
    assert "302-7777777-0000001" not in ids
    peer.now = lambda: clock[0]  # Amazon's clock moves on with ours
    clock[0] = now + timedelta(minutes=3)
    later, cursor, _ = drain(source, cursor)
    assert later == ["302-7777777-0000001"]
    assert drain(source, cursor)[0] == []
