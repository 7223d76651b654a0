"""A local TEST PEER that speaks the PaymentIntent-style card API `card.py` uses.

It is not a payment provider and moves no money. It exists so the card adapter is tested over
real HTTP against the wire format it must speak (form-encoded requests, bearer key,
Idempotency-Key replay, 402 card errors, signed webhooks), and so the demo server can take card
orders without a provider account. Test payment methods:

  pm_card_visa            authorizes (requires_capture)
  pm_card_chargeDeclined  declined: 402 card_error/card_declined, intent back to
                          requires_payment_method with last_payment_error

State changes are also sent as signed webhooks to `webhook_url` when one is set (in a
background thread, like a provider's delivery queue), and listed under GET /v1/events.
"""

from __future__ import annotations

import itertools
import json
import secrets
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from allocation_engine.adapters.payments.signature import HEADER, sign

DECLINING = {"pm_card_chargeDeclined": ("card_declined", "Your card was declined.")}
AUTHORIZING = {"pm_card_visa"}


class _Refused(Exception):
    def __init__(self, status: int, kind: str, code: str, message: str, intent: Any = None):
        super().__init__(message)
        self.status, self.kind, self.code, self.message, self.intent = (
            status,
            kind,
            code,
            message,
            intent,
        )


class FakeCardProvider:
    """Start with `start()`, point `CardProvider` at `url`, stop with `stop()`."""

    def __init__(
        self,
        api_key: str = "sk_test_local",
        webhook_secret: str = "whsec_local",
        webhook_url: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.api_key, self.webhook_secret, self.webhook_url = api_key, webhook_secret, webhook_url
        self.intents: dict[str, dict[str, Any]] = {}
        self.refunds: dict[str, dict[str, Any]] = {}
        self.events: list[dict[str, Any]] = []
        self.requests = 0  # every API request, replays included
        self._replies: dict[str, tuple[str, int, dict[str, Any]]] = {}
        self._ids = itertools.count(1)
        self._lock = threading.RLock()
        self._server = ThreadingHTTPServer((host, port), self._handler())
        self._server.daemon_threads = True
        self.url = f"http://{host}:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> FakeCardProvider:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    # the API

    def dispatch(self, method: str, path: str, form: dict[str, str], key: str) -> tuple[int, Any]:
        """Answers one request (the HTTP handler calls this); replays keyed POSTs."""
        with self._lock:
            self.requests += 1
            request_id = f"{method} {path} {sorted(form.items())}"
            if method == "POST" and key in self._replies:
                first, status, body = self._replies[key]
                if first != request_id:
                    return 400, _error(
                        "idempotency_error", "idempotency_key_in_use", "Keys are for one request."
                    )
                return status, body
            try:
                status, body = 200, self._route(method, path, form)
            except _Refused as refused:
                error = {"type": refused.kind, "code": refused.code, "message": refused.message}
                if refused.intent is not None:
                    error["payment_intent"] = refused.intent
                status, body = refused.status, {"error": error}
            if method == "POST" and key:
                self._replies[key] = (request_id, status, body)
            return status, body

    def _route(self, method: str, path: str, form: dict[str, str]) -> dict[str, Any]:
        parts = path.strip("/").split("/")
        match method, parts:
            case "POST", ["v1", "payment_intents"]:
                return self._create(form)
            case "GET", ["v1", "payment_intents", intent_id]:
                return self._intent(intent_id)
            case "POST", ["v1", "payment_intents", intent_id, "confirm"]:
                return self._confirm(self._intent(intent_id), form.get("payment_method", ""))
            case "POST", ["v1", "payment_intents", intent_id, "capture"]:
                return self._capture(self._intent(intent_id), form)
            case "POST", ["v1", "payment_intents", intent_id, "cancel"]:
                return self._cancel(self._intent(intent_id))
            case "POST", ["v1", "refunds"]:
                return self._refund(form)
            case "GET", ["v1", "events"]:
                return {"object": "list", "data": list(reversed(self.events))}
        raise _Refused(404, "invalid_request_error", "resource_missing", f"no route {path}")

    def _create(self, form: dict[str, str]) -> dict[str, Any]:
        amount = _positive(form, "amount")
        intent_id = f"pi_{next(self._ids):06d}{secrets.token_hex(4)}"
        intent = {
            "id": intent_id,
            "object": "payment_intent",
            "amount": amount,
            "amount_capturable": 0,
            "amount_received": 0,
            "amount_refunded": 0,
            "currency": form.get("currency", "eur"),
            "capture_method": form.get("capture_method", "automatic"),
            "client_secret": f"{intent_id}_secret_{secrets.token_hex(8)}",
            "status": "requires_payment_method",
            "metadata": {
                k[len("metadata[") : -1]: v for k, v in form.items() if k.startswith("metadata[")
            },
            "last_payment_error": None,
        }
        self.intents[intent_id] = intent
        if form.get("confirm") == "true":
            return self._confirm(intent, form.get("payment_method", ""))
        return dict(intent)

    def _confirm(self, intent: dict[str, Any], method: str) -> dict[str, Any]:
        if intent["status"] not in ("requires_payment_method", "requires_confirmation"):
            raise _Refused(400, "invalid_request_error", "payment_intent_unexpected_state", "")
        if method in DECLINING:
            code, message = DECLINING[method]
            intent["last_payment_error"] = {"type": "card_error", "code": code, "message": message}
            self._emit("payment_intent.payment_failed", intent)
            raise _Refused(402, "card_error", code, message, dict(intent))
        if method not in AUTHORIZING:
            raise _Refused(400, "invalid_request_error", "resource_missing", f"no {method!r}")
        intent["last_payment_error"] = None
        if intent["capture_method"] == "manual":
            intent |= {"status": "requires_capture", "amount_capturable": intent["amount"]}
            self._emit("payment_intent.amount_capturable_updated", intent)
        else:
            intent |= {"status": "succeeded", "amount_received": intent["amount"]}
            self._emit("payment_intent.succeeded", intent)
        return dict(intent)

    def _capture(self, intent: dict[str, Any], form: dict[str, str]) -> dict[str, Any]:
        if intent["status"] != "requires_capture":
            raise _Refused(
                400, "invalid_request_error", "payment_intent_unexpected_state", intent["status"]
            )
        amount = _positive(form, "amount_to_capture", intent["amount_capturable"])
        if amount > intent["amount_capturable"]:
            raise _Refused(400, "invalid_request_error", "amount_too_large", "above capturable")
        intent |= {"status": "succeeded", "amount_received": amount, "amount_capturable": 0}
        self._emit("payment_intent.succeeded", intent)
        return dict(intent)

    def _cancel(self, intent: dict[str, Any]) -> dict[str, Any]:
        if intent["status"] in ("succeeded", "canceled"):
            raise _Refused(
                400, "invalid_request_error", "payment_intent_unexpected_state", intent["status"]
            )
        intent |= {"status": "canceled", "amount_capturable": 0}
        self._emit("payment_intent.canceled", intent)
        return dict(intent)

    def _refund(self, form: dict[str, str]) -> dict[str, Any]:
        intent = self._intent(form.get("payment_intent", ""))
        left = intent["amount_received"] - intent["amount_refunded"]
        amount = _positive(form, "amount", left)
        if intent["status"] != "succeeded" or amount > left:
            raise _Refused(400, "invalid_request_error", "amount_too_large", f"{left} refundable")
        intent["amount_refunded"] += amount
        refund = {
            "id": f"re_{next(self._ids):06d}",
            "object": "refund",
            "amount": amount,
            "payment_intent": intent["id"],
            "status": "succeeded",
        }
        self.refunds[refund["id"]] = refund
        self._emit("charge.refunded", intent)
        return refund

    def _intent(self, intent_id: str) -> dict[str, Any]:
        intent = self.intents.get(intent_id)
        if intent is None:
            raise _Refused(404, "invalid_request_error", "resource_missing", intent_id)
        return intent

    # webhooks

    def _emit(self, type_: str, intent: dict[str, Any]) -> None:
        event = {
            "id": f"evt_{next(self._ids):06d}",
            "object": "event",
            "type": type_,
            "created": int(time.time()),
            "data": {"object": dict(intent)},
        }
        self.events.append(event)
        if self.webhook_url:
            threading.Thread(target=self._deliver, args=(event,), daemon=True).start()

    def _deliver(self, event: dict[str, Any]) -> None:
        payload = json.dumps(event).encode()
        assert self.webhook_url is not None
        request = urllib.request.Request(
            self.webhook_url,
            data=payload,
            method="POST",
            headers={
                "Content-Type": "application/json",
                HEADER: sign(payload, self.webhook_secret, int(time.time())),
            },
        )
        for attempt in range(5):  # providers retry failed deliveries
            try:
                with urllib.request.urlopen(request, timeout=5):
                    return
            except OSError:
                time.sleep(0.2 * 2**attempt)

    # HTTP

    def _handler(self) -> Callable[..., BaseHTTPRequestHandler]:
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self._answer("GET", {})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode()
                self._answer("POST", dict(urllib.parse.parse_qsl(raw, keep_blank_values=True)))

            def _answer(self, method: str, form: dict[str, str]) -> None:
                if self.headers.get("Authorization") != f"Bearer {provider.api_key}":
                    status, body = (
                        401,
                        _error("invalid_request_error", "api_key_invalid", "Invalid API key."),
                    )
                else:
                    path = urllib.parse.urlsplit(self.path).path
                    key = self.headers.get("Idempotency-Key", "")
                    status, body = provider.dispatch(method, path, form, key)
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: tests and the demo print what matters themselves."""

        return Handler


def _error(kind: str, code: str, message: str) -> dict[str, Any]:
    return {"error": {"type": kind, "code": code, "message": message}}


def _positive(form: dict[str, str], name: str, default: int | None = None) -> int:
    raw = form.get(name)
    if raw is None and default is not None:
        return default
    try:
        value = int(raw or "")
    except ValueError:
        value = 0
    if value <= 0:
        raise _Refused(400, "invalid_request_error", "parameter_invalid_integer", name)
    return value
