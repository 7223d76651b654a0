"""The eBay adapter against a local eBay (Sell Fulfillment API v1 + OAuth) over real HTTP."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from allocation_engine.adapters.channels import ebay
from allocation_engine.adapters.channels.ebay import EbayChannel
from allocation_engine.adapters.channels.queue_cursor import QueueCursor
from allocation_engine.adapters.http_client import RetryPolicy
from allocation_engine.errors import InvalidInput, PeerRefused, PeerUnavailable
from allocation_engine.ports.channels import ChannelSettings, ParcelShipped, ShippedLine
from allocation_engine.testing.channel_peers.ebay import EbayPeer
from tests.adapters.channels.fuzz import Rewrites, untyped_errors

DATA = Path(__file__).resolve().parents[2] / "data" / "channels" / "ebay"
FAST = RetryPolicy(attempts=3, initial=0.01, maximum=0.05)


def sample(name: str) -> dict[str, Any]:
    return dict(json.loads((DATA / f"{name}.json").read_text(encoding="utf-8")))


@pytest.fixture
def peer() -> Iterator[EbayPeer]:
    started = EbayPeer(sample("order_b2c")).start()
    yield started
    started.stop()


def channel(peer: EbayPeer, **options: Any) -> EbayChannel:
    settings = ChannelSettings(
        name="ebay-de", kind="ebay", base_url=peer.url, options={**peer.options(), **options}
    )
    connection = ebay.connect(settings, peer.secrets(), retry=FAST)
    assert isinstance(connection.importer, EbayChannel)
    assert connection.confirmer is connection.importer
    return connection.importer


def order_like(order_id: str, created: str, **changes: Any) -> dict[str, Any]:
    order = copy.deepcopy(sample("order_b2c"))
    order.update(orderId=order_id, creationDate=created, **changes)
    return order


def drain(importer: EbayChannel, cursor: str = "") -> tuple[list[str], str]:
    """Every order id of one whole pass over the queue, and the cursor after it."""
    ids: list[str] = []
    while True:
        page = importer.fetch(cursor)
        ids += [o.external_id for o in page.orders]
        cursor = page.cursor
        if not page.more:
            return ids, cursor


def test_the_sample_order_decodes_into_the_channel_order(peer: EbayPeer) -> None:
    """Given the sample eBay order listed, when polled, then its id, skus (sku, else the
    listing id), quantities, unit prices after discounts in cents, ship-to, e-mail, currency
    come through, paid and not b2b."""
    external_id = peer.new_order("http://unused", "ebay-de")
    page = channel(peer).fetch("")
    assert [o.external_id for o in page.orders] == [external_id] == ["11-12345-67890"]
    order = page.orders[0]
    assert [(line.sku, line.quantity, line.unit_price) for line in order.lines] == [
        ("MUG-WHT-350", 2, 1174),
        ("FLT-PAPER-102", 1, 449),
        ("296123456703", 3, 800),
    ]
    assert order.lines[0].name == "Kaffeebecher Porzellan weiß 350 ml"
    assert order.ship_to.country == "DE"
    assert order.ship_to.postal_code == "10115"
    assert order.ship_to.city == "Berlin"
    assert order.ship_to.street == "Invalidenstraße 12 3. OG links"
    assert order.ship_to.name == "Lena Mustermann"
    assert order.ship_to.latitude is None
    assert order.email == "3f2a9c1b7e6d5a40c2b1@members.ebay.com"
    assert order.customer_id == "lena_mustermann_84"
    assert order.currency == "EUR"
    assert order.paid is True
    assert order.b2b is False
    assert page.more is False


def test_a_business_buyer_with_a_vat_id_is_b2b(peer: EbayPeer) -> None:
    """Given an order whose buyer has a VATIN tax identifier (which eBay returns only from
    getOrder, not in the listing), when polled, then the order is b2b with company and tax id."""
    peer.add_order(sample("order_b2b"))
    (order,) = channel(peer).fetch("").orders
    assert order.external_id == "14-09876-54321"
    assert order.b2b is True
    assert order.tax_id == "ESB12345674"
    assert order.company == "Cafetería del Sol S.L. - Niederlassung Köln"
    assert (order.ship_to.country, order.ship_to.postal_code) == ("DE", "50667")
    assert [(line.sku, line.quantity, line.unit_price) for line in order.lines] == [
        ("GRD-BURR-PRO", 1, 14990),
        ("MUG-WHT-350", 2, 1490),
    ]
    listing = peer.received("GET", r"/sell/fulfillment/v1/order$")
    assert "creationdate:[2026-11-01T00:00:00.000Z..]" in listing[0].arg("filter")
    assert "orderfulfillmentstatus:{NOT_STARTED|IN_PROGRESS}" in listing[0].arg("filter")


def test_pages_follow_the_cursor_and_a_shared_timestamp_neither_skips_nor_doubles(
    peer: EbayPeer,
) -> None:
    """Given five orders created at the same millisecond and pages of two, when the queue is
    polled page by page, then each order comes exactly once; a second pass brings nothing, and
    a sixth order at that same time comes alone on the next pass."""
    same = "2026-11-30T10:00:00.000Z"
    for n in range(5):
        peer.add_order(order_like(f"20-00000-0000{n}", same))
    importer = channel(peer, page_size=2)
    first = importer.fetch("")
    assert len(first.orders) == 2 and first.more
    second = importer.fetch(first.cursor)
    assert len(second.orders) == 2 and second.more
    third = importer.fetch(second.cursor)
    assert len(third.orders) == 1 and not third.more
    ids = [o.external_id for page in (first, second, third) for o in page.orders]
    assert sorted(ids) == [f"20-00000-0000{n}" for n in range(5)]
    again, cursor = drain(importer, third.cursor)
    assert again == []
    peer.add_order(order_like("20-00000-00005", same))
    late, _ = drain(importer, cursor)
    assert late == ["20-00000-00005"]


def test_an_unpaid_order_waits_and_a_cancelled_one_never_comes(peer: EbayPeer) -> None:
    """Given an order pending payment and a cancelled one, when polled, then neither comes;
    once the first is paid it comes on the next pass, the cancelled one still not."""
    created = "2026-11-30T12:00:00.000Z"
    peer.add_order(order_like("30-00000-00001", created, orderPaymentStatus="PENDING"))
    peer.add_order(order_like("30-00000-00002", created, cancelStatus={"cancelState": "CANCELED"}))
    importer = channel(peer)
    none, cursor = drain(importer)
    assert none == []
    peer.orders["30-00000-00001"]["orderPaymentStatus"] = "PAID"
    paid, _ = drain(importer, cursor)
    assert paid == ["30-00000-00001"]


def test_a_429_with_retry_after_is_waited_out(peer: EbayPeer) -> None:
    """Given eBay answering 429 with Retry-After twice, when polled, then the client waits what
    Retry-After asks each time and the poll succeeds."""
    peer.new_order("http://unused", "ebay-de")
    importer = channel(peer)
    slept: list[float] = []
    importer.http._sleep = slept.append
    peer.throttle(2)
    page = importer.fetch("")
    assert [o.external_id for o in page.orders] == ["11-12345-67890"]
    assert slept == [0.05, 0.05]


def test_a_platform_outage_mid_poll_raises_and_the_same_cursor_gets_the_same_orders(
    peer: EbayPeer,
) -> None:
    """Given three orders and pages of two, when eBay goes down after the first page, then the
    next fetch raises PeerUnavailable; once it is back, the same cursor brings the same
    remaining order."""
    for n in range(3):
        peer.add_order(order_like(f"40-00000-0000{n}", f"2026-11-30T13:00:0{n}.000Z"))
    importer = channel(peer, page_size=2)
    first = importer.fetch("")
    peer.down()
    with pytest.raises(PeerUnavailable):
        importer.fetch(first.cursor)
    peer.up()
    second = importer.fetch(first.cursor)
    assert [o.external_id for o in second.orders] == ["40-00000-00002"]
    assert second == importer.fetch(first.cursor)


def test_an_expired_token_is_renewed_and_a_wrong_client_secret_is_refused(
    peer: EbayPeer,
) -> None:
    """Given a minted token that eBay no longer accepts, when polled, then the adapter mints a
    new one from the refresh token and goes on; given a wrong client secret, the token endpoint
    refuses with 401 and so does the poll."""
    peer.new_order("http://unused", "ebay-de")
    importer = channel(peer)
    importer.fetch("")
    peer.expire_tokens()
    assert importer.fetch("").orders
    assert len(peer.received("POST", r"/identity/v1/oauth2/token$")) == 2
    settings = ChannelSettings(
        name="ebay-de", kind="ebay", base_url=peer.url, options=peer.options()
    )
    wrong = ebay.connect(settings, {**peer.secrets(), "client_secret": "PRD-wrong"}, retry=FAST)
    assert wrong.importer is not None
    with pytest.raises(PeerRefused) as refused:
        wrong.importer.fetch("")
    assert refused.value.status == 401


def test_missing_credentials_are_named() -> None:
    """Given a channel without its refresh token, when connected, then InvalidInput names the
    missing credential."""
    settings = ChannelSettings(
        name="ebay-de",
        kind="ebay",
        base_url="http://127.0.0.1:9",
        options={"created_after": "2026-11-01T00:00:00Z"},
    )
    with pytest.raises(InvalidInput) as bad:
        ebay.connect(settings, {"client_id": "a", "client_secret": "b"})
    assert [p.field for p in bad.value.problems] == ["ebay-de.credentials.refresh_token"]


def parcel(tracking: str, *lines: tuple[str, int]) -> ParcelShipped:
    return ParcelShipped(
        channel="ebay-de",
        order_id="o-1",
        external_id="11-12345-67890",
        shipment_id="s-1",
        node_id="wh-berlin",
        carrier="DHL",
        tracking_number=tracking,
        lines=tuple(ShippedLine(sku, quantity) for sku, quantity in lines),
        shipped_at=1796032800.5,
    )


def test_the_confirmation_reaches_ebay_once_in_its_format(peer: EbayPeer) -> None:
    """Given a parcel of the sample order, when confirmed twice, then eBay holds one shipping
    fulfillment with the carrier code, the alphanumeric tracking number, the shipped date and
    the line item ids and quantities of the parcel's skus."""
    peer.new_order("http://unused", "ebay-de")
    confirmer = channel(peer)
    shipped = parcel("0034 0434-1610", ("MUG-WHT-350", 2), ("296123456703", 1))
    confirmer.confirm(shipped)
    confirmer.confirm(shipped)
    (confirmation,) = peer.confirmations("11-12345-67890")
    assert confirmation["carrier"] == "DHL"
    assert confirmation["tracking_number"] == "003404341610"
    assert confirmation["lines"] == {"MUG-WHT-350": 2, "296123456703": 1}
    assert confirmation["raw"] == {
        "lineItems": [
            {"lineItemId": "10070123456701", "quantity": 2},
            {"lineItemId": "10070123456703", "quantity": 1},
        ],
        "shippedDate": "2026-11-30T10:00:00.500Z",
        "shippingCarrierCode": "DHL",
        "trackingNumber": "003404341610",
    }
    assert len(peer.received("POST", r"/shipping_fulfillment$")) == 1
    assert peer.orders["11-12345-67890"]["orderFulfillmentStatus"] == "IN_PROGRESS"


