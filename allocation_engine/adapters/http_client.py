"""The one way out over HTTP: every call to a shop, a marketplace, the card provider or a WMS.

An `HttpClient` keeps one connection pool per peer (httpx), puts a timeout on every call, and
retries what a retry can fix: no connection, a timeout, 408, 425, 429 and 5xx, with exponential
backoff and jitter (tenacity), waiting what the peer's `Retry-After` asks for where it says so
(capped, so a peer cannot park a dispatcher thread for an hour). After `attempts` tries it raises
`PeerUnavailable`; a final refusal (any other 4xx) raises `PeerRefused` at once, with the
peer's answer quoted short.

Retrying a POST is only safe when the peer deduplicates it, so callers send an idempotency key
(a header, or an id in the body the platform dedupes on); the adapters document which.
"""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import tenacity

from allocation_engine.errors import PeerRefused, PeerUnavailable

RETRIED_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try: `attempts` in all, backoff from `initial` doubling to `maximum`
    seconds, a peer's Retry-After honoured up to `max_retry_after` seconds."""

    attempts: int = 4
    initial: float = 0.2
    maximum: float = 5.0
    max_retry_after: float = 30.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"attempts={self.attempts}: at least 1")


class _Retryable(Exception):
    """An answer worth another try; carries the response for Retry-After and the last error."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__(f"{response.request.url} answered {response.status_code}")
        self.response = response


def retry_after(response: httpx.Response) -> float | None:
    """Seconds the peer asked us to wait (`Retry-After` as seconds or an HTTP date), or None."""
    value = response.headers.get("retry-after", "").strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class HttpClient:
    """Calls one peer at `base_url`; `headers` go on every request (an API key, a user agent)."""

    def __init__(
        self,
        base_url: str,
        *,
        headers: Mapping[str, str] | None = None,
        timeout: float = 10.0,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        wait_of: Callable[[httpx.Response], float | None] = retry_after,
    ) -> None:
        """`wait_of`: how long a retryable answer asks us to wait (None: the backoff decides);
        `Retry-After` by default, a platform's own throttle header where it sends one."""
        self.base_url = base_url.rstrip("/")
        self.retry = retry or RetryPolicy()
        self._wait_of = wait_of
        self._client = httpx.Client(
            base_url=self.base_url, headers=dict(headers or {}), timeout=timeout
        )
        self._sleep = sleep

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        data: Mapping[str, str] | None = None,
        content: bytes | None = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """The peer's 2xx (or 3xx) answer, after the retries the policy allows."""
        policy = self.retry

        def wait(state: tenacity.RetryCallState) -> float:
            backoff = min(policy.maximum, policy.initial * 2.0 ** (state.attempt_number - 1))
            error = state.outcome.exception() if state.outcome else None
            asked = self._wait_of(error.response) if isinstance(error, _Retryable) else None
            if asked is not None:
                return min(asked, policy.max_retry_after)
            return backoff / 2 + random.uniform(0, backoff / 2)  # jitter spreads the retries

        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(policy.attempts),
            wait=wait,
            retry=tenacity.retry_if_exception_type((_Retryable, httpx.TransportError)),
            sleep=self._sleep,
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    response = self._client.request(
                        method,
                        path,
                        json=json,
                        data=data,
                        content=content,
                        params=params,
                        headers=headers,
                    )
                    if response.status_code in RETRIED_STATUSES:
                        raise _Retryable(response)
        except _Retryable as last:
            raise PeerUnavailable(
                f"{method} {self.base_url}{path}: {last.response.status_code} after "
                f"{policy.attempts} attempts"
            ) from last
        except httpx.TransportError as down:
            raise PeerUnavailable(
                f"{method} {self.base_url}{path}: {type(down).__name__} after "
                f"{policy.attempts} attempts"
            ) from down
        if response.status_code >= 400:
            raise PeerRefused(response.status_code, f"{self.base_url}{path}", response.text)
        return response

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("PUT", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("PATCH", path, **kwargs)

    def close(self) -> None:
        self._client.close()
