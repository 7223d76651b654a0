"""A bearer token minted from a longer-lived secret and kept until shortly before it expires.

Shopware (client credentials), Amazon (Login with Amazon's refresh-token grant, and the
Restricted Data Token) and eBay (refresh-token grant) each hand out an access token that lives
minutes to an hour. Minting one per call would spend the platform's rate limit on the token
endpoint, so `TokenCache` keeps it: a new one is minted when there is none, `margin` seconds
before its lifetime ends (a token that runs out while a request is on its way is refused), and
on demand after the platform answered 401 (a token revoked or rotated early). One caller mints
at a time, under a lock, so the poller and the confirmer of one channel share one token. How to
mint, and how long a token lives when the platform does not say, are each platform's own.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TypeVar

from allocation_engine.errors import PeerRefused

T = TypeVar("T")


class TokenCache:
    """One platform token; `issue()` mints a new one as (token, lifetime in seconds)."""

    def __init__(self, issue: Callable[[], tuple[str, float]], margin: float) -> None:
        self._issue = issue
        self._margin = margin
        self._value = ""
        self._until = 0.0
        self._lock = threading.Lock()

    def get(self, *, renew: bool = False) -> str:
        """The token, minted anew when there is none, when it is about to expire, or `renew`."""
        with self._lock:
            if renew or not self._value or time.monotonic() >= self._until:
                self._value, lifetime = self._issue()
                self._until = time.monotonic() + max(0.0, lifetime - self._margin)
            return self._value

    def authorized(self, send: Callable[[str], T]) -> T:
        """`send(token)`; when the platform answers that 401, once more with a new token (a 401
        of the token endpoint itself, wrong credentials, is final)."""
        token = self.get()
        try:
            return send(token)
        except PeerRefused as refused:
            if refused.status != 401:
                raise
        return send(self.get(renew=True))
