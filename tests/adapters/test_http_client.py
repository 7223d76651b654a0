"""The one outgoing HTTP client: what it retries, how long it waits, what it gives up on."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from allocation_engine.adapters.channels.amazon import rate_limit_wait
from allocation_engine.adapters.http_client import HttpClient, RetryPolicy
from allocation_engine.errors import PeerRefused, PeerUnavailable
from allocation_engine.testing.http_peer import HttpPeer, PeerRequest

POLICY = RetryPolicy(attempts=3, initial=0.2, maximum=1.0, max_retry_after=5.0)


class Throttling(HttpPeer):
    """Answers 429 with the given headers `times` times, then 200."""

    def __init__(self, times: int, headers: dict[str, str]) -> None:
        super().__init__()
        self.left, self.headers = times, headers
        self.route("GET", "/thing", self._thing)

    def _thing(self, request: PeerRequest) -> tuple[int, object, dict[str, str]]:
        if self.left > 0:
            self.left -= 1
            return 429, {"error": "throttled"}, self.headers
        return 200, {"ok": True}, {}


@pytest.fixture
def waits() -> list[float]:
    return []


def client(peer: HttpPeer, waits: list[float], **kwargs: object) -> HttpClient:
    return HttpClient(peer.url, retry=POLICY, sleep=waits.append, **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def peer() -> Iterator[Throttling]:
    running = Throttling(2, {"Retry-After": "0.75"}).start()
    yield running
    running.stop()


def test_retry_after_is_the_wait(peer: Throttling, waits: list[float]) -> None:
    """Given two 429s asking for 0.75 s, then the client waits exactly that twice and gets the
    answer on the third try."""
    assert client(peer, waits).get("/thing").json() == {"ok": True}
    assert waits == [0.75, 0.75]


def test_a_platform_wait_hook_replaces_retry_after(waits: list[float]) -> None:
    """Given Amazon's 429 with x-amzn-RateLimit-Limit 2 (requests per second) and no
    Retry-After, then the SP-API hook waits one request's worth, 0.5 s; without the hook the
    client falls back to its jittered backoff."""
    amazon = Throttling(1, {"x-amzn-RateLimit-Limit": "2.0"}).start()
    try:
        client(amazon, waits, wait_of=rate_limit_wait).get("/thing")
        assert waits == [0.5]
        amazon.left = 1
        waits.clear()
        client(amazon, waits).get("/thing")
        assert len(waits) == 1 and 0.1 <= waits[0] <= 0.2
    finally:
        amazon.stop()
    assert rate_limit_wait(httpx.Response(429, headers={"x-amzn-RateLimit-Limit": "x"})) is None
    assert rate_limit_wait(httpx.Response(429, headers={"Retry-After": "3"})) == 3.0


def test_a_long_retry_after_is_capped(waits: list[float]) -> None:
    """Given a peer asking to wait an hour, then the client waits at most the policy's cap."""
    slow = Throttling(1, {"Retry-After": "3600"}).start()
    try:
        client(slow, waits).get("/thing")
        assert waits == [5.0]
    finally:
        slow.stop()


def test_giving_up_and_refusals(waits: list[float]) -> None:
    """Given a peer throttling past every attempt, then PeerUnavailable after 3 tries and 2
    waits; given a 404, PeerRefused at once with the status and no wait; given nobody
    listening, PeerUnavailable."""
    stubborn = Throttling(10, {"Retry-After": "0.1"}).start()
    try:
        with pytest.raises(PeerUnavailable, match="429 after 3 attempts"):
            client(stubborn, waits).get("/thing")
        assert waits == [0.1, 0.1]
        waits.clear()
        with pytest.raises(PeerRefused) as refused:
            client(stubborn, waits).get("/nothing-here")
        assert refused.value.status == 404 and waits == []
        url = stubborn.url
    finally:
        stubborn.stop()
    with pytest.raises(PeerUnavailable):
        HttpClient(url, retry=POLICY, sleep=waits.append).get("/thing")
