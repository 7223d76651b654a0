"""The AliExpress adapter against a local AliExpress Open Platform gateway over real HTTP."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from allocation_engine.adapters.channels import aliexpress
from allocation_engine.adapters.channels.aliexpress import AliExpressChannel, sign
from allocation_engine.adapters.http_client import RetryPolicy
from allocation_engine.errors import InvalidInput, PeerRefused, PeerUnavailable
from allocation_engine.ports.channels import ChannelSettings, ParcelShipped, ShippedLine
from allocation_engine.testing.channel_peers.aliexpress import INFO, AliExpressPeer
from tests.adapters.channels.fuzz import Rewrites, untyped_errors

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "channels" / "aliexpress"
FAST = RetryPolicy(attempts=3, initial=0.01, maximum=0.05)
ORDER = "8190123456789012"


def sample() -> dict[str, Any]:
    return dict(json.loads((SAMPLE / "order_info_b2c.json").read_text(encoding="utf-8")))


@pytest.fixture
def peer() -> Iterator[AliExpressPeer]:
    started = AliExpressPeer(sample()).start()
    yield started
    started.stop()


def connected(
    peer: AliExpressPeer, secrets: dict[str, str] | None = None, **options: Any
) -> AliExpressChannel:
    settings = ChannelSettings(
        name="aliexpress-de",
        kind="aliexpress",
        base_url=peer.url,
        options={**peer.options(), **options},
    )
    connection = aliexpress.connect(settings, secrets or peer.secrets(), retry=FAST)
    assert isinstance(connection.importer, AliExpressChannel)
    assert connection.confirmer is connection.importer
    return connection.importer


def detail(order_id: int, created: str, **changes: Any) -> dict[str, Any]:
    """The sample order under another id and creation time (US Pacific)."""
    order = copy.deepcopy(sample()[INFO]["result"]["data"])
    order.update(id=order_id, gmt_create=created, **changes)
    return order


def calls(peer: AliExpressPeer, method: str) -> list[dict[str, str]]:
    """The parameters of every gateway call of `method` the peer received."""
    found = [dict(httpx.QueryParams(r.body.decode())) for r in peer.received("POST", "/sync")]
    return [params for params in found if params.get("method") == method]


def one_pass(importer: AliExpressChannel, cursor: str = "") -> tuple[list[str], str]:
    ids: list[str] = []
    while True:
        page = importer.fetch(cursor)
        ids += [o.external_id for o in page.orders]
        cursor = page.cursor
        if not page.more:
            return ids, cursor


def test_the_sample_order_decodes_into_the_channel_order(peer: AliExpressPeer) -> None:
    """Given the sample order awaiting shipment, when polled, then its id, skus (sku_code, else
    the product id), quantities, unit prices after the child order discount in cents, ship-to,
    buyer and currency come through, paid, not b2b and without e-mail (AliExpress passes
    none)."""
    assert peer.new_order("http://unused", "aliexpress-de") == ORDER
    page = connected(peer).fetch("")
    (order,) = page.orders
    assert order.external_id == ORDER
    assert [(line.sku, line.quantity, line.unit_price) for line in order.lines] == [
        ("TEA-GRN-100G", 2, 840),
        ("1005006444555666", 1, 2350),
        ("CUP-CER-GRY", 3, 420),
    ]
    assert order.lines[1].name == "Cast Iron Teapot 800 ml, black"
    assert (order.ship_to.country, order.ship_to.postal_code) == ("DE", "20095")
    assert order.ship_to.city == "Hamburg"
    assert order.ship_to.street == "Mönckebergstraße 7 c/o Becker, 2. Stock"
    assert order.ship_to.name == "Jonas Becker"
    assert (order.customer_id, order.customer_name) == ("de1580123456abcd", "Jonas Becker")
    assert order.email == ""
    assert order.currency == "EUR"
    assert order.paid is True and order.b2b is False
    assert page.more is False
    (listing,) = [json.loads(c["param0"]) for c in calls(peer, "aliexpress.solution.order.get")]
    assert listing["create_date_start"] == "2026-10-31 17:00:00"  # 2026-11-01T00:00Z in Pacific
    assert listing["order_status_list"] == ["WAIT_SELLER_SEND_GOODS"]


def test_our_signature_is_accepted_and_a_wrong_or_missing_one_refused(
    peer: AliExpressPeer,
) -> None:
    """Given a call the adapter signed, when the platform checks it, then it is accepted; the
    same call with one parameter changed is refused IncompleteSignature, without a sign
    MissingParameter; a wrong app secret or access token, or a timestamp off by more than
    7200 s, makes the poll raise PeerRefused."""
    connected(peer).fetch("")
    (call,) = peer.received("POST", "/sync")
    params = dict(httpx.QueryParams(call.body.decode()))
    assert params["sign"] == sign(peer.app_secret, params)
    assert params["sign_method"] == "sha256" and params["sign"].isupper()

    def replay(changed: dict[str, str]) -> Any:
        return httpx.post(f"{peer.url}/sync", data=changed).json()

    assert "code" not in replay(params)
    assert replay({**params, "param0": params["param0"].replace("50", "49")})["code"] == (
        "IncompleteSignature"
    )
    assert replay({k: v for k, v in params.items() if k != "sign"})["code"] == "MissingParameter"
    for role, code in (
        ("app_secret", "IncompleteSignature"),
        ("access_token", "IllegalAccessToken"),
    ):
        wrong = connected(peer, {**peer.secrets(), role: "0" * 32})
        with pytest.raises(PeerRefused) as refused:
            wrong.fetch("")
        assert code in refused.value.detail
    stale = connected(peer)
    stale.clock = lambda: 1_700_000_000.0  # years before the peer's clock, beyond 7200 s
    with pytest.raises(PeerRefused) as late:
        stale.fetch("")
    assert "InvalidTimestamp" in late.value.detail


def test_pages_follow_the_cursor_and_a_shared_timestamp_neither_skips_nor_doubles(
    peer: AliExpressPeer,
) -> None:
    """Given five orders created in the same second and pages of two, when the queue is polled
    page by page, then each comes exactly once; another pass brings nothing and a sixth order
    from that same second comes alone on the pass after."""
    for n in range(5):
        peer.add_order(detail(8190000000000100 + n, "2026-11-30 02:00:00"))
    importer = connected(peer, page_size=2)
    pages = [importer.fetch("")]
    while pages[-1].more:
        pages.append(importer.fetch(pages[-1].cursor))
    assert [len(p.orders) for p in pages] == [2, 2, 1]
    ids = sorted(o.external_id for p in pages for o in p.orders)
    assert ids == [str(8190000000000100 + n) for n in range(5)]
    nothing, cursor = one_pass(importer, pages[-1].cursor)
    assert nothing == []
    peer.add_order(detail(8190000000000105, "2026-11-30 02:00:00"))
    assert one_pass(importer, cursor)[0] == ["8190000000000105"]


def test_an_order_in_risk_control_comes_once_it_awaits_shipment(peer: AliExpressPeer) -> None:
    """Given an order still in the 24 h RISK_CONTROL hold, when polled, then it does not come;
    once it awaits shipment it comes, though orders created after it were imported before."""
    peer.add_order(detail(8190000000000200, "2026-11-30 03:00:00", order_status="RISK_CONTROL"))
    peer.add_order(detail(8190000000000201, "2026-11-30 04:00:00"))
    importer = connected(peer)
    first, cursor = one_pass(importer)
    assert first == ["8190000000000201"]
    peer.orders["8190000000000200"]["order_status"] = "WAIT_SELLER_SEND_GOODS"
    assert one_pass(importer, cursor)[0] == ["8190000000000200"]


def test_a_429_and_the_platforms_api_call_limit_are_waited_out(peer: AliExpressPeer) -> None:
    """Given the gateway answering 429 with Retry-After and then ApiCallLimit, when polled,
    then the HTTP client waits what Retry-After asks, the adapter backs off on ApiCallLimit,
    and the poll succeeds."""
    peer.new_order("http://unused", "aliexpress-de")
    importer = connected(peer)
    slept: list[float] = []
    importer.http._sleep = slept.append
    importer.sleep = slept.append
    peer.throttle(1)
    first = importer.fetch("")
    assert [o.external_id for o in first.orders] == [ORDER]
    assert slept == [0.05]
    peer.limit(2)
    assert importer.fetch(first.cursor).orders == ()  # imported already, only listed again
    assert slept == [0.05, 0.01, 0.02]
    peer.limit(3)
    with pytest.raises(PeerUnavailable, match="ApiCallLimit"):
        importer.fetch(first.cursor)


def test_a_platform_outage_mid_poll_raises_and_the_same_cursor_gets_the_same_orders(
    peer: AliExpressPeer,
) -> None:
    """Given three orders and pages of two, when the gateway goes down after the first page,
    then the next fetch raises PeerUnavailable; once it is back, the same cursor brings the
    same remaining order."""
    for n in range(3):
        peer.add_order(detail(8190000000000300 + n, f"2026-11-30 05:00:0{n}"))
    importer = connected(peer, page_size=2)
    first = importer.fetch("")
    peer.down()
    with pytest.raises(PeerUnavailable):
        importer.fetch(first.cursor)
    peer.up()
    second = importer.fetch(first.cursor)
    assert [o.external_id for o in second.orders] == ["8190000000000300"]
    assert second == importer.fetch(first.cursor)


def parcel(tracking: str, *lines: tuple[str, int], carrier: str = "DHL") -> ParcelShipped:
    return ParcelShipped(
        channel="aliexpress-de",
        order_id="o-1",
        external_id=ORDER,
        shipment_id="s-1",
        node_id="wh-hamburg",
        carrier=carrier,
        tracking_number=tracking,
        lines=tuple(ShippedLine(sku, quantity) for sku, quantity in lines),
        shipped_at=1796032800.0,
    )


def test_the_fulfillment_reaches_aliexpress_once_in_its_format(peer: AliExpressPeer) -> None:
    """Given a parcel with every unit of the sample order, when confirmed twice, then
    AliExpress holds one fulfillment: out_ref, logistics_no, the carrier's service, send_type
    all and the lines in the remarks; the order awaits the buyer's receipt."""
    peer.new_order("http://unused", "aliexpress-de")
    confirmer = connected(peer)
    shipped = parcel(
        "00340434 161094", ("TEA-GRN-100G", 2), ("1005006444555666", 1), ("CUP-CER-GRY", 3)
    )
    confirmer.confirm(shipped)
    confirmer.confirm(shipped)
    (confirmation,) = peer.confirmations(ORDER)
    assert confirmation["carrier"] == "DHL"
    assert confirmation["tracking_number"] == "00340434161094"
    assert confirmation["lines"] == {"TEA-GRN-100G": 2, "1005006444555666": 1, "CUP-CER-GRY": 3}
    assert confirmation["raw"] == {
        "format": "json",
        "out_ref": ORDER,
        "logistics_no": "00340434161094",
        "service_name": "DHL",
        "send_type": "all",
        "description": "TEA-GRN-100G x2; 1005006444555666 x1; CUP-CER-GRY x3",
    }
    assert len(calls(peer, "aliexpress.solution.order.fulfill")) == 1
    assert peer.orders[ORDER]["order_status"] == "WAIT_BUYER_ACCEPT_GOODS"


