"""The base of every local platform peer: a real HTTP server on a free port that a test (or
the demo) points a channel adapter at, because Shopify, Amazon and the rest cannot be reached.

A peer subclass registers routes (`route("POST", "/admin/api/2024-10/orders/{id}/x.json")`)
whose handlers get a `PeerRequest` and answer `(status, json body[, headers])`. Every request is
kept in `requests` so a test can read what our adapter sent, in the platform's format. `down()`
makes the peer answer 503 to everything (a platform outage mid-poll) and `up()` heals it;
`throttle(n)` answers the next n calls 429 with Retry-After, as rate-limited APIs do.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit


@dataclass
class PeerRequest:
    """One request as the peer received it (headers keyed lower-case)."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    params: dict[str, str] = field(default_factory=dict)  # from the route's {placeholders}

    def json(self) -> Any:
        return json.loads(self.body or b"null")

    def arg(self, name: str, default: str = "") -> str:
        values = self.query.get(name)
        return values[0] if values else default


Answer = tuple[int, Any] | tuple[int, Any, Mapping[str, str]]
Handler = Callable[[PeerRequest], Answer]


class HttpPeer:
    """Start with `start()` (binds 127.0.0.1 on a free port), read `url`, stop with `stop()`."""

    def __init__(self) -> None:
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []
        self.requests: list[PeerRequest] = []
        self._lock = threading.Lock()
        self._down = False
        self._throttled = 0
        self._server: ThreadingHTTPServer | None = None

    # --- routes ----------------------------------------------------------------------------

    def route(self, method: str, template: str, handler: Handler) -> None:
        """Answers `method template` with `handler`; `{name}` in the template matches one
        path segment and arrives in `request.params`."""
        pattern = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template))
        self._routes.append((method, re.compile(f"^{pattern}$"), handler))

    def down(self) -> None:
        self._down = True

    def up(self) -> None:
        self._down = False

    def throttle(self, calls: int) -> None:
        with self._lock:
            self._throttled = calls

    def received(self, method: str, path_pattern: str) -> list[PeerRequest]:
        """The requests whose method matches and whose path matches the regex."""
        with self._lock:
            return [
                r for r in self.requests if r.method == method and re.search(path_pattern, r.path)
            ]

    # --- lifecycle ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        assert self._server is not None, "start() the peer first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> Self:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        """Stops serving; safe to call twice or from two threads."""
        with self._lock:
            server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()

    # --- dispatch ----------------------------------------------------------------------------

    def _dispatch(self, request: PeerRequest) -> Answer:
        with self._lock:
            self.requests.append(request)
            if self._down:
                return 503, {"error": "peer is down"}
            if self._throttled > 0:
                self._throttled -= 1
                return 429, {"error": "rate limited"}, {"Retry-After": "0.05"}
        for method, pattern, handler in self._routes:
            found = pattern.match(request.path)
            if method == request.method and found:
                request.params = found.groupdict()
                return handler(request)
        return 404, {"error": f"no route {request.method} {request.path}"}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        peer = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                request = PeerRequest(
                    self.command,
                    parts.path,
                    parse_qs(parts.query),
                    {k.lower(): v for k, v in self.headers.items()},
                    body,
                )
                answer = peer._dispatch(request)
                status, payload = answer[0], answer[1]
                extra: Mapping[str, str] = answer[2] if len(answer) > 2 else {}
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in extra.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: tests read `requests` instead."""

        return Handler
