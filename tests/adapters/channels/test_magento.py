"""Magento 2 over real HTTP against the local store peer: the order search polled with a
(created_at, entity_id) cursor, the order read into a ChannelOrder, the shipment created once."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from allocation_engine.adapters.channels import magento
from allocation_engine.adapters.channels.magento import read_order
from allocation_engine.adapters.http_client import RetryPolicy
from allocation_engine.errors import InvalidInput, PeerRefused, PeerUnavailable
from allocation_engine.ports.channels import (
    ChannelSettings,
    ImportPage,
    OrderImporter,
    ParcelShipped,
    ShipmentConfirmer,
    ShippedLine,
)
from allocation_engine.testing.channel_peers.magento import MagentoPeer
from tests.adapters.channels.fuzz import Rewrites, untyped_errors

DATA = Path(__file__).resolve().parents[2] / "data" / "channels" / "magento"
FAST = RetryPolicy(attempts=3, initial=0.01, maximum=0.05)


def sample(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((DATA / name).read_text(encoding="utf-8"))
    return data


@pytest.fixture
def peer() -> Iterator[MagentoPeer]:
    running = MagentoPeer(sample("order_b2c.json")).start()
    yield running
    running.stop()


def settings(peer: MagentoPeer, **options: Any) -> ChannelSettings:
    return ChannelSettings(
        name="magento-de",
        kind="magento",
        base_url=peer.url,
        credentials={"access_token": "MAGENTO_DE_TOKEN"},
        options={**peer.options(), **options},
    )


def importer(peer: MagentoPeer, **options: Any) -> OrderImporter:
    connection = magento.connect(settings(peer, **options), peer.secrets(), retry=FAST)
    assert connection.importer is not None and connection.webhook is None
    return connection.importer


def confirmer(peer: MagentoPeer) -> ShipmentConfirmer:
    connection = magento.connect(settings(peer), peer.secrets(), retry=FAST)
    assert connection.confirmer is not None
    return connection.confirmer


def order_at(entity_id: int, created_at: str) -> dict[str, Any]:
    order = sample("order_b2c.json")
    order["entity_id"], order["created_at"] = entity_id, created_at
    order["increment_id"] = f"{entity_id:09d}"
    return order


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


def parcel(shipment_id: str = "O-000042-S1", **changes: Any) -> ParcelShipped:
    fields: dict[str, Any] = {
        "channel": "magento-de",
        "order_id": "O-000042",
        "external_id": "1042",
        "shipment_id": shipment_id,
        "node_id": "WH-BERLIN",
        "carrier": "DHL",
        "tracking_number": "00340434161094042557",
        "lines": (ShippedLine("TEE-ORG-M-NAVY", 2), ShippedLine("MUG-WHT-350", 1)),
        "shipped_at": 1_796_000_000.0,
    }
    return ParcelShipped(**(fields | changes))


def test_the_b2c_sample_reads_into_the_channel_order() -> None:
    """Given the B2C sample (a configurable tee, a discounted mug, three candles to Berlin),
    then the order is entity_id 1042 with the simple products' skus, the tee priced from its
    configurable parent row, the mug's discount taken off its unit price, paid through PayPal,
    not B2B."""
    order = read_order(sample("order_b2c.json"))
    assert order.external_id == "1042"
    assert [(li.sku, li.quantity, li.unit_price) for li in order.lines] == [
        ("TEE-ORG-M-NAVY", 2, 1999),
        ("MUG-WHT-350", 1, 1349),
        ("CANDLE-SOY-200", 3, 849),
    ]
    assert order.lines[0].name == "Organic Cotton Tee-M-Navy"
    assert order.ship_to.country == "DE" and order.ship_to.postal_code == "10115"
    assert order.ship_to.city == "Berlin" and order.ship_to.name == "Lena Hoffmann"
    assert order.ship_to.street == "Torstraße 51, Hinterhaus, 3. OG"
    assert order.ship_to.latitude is None
    assert order.email == "lena.hoffmann@example.de" and order.customer_id == "311"
    assert order.currency == "EUR"
    assert order.paid is True and order.b2b is False


def test_the_b2b_sample_is_a_business_order_not_yet_paid() -> None:
    """Given the B2B sample (company and VAT id on the address, bank transfer not invoiced),
    then the order is B2B with the company and the VAT id, and not paid."""
    order = read_order(sample("order_b2b.json"))
    assert order.external_id == "1043"
    assert [(li.sku, li.quantity, li.unit_price) for li in order.lines] == [
        ("BEAN-ESP-1KG", 3, 8199),
        ("FILTER-V60-100", 2, 2437),
    ]
    assert order.b2b is True and order.paid is False
    assert order.company == "Kaffeerösterei Nordlicht GmbH" and order.tax_id == "DE298765431"
    assert order.ship_to.company == "Kaffeerösterei Nordlicht GmbH"
    assert order.ship_to.postal_code == "20095" and order.ship_to.country == "DE"


def test_a_customer_group_named_b2b_makes_a_business_order() -> None:
    """Given the B2C sample's customer group 1 listed in b2b_group_ids, then it is B2B even
    without a VAT id."""
    assert read_order(sample("order_b2c.json"), frozenset({"1"})).b2b is True


def test_an_unreadable_order_names_every_bad_field() -> None:
    """Given an order with a quantity in words, a price that is no number and no country,
    then InvalidInput names each field by its path and quotes the value."""
    raw = sample("order_b2c.json")
    raw["items"][2]["qty_ordered"] = "zwei"
    raw["items"][3]["price_incl_tax"] = "8,49"
    del raw["extension_attributes"]["shipping_assignments"][0]["shipping"]["address"]["country_id"]
    with pytest.raises(InvalidInput) as caught:
        read_order(raw)
    fields = {p.field: p.value for p in caught.value.problems}
    assert fields == {
        "items[2].qty_ordered": "zwei",
        "items[3].price_incl_tax": "8,49",
        "extension_attributes.shipping_assignments[0].shipping.address.country_id": None,
    }


def test_a_bad_order_in_the_search_is_named_by_its_place(peer: MagentoPeer) -> None:
    """Given a listed order whose currency is missing, when polled, then InvalidInput names
    it below its place in the search answer."""
    bad = order_at(1042, "2026-12-01 09:14:27")
    del bad["order_currency_code"]
    peer.add_order(bad)
    with pytest.raises(InvalidInput, match=r"items\[0\]\.order_currency_code"):
        importer(peer).fetch("")


def test_the_sample_is_polled_with_the_bearer_token(peer: MagentoPeer) -> None:
    """Given the sample listed, when polled from the start, then it comes back with the
    integration token sent as a bearer token and the searchCriteria Magento reads."""
    external_id = peer.new_order("http://unused", "magento-de")
    page = importer(peer).fetch("")
    assert [o.external_id for o in page.orders] == [external_id] == ["1042"]
    assert page.cursor == "2026-12-01 09:14:27|1042" and page.more is False
    sent = peer.received("GET", r"/rest/V1/orders$")[0]
    assert sent.headers["authorization"] == f"Bearer {peer.secrets()['access_token']}"
    assert sent.arg("searchCriteria[filter_groups][0][filters][0][field]") == "created_at"
    assert sent.arg("searchCriteria[filter_groups][0][filters][0][condition_type]") == "gteq"
    assert sent.arg("searchCriteria[filter_groups][0][filters][0][value]") == (
        "2026-01-01 00:00:00"
    )


def test_a_store_code_puts_the_store_view_in_the_path(peer: MagentoPeer) -> None:
    """Given the store_code option "de", then the search goes to /rest/de/V1/orders."""
    peer.new_order("http://unused", "magento-de")
    assert len(importer(peer, store_code="de").fetch("").orders) == 1
    assert len(peer.received("GET", r"^/rest/de/V1/orders$")) == 1


def test_a_cursor_it_did_not_write_is_refused(peer: MagentoPeer) -> None:
    """Given a cursor without the '<created_at>|<entity_id>' form, then InvalidInput names
    it."""
    with pytest.raises(InvalidInput, match="cursor"):
        importer(peer).fetch("gestern|7")


def test_a_wrong_token_is_refused(peer: MagentoPeer) -> None:
    """Given a wrong integration token, when polled, then Magento's 401 is a final refusal."""
    connection = magento.connect(settings(peer), {"access_token": "stolen"}, retry=FAST)
    assert connection.importer is not None
    with pytest.raises(PeerRefused) as caught:
        connection.importer.fetch("")
    assert caught.value.status == 401