def test_a_split_order_goes_out_in_parts_and_a_repeat_refused_is_success(
    peer: AliExpressPeer,
) -> None:
    """Given two parcels of the sample order, when each is confirmed, then each is a "part"
    fulfillment of its own; when the first try's fulfillment was recorded but the adapter did
    not see it, the platform's refusal of the repeat counts as success."""
    peer.new_order("http://unused", "aliexpress-de")
    confirmer = connected(peer)
    confirmer.confirm(parcel("JJD01", ("TEA-GRN-100G", 2)))
    second = parcel("JJD02", ("CUP-CER-GRY", 1), carrier="Hermes")
    with pytest.raises(InvalidInput, match="tracking_website"):
        confirmer.confirm(second)
    confirmer.tracking_website = "https://www.myhermes.de/empfangen/sendungsverfolgung/"
    confirmer.confirm(second)
    assert [(c["raw"]["send_type"], c["carrier"]) for c in peer.confirmations(ORDER)] == [
        ("part", "DHL"),
        ("part", "OTHER"),
    ]
    assert peer.confirmations(ORDER)[1]["raw"]["tracking_website"].startswith("https://")
    real = confirmer.detail
    reads: list[int] = []

    def stale_first(order_id: str) -> Any:
        """The first read misses the fulfillment, as one racing the first try would."""
        reads.append(1)
        found = real(order_id)
        return {**found, "logistic_info_list": {}} if len(reads) == 1 else found

    confirmer.detail = stale_first  # type: ignore[method-assign]
    confirmer.confirm(parcel("JJD01", ("TEA-GRN-100G", 2)))
    assert len(peer.confirmations(ORDER)) == 2 and len(reads) == 2


