"""Serving the HTTP edge in the server process, on uvicorn, in a thread of its own.

The socket is bound when the `HttpServer` is made, before anything else starts (like the gRPC
port): a port another process holds raises `PortInUse` at once, and port 0 picks a free one.
TLS uses the same certificate and key as gRPC; with a client CA, clients must present a
certificate it signed (mTLS at the handshake; callers are still admitted by token, see
`api.http.gate`).
"""

from __future__ import annotations

import socket
import ssl
import threading
import time

import uvicorn
from fastapi import FastAPI

from allocation_engine.api.server import PortInUse


class HttpServer:
    def __init__(
        self,
        app: FastAPI,
        host: str = "127.0.0.1",
        port: int = 8080,
        *,
        tls_cert: str | None = None,
        tls_key: str | None = None,
        tls_client_ca: str | None = None,
        reuse_port: bool = False,
    ) -> None:
        """`reuse_port`: share the port with the other server processes (`serve --workers`),
        as the gRPC port is shared; the kernel spreads connections over them."""
        family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
        # IPPROTO_TCP spelled out: asyncio turns Nagle off (TCP_NODELAY) only on sockets whose
        # proto says TCP, and with Nagle on every keep-alive answer waited 40 ms for an ACK.
        self._socket = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        try:
            self._socket.bind((host.strip("[]"), port))
        except OSError as taken:
            self._socket.close()
            raise PortInUse(f"{host}:{port}") from taken
        self._socket.listen(128)
        self.port = self._socket.getsockname()[1]
        self.tls = bool(tls_cert and tls_key)
        host_part = f"[{host.strip('[]')}]" if family == socket.AF_INET6 else host
        self.url = f"{'https' if self.tls else 'http'}://{host_part}:{self.port}"
        config = uvicorn.Config(
            app,
            log_level="warning",
            lifespan="off",
            ssl_certfile=tls_cert if self.tls else None,
            ssl_keyfile=tls_key if self.tls else None,
            ssl_ca_certs=tls_client_ca if self.tls else None,
            ssl_cert_reqs=ssl.CERT_REQUIRED if self.tls and tls_client_ca else ssl.CERT_NONE,
            timeout_graceful_shutdown=5,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True, name="http"
        )

    def start(self, wait_seconds: float = 10.0) -> HttpServer:
        """Serves in the background; returns once uvicorn is accepting."""
        self._thread.start()
        deadline = time.monotonic() + wait_seconds
        while not self._server.started and self._thread.is_alive():
            if time.monotonic() > deadline:
                raise RuntimeError(f"the HTTP edge did not start within {wait_seconds} s")
            time.sleep(0.01)
        return self

    def stop(self, grace: float = 5.0) -> None:
        """Finishes requests in flight (up to `grace` seconds), then closes the socket."""
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(grace + 1)
        self._socket.close()