def test_a_missing_token_or_start_is_named() -> None:
    """Given no token and a start that is no time, then InvalidInput names both."""
    bad = ChannelSettings(name="m", kind="magento", options={"created_after": "gestern"})
    with pytest.raises(InvalidInput) as caught:
        magento.connect(bad, {})
    assert {p.field for p in caught.value.problems} == {
        "credentials.access_token",
        "options.created_after",
    }


def test_pages_follow_the_cursor_and_a_shared_second_is_neither_skipped_nor_doubled(
    peer: MagentoPeer,
) -> None:
    """Given seven orders, four of them created in the same second, when polled two at a
    time, then every order comes exactly once, oldest first and by entity_id within the
    second, over four pages; a poll with the last cursor finds nothing new until an order is
    added, which it then finds alone."""
    times = ["2026-12-01 08:00:00"] + ["2026-12-01 09:00:00"] * 4 + ["2026-12-01 10:00:00"] * 2
    ids = [1201, 1198, 1205, 1199, 1203, 1210, 1209]
    for entity_id, created_at in zip(ids, times, strict=True):
        peer.add_order(order_at(entity_id, created_at))
    source = importer(peer, page_size=2)
    seen, cursor, pages = drain(source)
    assert seen == ["1201", "1198", "1199", "1203", "1205", "1209", "1210"]
    assert pages == 4
    assert source.fetch(cursor) == ImportPage((), cursor, False)
    peer.add_order(order_at(1211, "2026-12-01 10:00:00"))
    assert [o.external_id for o in source.fetch(cursor).orders] == ["1211"]


