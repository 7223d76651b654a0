"""The card adapter against the local test peer over HTTP: the PaymentIntent-style wire format,
idempotency keys, card errors, an unreachable provider, and webhook signatures."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator

import pytest

from allocation_engine.adapters.clock import SystemClock
from allocation_engine.adapters.payments import CardProvider, InvoiceProvider
from allocation_engine.adapters.payments.fake_provider import FakeCardProvider
from allocation_engine.adapters.payments.signature import HEADER, sign
from allocation_engine.adapters.payments.unconfigured import NoCardProvider
from allocation_engine.engine import InvalidInput
from allocation_engine.errors import PaymentRefused, ProviderUnavailable
from allocation_engine.orders.payments import PaymentEventKind
from allocation_engine.ports.payments import PaymentRequest
from tests.support.inbox import Inbox


@pytest.fixture
def inbox() -> Iterator[Inbox]:
    box = Inbox()
    yield box
    box.close()


@pytest.fixture
def peer(inbox: Inbox) -> Iterator[FakeCardProvider]:
    running = FakeCardProvider(webhook_url=inbox.url + "/webhooks/card").start()
    yield running
    running.stop()


@pytest.fixture
def card(peer: FakeCardProvider) -> CardProvider:
    return CardProvider(peer.url, peer.api_key, peer.webhook_secret, clock=SystemClock())


def _request(method: str = "", key: str = "open-1") -> PaymentRequest:
    return PaymentRequest("O-1", 8880, "EUR", "ada@example.com", key, payment_method=method)


def test_a_card_authorizes_at_checkout_and_is_captured_once(
    card: CardProvider, peer: FakeCardProvider
) -> None:
    """Given a card that authorizes, when the intent is opened with it and captured twice with
    the same key, then the provider holds one capture of the full amount."""
    opened = card.open(_request("pm_card_visa"))
    assert opened.authorized == 8880 and opened.failure == ""
    assert peer.intents[opened.reference]["metadata"] == {"order_id": "O-1"}
    card.capture(opened.reference, 8880, "capture-1")
    card.capture(opened.reference, 8880, "capture-1")  # a retry after a timeout
    intent = peer.intents[opened.reference]
    assert (intent["status"], intent["amount_received"]) == ("succeeded", 8880)


def test_a_declined_card_is_a_failure_with_the_providers_reason(card: CardProvider) -> None:
    opened = card.open(_request("pm_card_chargeDeclined"))
    assert opened.reference.startswith("pi_")
    assert opened.authorized == 0
    assert opened.failure == "card_declined: Your card was declined."


def test_an_intent_without_a_card_waits_for_the_customer(
    card: CardProvider, peer: FakeCardProvider
) -> None:
    opened = card.open(_request())
    assert opened.client_secret.startswith(opened.reference + "_secret_")
    assert peer.intents[opened.reference]["status"] == "requires_payment_method"


def test_refunds_are_keyed_and_never_exceed_what_was_captured(
    card: CardProvider, peer: FakeCardProvider
) -> None:
    """Given 88.80 captured, when 19.90 is refunded twice under one key and then 80.00 is asked
    for, then one refund exists and the second ask is refused by the provider."""
    opened = card.open(_request("pm_card_visa"))
    card.capture(opened.reference, 8880, "capture-1")
    first = card.refund(opened.reference, 1990, "refund-1")
    assert card.refund(opened.reference, 1990, "refund-1") == first
    assert len(peer.refunds) == 1
    with pytest.raises(PaymentRefused) as refused:
        card.refund(opened.reference, 8000, "refund-2")
    assert refused.value.code == "amount_too_large"
    assert peer.intents[opened.reference]["amount_refunded"] == 1990


def test_a_key_reused_for_another_request_is_refused(card: CardProvider) -> None:
    opened = card.open(_request("pm_card_visa"))
    card.capture(opened.reference, 8880, "key-1")
    with pytest.raises(PaymentRefused) as refused:
        card.refund(opened.reference, 100, "key-1")
    assert refused.value.code == "idempotency_key_in_use"


def test_an_authorization_can_be_cancelled(card: CardProvider, peer: FakeCardProvider) -> None:
    opened = card.open(_request("pm_card_visa"))
    card.cancel(opened.reference, "cancel-1")
    assert peer.intents[opened.reference]["status"] == "canceled"
    with pytest.raises(PaymentRefused):
        card.capture(opened.reference, 8880, "capture-1")


def test_a_wrong_api_key_is_refused(peer: FakeCardProvider) -> None:
    wrong = CardProvider(peer.url, "sk_test_wrong", peer.webhook_secret)
    with pytest.raises(PaymentRefused) as refused:
        wrong.open(_request())
    assert refused.value.code == "api_key_invalid"


def test_an_unreachable_provider_is_unavailable() -> None:
    """Given nothing listening, when the adapter calls, then ProviderUnavailable (UNAVAILABLE)
    says so: whether anything happened is unknown, the key makes the retry safe."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}"
    with pytest.raises(ProviderUnavailable):
        CardProvider(url, "sk", "whsec", timeout=2).open(_request())


