"""Card payments through a PaymentIntent-style HTTP API (the shape Stripe made common).

  POST /v1/payment_intents               amount, currency, capture_method=manual, metadata,
                                         [payment_method, confirm=true]  -> a PaymentIntent
  POST /v1/payment_intents/{id}/capture  amount_to_capture
  POST /v1/payment_intents/{id}/cancel
  POST /v1/refunds                       payment_intent, amount
  webhooks: payment_intent.amount_capturable_updated (authorized), payment_intent.succeeded
            (captured), payment_intent.payment_failed, signed as `signature.py` describes

Calls go out through the shared `HttpClient`, form-encoded with a bearer key and an
`Idempotency-Key` header. The key is what makes retrying safe: the client retries no connection,
a timeout, 408/425/429 and 5xx (with backoff, waiting what a `Retry-After` asks), sending the same
key every time, and the provider answers a repeat with the first result instead of charging
twice, also when it acted and only its answer was lost. A refusal (any other 4xx) is final and
not retried: a card error (HTTP 402) becomes `PaymentRefused` with the provider's code and message
(or, when opening, a failed `PaymentOpened` naming the declined intent), and so does any other.
No answer, or a 5xx through every attempt, becomes `ProviderUnavailable` (a `PeerUnavailable`):
whether the provider acted is unknown, and the caller retries under the same key.
"""

from __future__ import annotations

import json
import time
import urllib.parse
from collections.abc import Callable
from typing import Any

import httpx

from allocation_engine.adapters.clock import SystemClock
from allocation_engine.adapters.http_client import HttpClient, RetryPolicy
from allocation_engine.adapters.payments.signature import TOLERANCE_SECONDS, verify
from allocation_engine.errors import PaymentRefused, PeerRefused, ProviderUnavailable
from allocation_engine.orders.payments import PaymentEvent, PaymentEventKind
from allocation_engine.ports.clock import Clock
from allocation_engine.ports.payments import PaymentOpened, PaymentRequest

WEBHOOK_EVENTS = {
    "payment_intent.amount_capturable_updated": PaymentEventKind.AUTHORIZED,
    "payment_intent.succeeded": PaymentEventKind.CAPTURED,
    "payment_intent.payment_failed": PaymentEventKind.FAILED,
}


class CardProvider:
    """The card provider at `base_url`. `timeout` bounds each attempt of a call; `retry` says
    how many attempts and how much backoff (the client's default when None), `sleep` how the
    wait between them is spent (tests record it instead of sleeping)."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        webhook_secret: str,
        *,
        timeout: float = 10.0,
        clock: Clock | None = None,
        tolerance: float = TOLERANCE_SECONDS,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._webhook_secret = webhook_secret
        self._clock = clock or SystemClock()
        self._tolerance = tolerance
        self._http = HttpClient(
            self.base_url,
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=timeout,
            retry=retry,
            sleep=sleep,
        )

    def check(self, payment_method: str) -> None:
        """Any card token may be tried: the provider tells a bad one when the payment opens."""

    def open(self, request: PaymentRequest) -> PaymentOpened:
        form = {
            "amount": request.amount,
            "currency": request.currency.lower(),
            "capture_method": "manual",
            "receipt_email": request.email,
            "description": request.description,
            "metadata[order_id]": request.order_id,
        }
        if request.payment_method:
            form |= {"payment_method": request.payment_method, "confirm": "true"}
        try:
            intent = self._post("/v1/payment_intents", form, request.idempotency_key)
        except _CardError as declined:
            if declined.intent is None:
                raise PaymentRefused(declined.code, declined.message) from None
            return PaymentOpened(
                reference=declined.intent["id"],
                client_secret=declined.intent.get("client_secret", ""),
                failure=f"{declined.code}: {declined.message}",
            )
        authorized = intent["amount_capturable"] if intent["status"] == "requires_capture" else 0
        return PaymentOpened(intent["id"], intent.get("client_secret", ""), authorized)

    def capture(self, reference: str, amount: int, idempotency_key: str) -> None:
        self._call(
            f"/v1/payment_intents/{_segment(reference)}/capture",
            {"amount_to_capture": amount},
            idempotency_key,
        )

    def refund(self, reference: str, amount: int, idempotency_key: str) -> str:
        refund = self._call(
            "/v1/refunds", {"payment_intent": reference, "amount": amount}, idempotency_key
        )
        return str(refund["id"])

    def cancel(self, reference: str, idempotency_key: str) -> None:
        self._call(f"/v1/payment_intents/{_segment(reference)}/cancel", {}, idempotency_key)

    def parse_webhook(self, payload: bytes, signature: str) -> PaymentEvent | None:
        verify(payload, signature, self._webhook_secret, self._clock.now(), self._tolerance)
        event = json.loads(payload)
        kind = WEBHOOK_EVENTS.get(event.get("type", ""))
        if kind is None:
            return None
        intent = event["data"]["object"]
        amount = {
            PaymentEventKind.AUTHORIZED: intent.get("amount_capturable", 0),
            PaymentEventKind.CAPTURED: intent.get("amount_received", 0),
            PaymentEventKind.FAILED: 0,
        }[kind]
        error = intent.get("last_payment_error") or {}
        return PaymentEvent(
            kind=kind,
            amount=int(amount),
            reference=intent["id"],
            order_id=intent.get("metadata", {}).get("order_id", ""),
            event_id=event["id"],
            reason=f"{error.get('code', '')}: {error.get('message', '')}" if error else "",
        )

    def close(self) -> None:
        """Closes the connection pool."""
        self._http.close()

    def _call(self, path: str, form: dict[str, Any], idempotency_key: str) -> dict[str, Any]:
        try:
            return self._post(path, form, idempotency_key)
        except _CardError as refused:
            raise PaymentRefused(refused.code, refused.message) from None

    def _post(self, path: str, form: dict[str, Any], idempotency_key: str) -> dict[str, Any]:
        """The provider's answer; `_CardError` for a refusal (4xx), ProviderUnavailable when
        there is none to read (no answer or 5xx through every attempt, or an unreadable one)."""
        try:
            response = self._http.post(
                path,
                data={name: str(value) for name, value in form.items()},
                headers={"Idempotency-Key": idempotency_key},
            )
        except PeerRefused as refused:  # the client read the whole body into `detail`
            if refused.status >= 500:  # a 5xx the client does not retry (501, 505...)
                raise ProviderUnavailable(f"card provider answered {refused.status}") from None
            error = _json(refused.detail).get("error")
            error = error if isinstance(error, dict) else {}
            raise _CardError(
                error.get("code") or error.get("type") or str(refused.status),
                error.get("message", httpx.codes.get_reason_phrase(refused.status)),
                error.get("payment_intent"),
            ) from None
        # PeerUnavailable (no answer, 408/425/429/5xx through every attempt) is a
        # ProviderUnavailable already and goes up as it is.
        answer = _json(response.content) if response.status_code < 300 else {}
        if not answer:  # a redirect, or a body that is no PaymentIntent API answer
            raise ProviderUnavailable(
                f"card provider answered {response.status_code} without a JSON object"
            )
        return answer


class _CardError(Exception):
    """A 4xx answer: the provider understood and refused."""

    def __init__(self, code: str, message: str, intent: dict[str, Any] | None) -> None:
        super().__init__(f"{code}: {message}")
        self.code, self.message, self.intent = code, message, intent


def _segment(reference: str) -> str:
    return urllib.parse.quote(reference, safe="")


def _json(raw: str | bytes) -> dict[str, Any]:
    try:
        parsed = json.loads(raw)
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}