def test_a_throttled_search_waits_and_retries(peer: MagentoPeer) -> None:
    """Given the store answering 429 with Retry-After twice, when polled, then the third try
    gets the order."""
    peer.new_order("http://unused", "magento-de")
    peer.throttle(2)
    page = importer(peer).fetch("")
    assert [o.external_id for o in page.orders] == ["1042"]
    assert len(peer.received("GET", r"/V1/orders$")) == 3


def test_the_store_down_mid_poll_then_the_same_cursor_gets_the_same_orders(
    peer: MagentoPeer,
) -> None:
    """Given four orders and the first page taken, when the store goes down, then the next
    fetch raises PeerUnavailable; once it is back, the same cursor gets the orders the
    interrupted page would have had, and nothing is lost or doubled."""
    for n in range(4):
        peer.add_order(order_at(1300 + n, "2026-12-01 12:00:00"))
    source = importer(peer, page_size=2)
    first = source.fetch("")
    assert [o.external_id for o in first.orders] == ["1300", "1301"] and first.more
    peer.down()
    with pytest.raises(PeerUnavailable):
        source.fetch(first.cursor)
    peer.up()
    second = source.fetch(first.cursor)
    assert [o.external_id for o in second.orders] == ["1302", "1303"]
    assert second.more is False


def test_canceled_orders_are_passed_over_but_the_cursor_moves(peer: MagentoPeer) -> None:
    """Given a canceled order (its items gone, so it could not be read) before a processing
    one, then only the processing order comes back and the cursor is past both."""
    canceled = order_at(1401, "2026-12-01 13:00:00")
    canceled["state"] = canceled["status"] = "canceled"
    del canceled["items"]
    peer.add_order(canceled)
    peer.add_order(order_at(1402, "2026-12-01 13:00:01"))
    page = importer(peer).fetch("")
    assert [o.external_id for o in page.orders] == ["1402"]
    assert page.cursor == "2026-12-01 13:00:01|1402"


def test_the_parcel_becomes_a_magento_shipment_with_its_track(peer: MagentoPeer) -> None:
    """Given the sample order, when a parcel of the tee (2) and the mug (1) is confirmed, then
    Magento receives POST /V1/order/1042/ship with the tee through its configurable row, the
    mug's row, the DHL track and a comment naming our shipment; the peer's confirmations
    show carrier, tracking and lines by Magento sku."""
    peer.new_order("http://unused", "magento-de")
    confirmer(peer).confirm(parcel())
    [confirmation] = peer.confirmations("1042")
    assert confirmation["carrier"] == "DHL"
    assert confirmation["tracking_number"] == "00340434161094042557"
    assert confirmation["lines"] == {"TEE-ORG-M-NAVY": 2, "MUG-WHT-350": 1}
    raw = confirmation["raw"]
    assert raw["items"] == [{"order_item_id": 2101, "qty": 2}, {"order_item_id": 2103, "qty": 1}]
    assert raw["tracks"] == [
        {"track_number": "00340434161094042557", "title": "DHL", "carrier_code": "dhl"}
    ]
    assert "O-000042-S1" in raw["comment"]["comment"]


def test_a_second_confirm_of_the_parcel_creates_no_second_shipment(peer: MagentoPeer) -> None:
    """Given a parcel confirmed once, when it is confirmed again, then the shipment search
    finds its track and no second POST /ship is made."""
    peer.new_order("http://unused", "magento-de")
    channel = confirmer(peer)
    channel.confirm(parcel())
    channel.confirm(parcel())
    assert len(peer.confirmations("1042")) == 1
    assert len(peer.received("POST", r"/V1/order/1042/ship$")) == 1


def test_a_parcel_without_tracking_is_recognised_by_its_comment(peer: MagentoPeer) -> None:
    """Given a parcel with no tracking number (a courier without one), when confirmed twice,
    then the second finds the first by the comment naming our shipment id."""
    peer.new_order("http://unused", "magento-de")
    untracked = parcel("O-000042-S2", tracking_number="", carrier="Kurier Berlin")
    channel = confirmer(peer)
    channel.confirm(untracked)
    channel.confirm(untracked)
    [confirmation] = peer.confirmations("1042")
    assert confirmation["raw"]["tracks"][0]["carrier_code"] == "custom"


