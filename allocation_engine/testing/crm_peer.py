"""A local CRM endpoint for tests: a real HTTP server that checks each message's HMAC-SHA256
signature, keeps each message once per `Idempotency-Key`, and can be killed and started again
on the same port, or cut the connection after it read a message (a receiver that died after
accepting, before it answered) so the sender cannot know whether it arrived."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self


class CrmPeer:
    def __init__(self, secret: str, port: int) -> None:
        self.secret, self.port = secret, port
        self.messages: dict[str, Any] = {}  # Idempotency-Key -> the message, kept once
        self.answered: Counter[str] = Counter()  # Idempotency-Key -> 2xx answers given
        self.received: Counter[str] = Counter()  # Idempotency-Key -> requests read (signed)
        self.refused = 0  # bad signatures
        self._cut = 0
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/crm/events"

    def cut_next(self, calls: int) -> None:
        """The next `calls` requests are read and kept, then cut off without an answer."""
        with self._lock:
            self._cut = calls

    def start(self) -> Self:
        peer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                sent = self.headers.get("X-Signature-SHA256", "")
                wanted = hmac.new(peer.secret.encode(), body, hashlib.sha256).hexdigest()
                if not hmac.compare_digest(sent, wanted):
                    with peer._lock:
                        peer.refused += 1
                    self._answer(401)
                    return
                key = self.headers.get("Idempotency-Key", "")
                with peer._lock:
                    peer.messages.setdefault(key, json.loads(body))
                    peer.received[key] += 1
                    cut = peer._cut > 0
                    peer._cut -= 1 if cut else 0
                if cut:
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True
                    return
                with peer._lock:
                    peer.answered[key] += 1
                self._answer(200)

            def _answer(self, status: int) -> None:
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return None

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        self._server = server
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        """Kills the endpoint: nothing listens on its port until `start()`."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