def test_a_confirmation_whose_first_try_went_through_is_not_sent_again(
    peer: EbayPeer,
) -> None:
    """Given eBay already holding the parcel's fulfillment (a first try answered too late),
    when eBay refuses the repeat because the tracking number exists, then confirm succeeds."""
    peer.new_order("http://unused", "ebay-de")
    confirmer = channel(peer)
    shipped = parcel("JJD0001", ("FLT-PAPER-102", 1))
    confirmer.confirm(shipped)
    reads: list[bool] = []
    real = confirmer._has

    def stale_first(order_id: str, tracking: str) -> bool:
        """The first read misses the fulfillment, as one racing the first try would."""
        reads.append(real(order_id, tracking))
        return len(reads) > 1 and reads[-1]

    confirmer._has = stale_first  # type: ignore[method-assign]
    confirmer.confirm(shipped)
    assert reads == [True, True]
    assert len(peer.received("POST", r"/shipping_fulfillment$")) == 2
    assert len(peer.confirmations("11-12345-67890")) == 1


def test_a_parcel_sku_not_on_the_order_is_named(peer: EbayPeer) -> None:
    """Given a parcel line whose sku is on no line item, when confirmed, then InvalidInput
    names that line and nothing is sent."""
    peer.new_order("http://unused", "ebay-de")
    with pytest.raises(InvalidInput) as bad:
        channel(peer).confirm(parcel("JJD0002", ("MUG-WHT-350", 1), ("NOPE", 1)))
    assert [p.field for p in bad.value.problems] == ["parcel.lines[1]"]
    assert peer.received("POST", r"/shipping_fulfillment$") == []


