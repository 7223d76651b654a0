"""Card payments through a PaymentIntent-style HTTP API (the shape Stripe made common).

  POST /v1/payment_intents               amount, currency, capture_method=manual, metadata,
                                         [payment_method, confirm=true]  -> a PaymentIntent
  POST /v1/payment_intents/{id}/capture  amount_to_capture
  POST /v1/payment_intents/{id}/cancel
  POST /v1/refunds                       payment_intent, amount
  webhooks: payment_intent.amount_capturable_updated (authorized), payment_intent.succeeded
            (captured), payment_intent.payment_failed, signed as `signature.py` describes

Requests are form-encoded with a bearer key and an `Idempotency-Key` header, so a retry after a
timeout is answered with the first result instead of charging twice. A card error (HTTP 402)
becomes `PaymentRefused`; no answer, or a 5xx, becomes `ProviderUnavailable`.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from allocation_engine.adapters.clock import SystemClock
from allocation_engine.adapters.payments.signature import TOLERANCE_SECONDS, verify
from allocation_engine.errors import PaymentRefused, ProviderUnavailable
from allocation_engine.orders.payments import PaymentEvent, PaymentEventKind
from allocation_engine.ports.clock import Clock
from allocation_engine.ports.payments import PaymentOpened, PaymentRequest

WEBHOOK_EVENTS = {
    "payment_intent.amount_capturable_updated": PaymentEventKind.AUTHORIZED,
    "payment_intent.succeeded": PaymentEventKind.CAPTURED,
    "payment_intent.payment_failed": PaymentEventKind.FAILED,
}


class CardProvider:
    def __init__(
        self,
        base_url: str,
        api_key: str,
        webhook_secret: str,
        *,
        timeout: float = 10.0,
        clock: Clock | None = None,
        tolerance: float = TOLERANCE_SECONDS,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._webhook_secret = webhook_secret
        self._timeout = timeout
        self._clock = clock or SystemClock()
        self._tolerance = tolerance

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

    def _call(self, path: str, form: dict[str, Any], idempotency_key: str) -> dict[str, Any]:
        try:
            return self._post(path, form, idempotency_key)
        except _CardError as refused:
            raise PaymentRefused(refused.code, refused.message) from None

    def _post(self, path: str, form: dict[str, Any], idempotency_key: str) -> dict[str, Any]:
        request = urllib.request.Request(
            self.base_url + path,
            data=urllib.parse.urlencode(form).encode(),
            method="POST",
            headers={
                "Authorization": f"Bearer {self._api_key}",
                "Idempotency-Key": idempotency_key,
                "Content-Type": "application/x-www-form-urlencoded",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:
                answer: dict[str, Any] = json.loads(response.read())
                return answer
        except urllib.error.HTTPError as failed:
            body = _json(failed.read())
            if failed.code >= 500:
                raise ProviderUnavailable(f"card provider answered {failed.code}") from None
            error = body.get("error", {})
            raise _CardError(
                error.get("code") or error.get("type") or str(failed.code),
                error.get("message", failed.reason),
                error.get("payment_intent"),
            ) from None
        except (urllib.error.URLError, TimeoutError, ConnectionError) as lost:
            raise ProviderUnavailable(f"card provider unreachable: {lost}") from None


class _CardError(Exception):
    """A 4xx answer: the provider understood and refused."""

    def __init__(self, code: str, message: str, intent: dict[str, Any] | None) -> None:
        super().__init__(f"{code}: {message}")
        self.code, self.message, self.intent = code, message, intent


def _segment(reference: str) -> str:
    return urllib.parse.quote(reference, safe="")


def _json(raw: bytes) -> dict[str, Any]:
    try:
        parsed = json.loads(raw)
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}