def test_more_units_than_ordered_are_named(peer: AliExpressPeer) -> None:
    """Given a parcel with a sku the order lacks and too many units of another, when confirmed,
    then InvalidInput names both lines and nothing is fulfilled."""
    peer.new_order("http://unused", "aliexpress-de")
    with pytest.raises(InvalidInput) as bad:
        connected(peer).confirm(parcel("JJD03", ("CUP-CER-GRY", 4), ("NOPE", 1)))
    assert [p.field for p in bad.value.problems] == ["parcel.lines[0]", "parcel.lines[1]"]
    assert peer.confirmations(ORDER) == []


def test_an_unreadable_order_names_the_field(peer: AliExpressPeer) -> None:
    """Given an order whose child quantity is not a number, whose price is no amount and whose
    country is no ISO code, when polled, then InvalidInput names each field under the order id,
    quoting the value."""
    broken = detail(8190000000000400, "2026-11-30 06:00:00")
    lines = broken["child_order_list"]["global_aeop_tp_child_order_dto"]
    lines[0]["product_count"] = "2"
    lines[2]["product_price"]["amount"] = "4,20"
    broken["receipt_address"]["country"] = "Germany"
    peer.add_order(broken)
    with pytest.raises(InvalidInput) as bad:
        connected(peer).fetch("")
    assert [(p.field, p.value) for p in bad.value.problems] == [
        ("8190000000000400:data.child_order_list[0].product_count", "2"),
        ("8190000000000400:data.child_order_list[2].product_price.amount", "4,20"),
        ("8190000000000400:data.receipt_address.country", "Germany"),
    ]