def test_an_unreadable_order_names_the_field(peer: EbayPeer) -> None:
    """Given an order whose line quantity is not a number and whose price is not an amount,
    when polled, then InvalidInput names both fields under the order id, quoting the values."""
    broken = order_like("50-00000-00001", "2026-11-30T14:00:00.000Z")
    broken["lineItems"][0]["quantity"] = "two"
    broken["lineItems"][1]["lineItemCost"]["value"] = "4,49"
    peer.add_order(broken)
    with pytest.raises(InvalidInput) as bad:
        channel(peer).fetch("")
    assert [(p.field, p.value) for p in bad.value.problems] == [
        ("50-00000-00001:order.lineItems[0].quantity", "two"),
        ("50-00000-00001:order.lineItems[1].lineItemCost.value", "4,49"),
    ]


def test_the_cursor_forgets_an_order_only_after_two_passes_without_it(peer: EbayPeer) -> None:
    """Given an imported order that one pass does not list (a page shift hid it), when it is
    listed again, then it is not imported again; once two passes in a row miss it (it was
    shipped), the cursor no longer holds it."""
    peer.new_order("http://unused", "ebay-de")
    importer = channel(peer)
    imported, cursor = drain(importer)
    assert imported == ["11-12345-67890"]
    order = peer.orders["11-12345-67890"]
    order["orderFulfillmentStatus"] = "FULFILLED"
    hidden, cursor = drain(importer, cursor)
    order["orderFulfillmentStatus"] = "NOT_STARTED"
    again, cursor = drain(importer, cursor)
    assert hidden == again == []
    assert QueueCursor.decode(cursor).imported == {"11-12345-67890"}
    order["orderFulfillmentStatus"] = "FULFILLED"
    _, once = drain(importer, cursor)
    assert QueueCursor.decode(once).absent == {"11-12345-67890"}
    _, twice = drain(importer, once)
    assert QueueCursor.decode(twice) == QueueCursor()