def test_two_parcels_of_one_order_make_two_shipments(peer: MagentoPeer) -> None:
    """Given the order split over two parcels, then Magento holds two shipments, each with
    its own track and lines."""
    peer.new_order("http://unused", "magento-de")
    channel = confirmer(peer)
    channel.confirm(parcel(lines=(ShippedLine("CANDLE-SOY-200", 3),)))
    channel.confirm(parcel("O-000042-S2", tracking_number="H1000123456789"))
    confirmations = peer.confirmations("1042")
    assert [c["lines"] for c in confirmations] == [
        {"CANDLE-SOY-200": 3},
        {"TEE-ORG-M-NAVY": 2, "MUG-WHT-350": 1},
    ]


def test_more_than_the_order_left_to_ship_is_refused_before_any_call(
    peer: MagentoPeer,
) -> None:
    """Given a parcel with more mugs than ordered, then InvalidInput names the line and no
    shipment is created."""
    peer.new_order("http://unused", "magento-de")
    with pytest.raises(InvalidInput, match=r"lines\[0\]"):
        confirmer(peer).confirm(parcel(lines=(ShippedLine("MUG-WHT-350", 2),)))
    assert peer.received("POST", r"/ship$") == []


def test_the_store_down_while_confirming_is_retryable(peer: MagentoPeer) -> None:
    """Given the store down, when a parcel is confirmed, then PeerUnavailable (the outbox
    tries again) and, once the store is back, the retry makes the one shipment."""
    peer.new_order("http://unused", "magento-de")
    channel = confirmer(peer)
    peer.down()
    with pytest.raises(PeerUnavailable):
        channel.confirm(parcel())
    peer.up()
    channel.confirm(parcel())
    assert len(peer.confirmations("1042")) == 1


def test_the_peer_maps_the_sample_skus_to_demo_skus() -> None:
    """Given the sample, then each of its Magento skus maps to a different demo sku."""
    skus = MagentoPeer(copy.deepcopy(sample("order_b2c.json"))).skus()
    assert skus == {
        "TEE-ORG-M-NAVY": "SKU-0001",
        "MUG-WHT-350": "SKU-0002",
        "CANDLE-SOY-200": "SKU-0003",
    }


def test_an_item_id_that_is_a_list_is_no_crash() -> None:
    """Given an order whose items[0].item_id is a list and items[1].parent_item_id an object
    (no id can be either), when read, then they are taken for no id (the order is read, its
    lines there), never a TypeError."""
    order = sample("order_b2c.json")
    order["items"][0]["item_id"] = [1, 2]
    order["items"][1]["parent_item_id"] = {"id": 1}
    assert read_order(order).lines


def test_money_beyond_any_price_is_refused_naming_the_field() -> None:
    """Given item prices of 1e300 (as a string and a float) and 1e999999, which decimal
    cannot quantize, and a negative price, when read, then InvalidInput names each field."""
    for price in ("1e300", 1e300, "1e999999", "-5.00", 10**16):
        order = sample("order_b2c.json")
        for item in order["items"]:
            item["price_incl_tax"] = price
        with pytest.raises(InvalidInput) as refused:
            read_order(order)
        assert all(p.field.endswith(".price_incl_tax") for p in refused.value.problems), price


def test_wrong_typed_fields_of_an_order_raise_only_invalid_input() -> None:
    """Given every field of the B2C sample replaced in turn by null, a number, a bool, a list,
    an object, a string and a lone surrogate, when read, then only typed errors come out."""
    assert untyped_errors(sample("order_b2c.json"), read_order) == []


def test_a_search_answer_that_is_no_order_list_is_peer_unavailable(peer: MagentoPeer) -> None:
    """Given the order search answering 200 with an HTML page, [], null or items that are no
    list, when polled, then PeerUnavailable; every field of the search answer replaced by a
    wrong-typed value brings only typed errors; a lone surrogate in an order is InvalidInput
    naming the field."""
    peer.new_order("http://unused", "magento-de")
    source = importer(peer)
    rewrites = Rewrites(peer)
    source.fetch("")
    answer = rewrites.last(r"/rest/V1/orders$")
    for body in (b"<!DOCTYPE html><html>Maintenance</html>", [], None, {"items": 5}):
        rewrites.answer(r"/rest/V1/orders$", body)
        with pytest.raises(PeerUnavailable):
            source.fetch("")

    def poll(doc: Any) -> object:
        rewrites.answer(r"/rest/V1/orders$", doc)
        return source.fetch("")

    assert untyped_errors(answer, poll) == []
    answer["items"][0]["customer_firstname"] = "\ud800"
    rewrites.answer(r"/rest/V1/orders$", answer)
    with pytest.raises(InvalidInput) as refused:
        source.fetch("")
    assert [p.field for p in refused.value.problems] == ["items[0].customer_firstname"]