FULFILL = r"method=aliexpress\.solution\.order\.fulfill"
LIST = r"method=aliexpress\.solution\.order\.get"
DETAIL = r"method=aliexpress\.solution\.order\.info\.get"


def test_a_lost_answer_to_the_fulfill_call_is_not_retried(peer: AliExpressPeer) -> None:
    """Given AliExpress records the fulfillment but answers 503 (or a SYSTEM error), when
    confirmed, then the fulfill went out once and the confirm raises PeerUnavailable (the
    outbox tries again); the next confirm finds the tracking number and sends nothing."""
    peer.new_order("http://unused", "aliexpress-de")
    confirmer = connected(peer)
    confirmer.sleep = lambda seconds: None
    rewrites = Rewrites(peer)
    system = {"error_response": {"code": "15", "type": "SYSTEM", "message": "Remote error"}}
    for n, (status, body) in enumerate([(503, {"error": "down"}), (200, system)]):
        rewrites.answer("/sync", body, FULFILL, status=status)
        with pytest.raises(PeerUnavailable):
            confirmer.confirm(parcel(f"JJD1{n}", ("TEA-GRN-100G", 1)))
        assert len(calls(peer, "aliexpress.solution.order.fulfill")) == n + 1
        rewrites.clear()
        confirmer.confirm(parcel(f"JJD1{n}", ("TEA-GRN-100G", 1)))
        assert len(calls(peer, "aliexpress.solution.order.fulfill")) == n + 1
    assert len(peer.confirmations(ORDER)) == 2


def test_an_answer_that_is_no_order_list_is_peer_unavailable(peer: AliExpressPeer) -> None:
    """Given the gateway answering 200 with an HTML page, [], null or a total_page that is no
    number, when polled, then PeerUnavailable, never a ValueError or AttributeError."""
    peer.new_order("http://unused", "aliexpress-de")
    importer = connected(peer)
    rewrites = Rewrites(peer)
    importer.fetch("")
    listing = rewrites.last("/sync", LIST)
    response = next(k for k in listing if k.endswith("_response"))
    listing[response]["result"]["total_page"] = "many"
    for body in (b"<html>502 Bad Gateway</html>", [], None, listing):
        rewrites.answer("/sync", body, LIST)
        with pytest.raises(PeerUnavailable):
            importer.fetch("")


def test_wrong_typed_fields_of_the_answers_raise_only_typed_errors(
    peer: AliExpressPeer,
) -> None:
    """Given every field of order.get's and order.info.get's answers replaced in turn by null,
    a number, a bool, a list, an object, a string and a lone surrogate, when polled, then only
    InvalidInput, PeerUnavailable or PeerRefused come out."""
    peer.new_order("http://unused", "aliexpress-de")
    importer = connected(peer)
    importer.sleep = lambda seconds: None
    rewrites = Rewrites(peer)
    importer.fetch("")
    listing, info = rewrites.last("/sync", LIST), rewrites.last("/sync", DETAIL)

    def poll_with(form: str) -> Callable[[Any], object]:
        def poll(doc: Any) -> object:
            rewrites.answer("/sync", doc, form)
            return importer.fetch("")

        return poll

    assert untyped_errors(listing, poll_with(LIST)) == []
    rewrites.clear()
    assert untyped_errors(info, poll_with(DETAIL)) == []