def test_signed_webhooks_become_payment_events(
    card: CardProvider, peer: FakeCardProvider, inbox: Inbox
) -> None:
    """Given the customer confirms the intent at the provider, when the provider's webhooks
    arrive, then the signed authorization is read as AUTHORIZED for the order, and types the
    workflow does not act on are ignored."""
    opened = card.open(_request())
    peer.dispatch(
        "POST",
        f"/v1/payment_intents/{opened.reference}/confirm",
        {"payment_method": "pm_card_visa"},
        "",
    )
    (hook,) = inbox.wait_for(1)
    assert hook.path == "/webhooks/card"
    event = card.parse_webhook(hook.body, hook.headers[HEADER])
    assert event is not None
    assert (event.kind, event.amount, event.reference, event.order_id) == (
        PaymentEventKind.AUTHORIZED,
        8880,
        opened.reference,
        "O-1",
    )
    assert event.event_id == json.loads(hook.body)["id"]
    card.cancel(opened.reference, "cancel-1")
    canceled = inbox.wait_for(2)[1]
    assert card.parse_webhook(canceled.body, canceled.headers[HEADER]) is None


@pytest.mark.parametrize("tamper", ["body", "secret", "stale", "garbage"])
def test_a_webhook_that_is_not_signed_right_is_refused(card: CardProvider, tamper: str) -> None:
    """Given a webhook altered in transit, signed with another secret, replayed after the
    tolerance, or without a signature, then it is refused naming webhook.signature."""
    body = json.dumps({"id": "evt_1", "type": "payment_intent.succeeded"}).encode()
    now = int(time.time())
    header = {
        "body": sign(b"{}", "whsec_local", now),
        "secret": sign(body, "whsec_other", now),
        "stale": sign(body, "whsec_local", now - 3600),
        "garbage": "v1=abc",
    }[tamper]
    with pytest.raises(InvalidInput) as raised:
        card.parse_webhook(body, header)
    assert raised.value.problems[0].field == "webhook.signature"


def test_opening_again_under_the_same_key_answers_with_the_same_intent(
    card: CardProvider, peer: FakeCardProvider
) -> None:
    """Given an intent opened and authorized under a key, when the same request is sent again
    under that key (a racer, or a process restarted after it sent the first), then the answer
    names the same intent and the provider holds one."""
    first = card.open(_request("pm_card_visa", key="order:O-1:n:open"))
    again = card.open(_request("pm_card_visa", key="order:O-1:n:open"))
    assert again == first
    assert list(peer.intents) == [first.reference]


def test_providers_check_a_payment_method_before_an_order_is_stored(card: CardProvider) -> None:
    """A card provider takes any token (a bad one fails when the payment opens); an invoice
    takes none; a server without a card provider refuses card orders as UNAVAILABLE."""
    card.check("pm_card_visa")
    InvoiceProvider().check("")
    with pytest.raises(InvalidInput) as refused:
        InvoiceProvider().check("pm_card_visa")
    assert [p.field for p in refused.value.problems] == ["payment_method"]
    with pytest.raises(ProviderUnavailable):
        NoCardProvider().check("")