def test_a_cursor_this_adapter_did_not_write_is_invalid_input(peer: EbayPeer) -> None:
    """Given a cursor of another adapter, when fetched with, then InvalidInput names it."""
    with pytest.raises(InvalidInput) as bad:
        channel(peer).fetch("2026-11-30T00:00:00Z")
    assert [p.field for p in bad.value.problems] == ["cursor"]


def test_a_lost_answer_to_the_fulfillment_post_is_not_retried_in_the_client(
    peer: EbayPeer,
) -> None:
    """Given eBay makes the shipping fulfillment but answers 503, when confirmed, then the
    POST went out once and the confirm raises PeerUnavailable (the outbox tries again); the
    next confirm finds the fulfillment by its tracking number and posts nothing."""
    peer.new_order("http://unused", "ebay-de")
    confirmer = channel(peer)
    rewrites = Rewrites(peer)
    rewrites.answer(r"/shipping_fulfillment$", {"errors": []}, method="POST", status=503)
    with pytest.raises(PeerUnavailable):
        confirmer.confirm(parcel("JJD0099", ("MUG-WHT-350", 2)))
    assert len(peer.received("POST", r"/shipping_fulfillment$")) == 1
    rewrites.clear()
    confirmer.confirm(parcel("JJD0099", ("MUG-WHT-350", 2)))
    assert len(peer.received("POST", r"/shipping_fulfillment$")) == 1
    assert len(peer.confirmations("11-12345-67890")) == 1


