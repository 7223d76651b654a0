"""The card adapter and the WMS hand-off over real HTTP, through the shared client's retries.

An answer lost to a 503 is asked for again under the same Idempotency-Key and leaves one payment
or one pick list at the peer; a 429's Retry-After is what the client waits; a peer down through
every attempt is ProviderUnavailable; a refusal is final at once. Each adapter is given a sleep
that records the waits instead of sleeping, so no test waits for, or measures, the clock.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qsl

import pytest

from allocation_engine.adapters.http_client import RetryPolicy
from allocation_engine.adapters.payments import CardProvider
from allocation_engine.adapters.payments.fake_provider import FakeCardProvider
from allocation_engine.adapters.wms import HttpWms, WmsRefused, WmsUnavailable
from allocation_engine.errors import (
    PaymentRefused,
    PeerRefused,
    PeerUnavailable,
    ProviderUnavailable,
)
from allocation_engine.orders.model import Address
from allocation_engine.ports.fulfilment import PickLine, PickList
from allocation_engine.ports.payments import PaymentRequest
from allocation_engine.testing.http_peer import Answer, HttpPeer, PeerRequest

THROTTLED_WAIT = 0.05  # the Retry-After HttpPeer.throttle answers with
SLOW_BACKOFF = RetryPolicy(attempts=3, initial=4.0, maximum=4.0)  # waits of 2..4 s if not told


class Waits(list[float]):
    """Stands in for `time.sleep`: records each wait, then runs `then` (to heal a peer)."""

    def __init__(self, then: Callable[[], None] = lambda: None) -> None:
        super().__init__()
        self._then = then

    def __call__(self, seconds: float) -> None:
        self.append(seconds)
        self._then()


class _Staged(HttpPeer):
    """An HttpPeer that can also lose its next answers: `lose_answers(n)` lets the next n calls
    do their work and then answers them 503, as a gateway does whose upstream answered late."""

    def __init__(self) -> None:
        super().__init__()
        self._lost = 0
        self._staging = threading.Lock()

    def lose_answers(self, calls: int) -> None:
        with self._staging:
            self._lost = calls

    def _answer_or_lose(self, answer: Answer) -> Answer:
        with self._staging:
            if self._lost > 0:
                self._lost -= 1
                return 503, {"error": "upstream timed out"}
        return answer

    def keys(self, method: str, path_pattern: str) -> list[str]:
        """The Idempotency-Key of each request received for `method path_pattern`."""
        return [r.headers.get("idempotency-key", "") for r in self.received(method, path_pattern)]


class CardPeer(_Staged):
    """The fake card provider's API served through an HttpPeer: `down()` and `throttle(n)`
    answer before the provider sees the call, `lose_answers(n)` after it acted, and
    `refuse_next(code, message)` answers the next call with a 402 card error naming no
    intent."""

    def __init__(self) -> None:
        super().__init__()
        self.provider = FakeCardProvider().start()
        self._refusal: tuple[str, str] | None = None
        for template in (
            "/v1/payment_intents",
            "/v1/payment_intents/{id}/capture",
            "/v1/payment_intents/{id}/cancel",
            "/v1/refunds",
        ):
            self.route("POST", template, self._forward)

    def refuse_next(self, code: str, message: str) -> None:
        with self._staging:
            self._refusal = (code, message)

    def stop(self) -> None:
        super().stop()
        self.provider.stop()

    def _forward(self, request: PeerRequest) -> Answer:
        with self._staging:
            refusal, self._refusal = self._refusal, None
        if refusal is not None:
            code, message = refusal
            return 402, {"error": {"type": "card_error", "code": code, "message": message}}
        if request.headers.get("authorization") != f"Bearer {self.provider.api_key}":
            return 401, {"error": {"type": "invalid_request_error", "code": "api_key_invalid"}}
        form = dict(parse_qsl(request.body.decode(), keep_blank_values=True))
        key = request.headers.get("idempotency-key", "")
        return self._answer_or_lose(self.provider.dispatch("POST", request.path, form, key))


class WmsPeer(_Staged):
    """A WMS taking pick lists at POST /nodes/{node_id}/pick-lists with a bearer token: it
    keeps one per Idempotency-Key, answering 201, and 409 to a key it has."""

    TOKEN = "Bearer wms-token"

    def __init__(self) -> None:
        super().__init__()
        self.pick_lists: dict[str, dict[str, Any]] = {}
        self.route("POST", "/nodes/{node_id}/pick-lists", self._take)

    def _take(self, request: PeerRequest) -> Answer:
        if request.headers.get("authorization") != self.TOKEN:
            return 401, {"error": "unknown token"}
        key = request.headers.get("idempotency-key", "")
        with self._staging:
            if key in self.pick_lists:
                return 409, {"error": f"{key} is here already"}
            self.pick_lists[key] = {"node": request.params["node_id"], **request.json()}
        return self._answer_or_lose((201, {"id": key}))


PICK = PickList(
    shipment_id="O-000001-S1",
    order_id="O-000001",
    external_order_id="web-1",
    node_id="WH-KOELN",
    lines=(PickLine("A", 2, "Espresso cup"),),
    ship_to=Address("Ada Lovelace", "Hohe Strasse 1", "50667", "Köln", "DE"),
    delivery_mode="ship_to_address",
    created_at=1_800_000_000.0,
)


@pytest.fixture
def card_peer() -> Iterator[CardPeer]:
    peer = CardPeer().start()
    yield peer
    peer.stop()


@pytest.fixture
def wms_peer() -> Iterator[WmsPeer]:
    peer = WmsPeer().start()
    yield peer
    peer.stop()


def _card(peer: CardPeer, waits: Waits, retry: RetryPolicy = SLOW_BACKOFF) -> CardProvider:
    p = peer.provider
    return CardProvider(peer.url, p.api_key, p.webhook_secret, retry=retry, sleep=waits)


def _wms(peer: WmsPeer, waits: Waits, token: str = WmsPeer.TOKEN) -> HttpWms:
    url = peer.url + "/nodes/{node_id}/pick-lists"
    return HttpWms(url, headers={"Authorization": token}, retry=SLOW_BACKOFF, sleep=waits)


def _visa(key: str = "order:O-1:open") -> PaymentRequest:
    return PaymentRequest("O-1", 8880, "EUR", "ada@example.com", key, payment_method="pm_card_visa")


def _unused_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


# --- the card provider ---------------------------------------------------------------------


@pytest.mark.parametrize("lost", ["before the provider acted", "after the provider acted"])
def test_a_503_is_retried_under_the_same_key_into_one_payment(
    card_peer: CardPeer, lost: str
) -> None:
    """Given the provider's gateway answers one call 503, either before the provider saw it or
    after it authorized the card (the answer lost on its way back), when the intent is opened
    and captured, then each call is sent again under its own Idempotency-Key and succeeds, and
    the provider holds one intent, authorized and captured once."""
    waits = Waits(then=card_peer.up)
    card = _card(card_peer, waits)
    if lost == "before the provider acted":
        card_peer.down()
    else:
        card_peer.lose_answers(1)
    opened = card.open(_visa())
    assert (opened.authorized, opened.failure) == (8880, "")
    assert list(card_peer.provider.intents) == [opened.reference]
    assert card_peer.keys("POST", "^/v1/payment_intents$") == ["order:O-1:open"] * 2
    assert len(waits) == 1

    card_peer.lose_answers(1)
    card.capture(opened.reference, 8880, "order:O-1:capture")
    intent = card_peer.provider.intents[opened.reference]
    assert (intent["status"], intent["amount_received"]) == ("succeeded", 8880)
    assert card_peer.keys("POST", "/capture$") == ["order:O-1:capture"] * 2
    card.close()


def test_a_429_is_retried_after_the_wait_its_retry_after_asks_for(card_peer: CardPeer) -> None:
    """Given the provider rate-limits the next call with Retry-After: 0.05, when the intent is
    opened under a policy whose own backoff would wait seconds, then the one wait is the 0.05
    the provider asked for and the retry opens the intent."""
    waits = Waits()
    card = _card(card_peer, waits)
    card_peer.throttle(1)
    opened = card.open(_visa())
    assert opened.authorized == 8880
    assert waits == [THROTTLED_WAIT]
    assert card_peer.keys("POST", "^/v1/payment_intents$") == ["order:O-1:open"] * 2
    assert list(card_peer.provider.intents) == [opened.reference]


def test_a_provider_down_through_every_attempt_is_unavailable(card_peer: CardPeer) -> None:
    """Given the provider answers 503 to everything, when an intent is opened under a policy of
    3 attempts, then ProviderUnavailable (a PeerUnavailable) follows the third, after two
    waits, and no intent exists."""
    waits = Waits()
    card_peer.down()
    with pytest.raises(ProviderUnavailable) as raised:
        _card(card_peer, waits).open(_visa())
    assert isinstance(raised.value, PeerUnavailable)
    assert len(card_peer.received("POST", "^/v1/payment_intents$")) == 3
    assert len(waits) == 2
    assert card_peer.provider.intents == {}


def test_a_provider_nobody_listens_for_is_unavailable_after_the_attempts() -> None:
    """Given nothing listening at the provider's address, when an intent is opened under a
    policy of 3 attempts, then ProviderUnavailable follows after two waits."""
    waits = Waits()
    card = CardProvider(_unused_port_url(), "sk", "whsec", retry=SLOW_BACKOFF, sleep=waits)
    with pytest.raises(ProviderUnavailable):
        card.open(_visa())
    assert len(waits) == 2


def test_a_402_card_error_is_payment_refused_without_a_retry(card_peer: CardPeer) -> None:
    """Given an authorized intent, when the provider answers its capture with a 402 card error
    naming no intent, then the capture raises PaymentRefused with the provider's code and
    message, after one request and no wait."""
    waits = Waits()
    card = _card(card_peer, waits)
    opened = card.open(_visa())
    card_peer.refuse_next("card_declined", "Your card was declined.")
    with pytest.raises(PaymentRefused) as refused:
        card.capture(opened.reference, 8880, "order:O-1:capture")
    assert refused.value.code == "card_declined"
    assert str(refused.value) == "card_declined: Your card was declined."
    assert len(card_peer.received("POST", "/capture$")) == 1
    assert waits == []


def test_a_declined_card_at_checkout_is_one_call_and_a_failed_opening(
    card_peer: CardPeer,
) -> None:
    """Given a card the provider declines with a 402 naming the intent, when the intent is
    opened with it, then the opening reports the provider's reason for that intent, after one
    request and no wait."""
    waits = Waits()
    request = PaymentRequest("O-1", 8880, "EUR", "ada@example.com", "k", "pm_card_chargeDeclined")
    opened = _card(card_peer, waits).open(request)
    assert opened.failure == "card_declined: Your card was declined."
    assert list(card_peer.provider.intents) == [opened.reference]
    assert len(card_peer.received("POST", "^/v1/payment_intents$")) == 1
    assert waits == []


# --- the WMS ---------------------------------------------------------------------------------


@pytest.mark.parametrize("lost", ["before the WMS took it", "after the WMS took it"])
def test_a_503_is_retried_under_the_shipment_key_into_one_pick_list(
    wms_peer: WmsPeer, lost: str
) -> None:
    """Given the WMS answers one POST 503, either before it took the pick list or after (the
    answer lost), when the pick list is released, then it is POSTed again under the shipment
    id as Idempotency-Key, the retry is answered 201 or 409 (counted as delivered), and the WMS
    holds one pick list for the node."""
    waits = Waits(then=wms_peer.up)
    if lost == "before the WMS took it":
        wms_peer.down()
    else:
        wms_peer.lose_answers(1)
    wms = _wms(wms_peer, waits)
    wms.release(PICK)
    assert wms_peer.keys("POST", "/nodes/WH-KOELN/pick-lists$") == ["O-000001-S1"] * 2
    assert list(wms_peer.pick_lists) == ["O-000001-S1"]
    assert wms_peer.pick_lists["O-000001-S1"]["node"] == "WH-KOELN"
    assert len(waits) == 1
    wms.close()


def test_a_wms_429_is_retried_after_the_wait_its_retry_after_asks_for(wms_peer: WmsPeer) -> None:
    """Given the WMS rate-limits the next POST with Retry-After: 0.05, when a pick list is
    released under a policy whose own backoff would wait seconds, then the one wait is the 0.05
    asked for and the WMS holds the pick list."""
    waits = Waits()
    wms_peer.throttle(1)
    _wms(wms_peer, waits).release(PICK)
    assert waits == [THROTTLED_WAIT]
    assert list(wms_peer.pick_lists) == ["O-000001-S1"]


def test_a_wms_down_through_every_attempt_is_unavailable(wms_peer: WmsPeer) -> None:
    """Given the WMS answers 503 to everything, when a pick list is released under a policy of
    3 attempts, then WmsUnavailable follows the third: a PeerUnavailable (so a
    ProviderUnavailable) and an OSError, not a PeerRefused, so the outbox tries it later."""
    waits = Waits()
    wms_peer.down()
    with pytest.raises(WmsUnavailable) as raised:
        _wms(wms_peer, waits).release(PICK)
    assert isinstance(raised.value, PeerUnavailable)
    assert isinstance(raised.value, ProviderUnavailable)
    assert isinstance(raised.value, OSError)
    assert not isinstance(raised.value, PeerRefused)
    assert len(wms_peer.received("POST", "/pick-lists$")) == 3
    assert len(waits) == 2


def test_a_wms_nobody_listens_for_is_unavailable_after_the_attempts() -> None:
    """Given nothing listening at the WMS's address, when a pick list is released under a
    policy of 3 attempts, then WmsUnavailable follows after two waits."""
    waits = Waits()
    wms = HttpWms(_unused_port_url() + "/pick-lists", retry=SLOW_BACKOFF, sleep=waits)
    with pytest.raises(WmsUnavailable):
        wms.release(PICK)
    assert len(waits) == 2


def test_a_wms_refusal_is_not_retried_and_stays_for_the_outbox_to_try_again(
    wms_peer: WmsPeer,
) -> None:
    """Given a WMS that refuses our token with 401, when a pick list is released, then one POST
    is made and WmsRefused names the status: an OSError and no PeerRefused, so the outbox keeps
    the pick list and sends it again later (once the token is fixed) instead of giving it up."""
    waits = Waits()
    with pytest.raises(WmsRefused) as refused:
        _wms(wms_peer, waits, token="Bearer stale").release(PICK)
    assert refused.value.status == 401
    assert isinstance(refused.value, OSError)
    assert not isinstance(refused.value, PeerRefused)
    assert len(wms_peer.received("POST", "/pick-lists$")) == 1
    assert waits == []
    assert wms_peer.pick_lists == {}
