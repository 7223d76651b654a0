"""The CRM over HTTP: each message is a JSON POST signed with HMAC-SHA256.

The body is the message as compact JSON (keys sorted); `X-Signature-SHA256` is the hex HMAC-SHA256
of exactly those bytes under the shared secret, so the receiver checks it before it parses
anything, and `Idempotency-Key` is the delivery key (`crm:<order>/<seq>`), which the receiver
dedupes on. Transient failures are retried by `adapters/http_client.py`; a 409 means the
receiver has the message already, which counts as delivered.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable, Mapping
from typing import Any

from allocation_engine.adapters.http_client import HttpClient, RetryPolicy
from allocation_engine.errors import PeerRefused

SIGNATURE_HEADER = "X-Signature-SHA256"


def signature(secret: str, body: bytes) -> str:
    """The hex HMAC-SHA256 of `body` under `secret` (what the receiver recomputes)."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class HttpCrm:
    def __init__(
        self,
        url: str,
        secret: str,
        timeout: float = 10.0,
        *,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not secret:
            raise ValueError("a CRM endpoint needs a signing secret")
        self.url, self._secret = url, secret
        self._http = HttpClient("", timeout=timeout, retry=retry, sleep=sleep)

    def send(self, key: str, message: Mapping[str, Any]) -> None:
        body = json.dumps(message, separators=(",", ":"), sort_keys=True).encode()
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": key,
            SIGNATURE_HEADER: signature(self._secret, body),
        }
        try:
            response = self._http.post(self.url, content=body, headers=headers)
        except PeerRefused as refused:
            if refused.status == 409:  # it has this message already
                return
            raise
        if response.status_code >= 300:  # a redirect: the message did not arrive
            raise PeerRefused(response.status_code, self.url, response.headers.get("location", ""))

    def close(self) -> None:
        self._http.close()