def test_an_answer_that_is_no_order_list_is_peer_unavailable(peer: EbayPeer) -> None:
    """Given getOrders answering 200 with an HTML page, [], null, a total that is no number
    ("many") or orders that are no list, when polled, then PeerUnavailable names what could
    not be read, never a ValueError or TypeError."""
    peer.new_order("http://unused", "ebay-de")
    importer = channel(peer)
    rewrites = Rewrites(peer)
    for body in (
        b"<html><body>Service temporarily unavailable</body></html>",
        [],
        None,
        {"orders": [], "total": "many"},
        {"orders": 5, "total": 1},
    ):
        rewrites.answer(r"/sell/fulfillment/v1/order$", body)
        with pytest.raises(PeerUnavailable):
            importer.fetch("")


def test_wrong_typed_fields_of_the_answers_raise_only_typed_errors(peer: EbayPeer) -> None:
    """Given every field of getOrders' page and of getOrder's order replaced in turn by null,
    a number, a bool, a list, an object, a string and a lone surrogate, when polled, then
    only InvalidInput, PeerUnavailable or PeerRefused come out."""
    peer.new_order("http://unused", "ebay-de")
    importer = channel(peer)
    rewrites = Rewrites(peer)
    importer.fetch("")
    listing = rewrites.last(r"/sell/fulfillment/v1/order$")
    order = rewrites.last(r"/sell/fulfillment/v1/order/[^/]+$")

    def poll_with(path: str) -> Callable[[Any], object]:
        def poll(doc: Any) -> object:
            rewrites.answer(path, doc)
            return importer.fetch("")

        return poll

    assert untyped_errors(listing, poll_with(r"/sell/fulfillment/v1/order$")) == []
    rewrites.clear()
    assert untyped_errors(order, poll_with(r"/sell/fulfillment/v1/order/[^/]+$")) == []


def test_a_lone_surrogate_in_an_order_is_refused_naming_the_field(peer: EbayPeer) -> None:
    """Given getOrder's order with a buyer name holding a lone surrogate (no UTF-8 text, so
    the store could not write it), when polled, then InvalidInput names that field."""
    peer.new_order("http://unused", "ebay-de")
    importer = channel(peer)
    rewrites = Rewrites(peer)
    importer.fetch("")
    order = rewrites.last(r"/sell/fulfillment/v1/order/[^/]+$")
    step = order["fulfillmentStartInstructions"][0]["shippingStep"]
    step["shipTo"]["fullName"] = "Max \ud800 Muster"
    rewrites.answer(r"/sell/fulfillment/v1/order/[^/]+$", order)
    with pytest.raises(InvalidInput) as refused:
        importer.fetch("")
    assert [p.field for p in refused.value.problems] == [
        "11-12345-67890:fulfillmentStartInstructions[0].shippingStep.shipTo.fullName"
    ]
