"""Killing a server at an exact instant: a TCP proxy to Redis that SIGKILLs the server instead of
forwarding a chosen command, and `allocation-engine serve` as a real process to kill (see
tests/app/test_inventory_crash.py and test_reroute_crash.py)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from contextlib import suppress
from urllib.parse import urlparse


class KillingProxy:
    """TCP proxy to Redis that SIGKILLs `victim` instead of forwarding the `nth` (0-based)
    client chunk that contains `pattern` (an FCALL's function name)."""

    def __init__(self, redis_url: str) -> None:
        target = urlparse(redis_url)
        self.target = (target.hostname or "127.0.0.1", target.port or 6379)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.lock = threading.Lock()
        self.pattern, self.nth, self.seen = b"", -1, 0
        self.victim: subprocess.Popen[bytes] | None = None
        self.fired = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def arm(self, victim: subprocess.Popen[bytes], pattern: bytes, nth: int) -> None:
        with self.lock:
            self.victim, self.pattern, self.nth, self.seen = victim, pattern, nth, 0
            self.fired.clear()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _fire(self, data: bytes) -> bool:
        with self.lock:
            if self.victim is None or self.fired.is_set() or self.pattern not in data:
                return False
            self.seen += 1
            if self.seen - 1 != self.nth:
                return False
            os.kill(self.victim.pid, signal.SIGKILL)
            self.fired.set()
            return True

    def _pump(self, source: socket.socket, sink: socket.socket, outbound: bool) -> None:
        try:
            while data := source.recv(65536):
                if outbound and self._fire(data):
                    break
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                with suppress(OSError):
                    end.close()

    def close(self) -> None:
        self.listener.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def serve(redis_url: str) -> tuple[subprocess.Popen[bytes], str]:
    """`allocation-engine serve` on a free port; returns once it serves."""
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "allocation_engine.cli",
            "serve",
            "--redis-url",
            redis_url,
            "--port",
            str(port),
            "--no-outbox",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert process.stdout is not None
    line = process.stdout.readline().decode()
    assert "serving on" in line, line
    return process, f"127.0.0.1:{port}"
