"""How a client reaches the service: plaintext or TLS, with an API token and, for mTLS, its own
certificate.

One function, `open_client_channel`, so the CLI, the load generator and the tests reach a
production server the same way. The token travels as `authorization: Bearer <token>` metadata on
every call; it is added by a channel interceptor rather than call credentials, because gRPC only
sends call credentials over TLS and a development server on loopback may run without it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc


@dataclass(frozen=True)
class ClientAuth:
    """What a caller presents: a token, the CA that signed the server's certificate (TLS), and a
    client certificate and key (mTLS). All optional: none of them is a plaintext channel."""

    token: str | None = None
    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None
    server_name: str | None = None  # the name the server's certificate holds, if not the host


class _BearerToken(
    grpc.UnaryUnaryClientInterceptor,
    grpc.UnaryStreamClientInterceptor,
    grpc.StreamUnaryClientInterceptor,
    grpc.StreamStreamClientInterceptor,
):
    """Adds `authorization: Bearer <token>` to every call's metadata."""

    def __init__(self, token: str) -> None:
        self._header = ("authorization", f"Bearer {token}")

    def _with_token(self, details: Any) -> Any:
        metadata = [*(details.metadata or ()), self._header]
        return details._replace(metadata=metadata)

    def _call(self, continuation: Callable[..., Any], details: Any, request: Any) -> Any:
        return continuation(self._with_token(details), request)

    # One behaviour for the four kinds; the stubs type each kind's continuation separately.
    intercept_unary_unary = _call  # type: ignore[assignment]
    intercept_unary_stream = _call  # type: ignore[assignment]
    intercept_stream_unary = _call  # type: ignore[assignment]
    intercept_stream_stream = _call  # type: ignore[assignment]


def open_client_channel(
    target: str, auth: ClientAuth | None = None, options: list[tuple[str, Any]] | None = None
) -> grpc.Channel:
    """A channel to `target`: TLS when `auth.ca` is given (mTLS when a cert and key are too),
    with the token on every call when `auth.token` is given."""
    auth = auth or ClientAuth()
    settings = list(options or [])
    if auth.server_name:
        settings.append(("grpc.ssl_target_name_override", auth.server_name))
    if auth.ca is not None:
        credentials = grpc.ssl_channel_credentials(
            root_certificates=auth.ca.read_bytes(),
            private_key=auth.key.read_bytes() if auth.key else None,
            certificate_chain=auth.cert.read_bytes() if auth.cert else None,
        )
        channel = grpc.secure_channel(target, credentials, options=settings)
    else:
        channel = grpc.insecure_channel(target, options=settings)
    if auth.token:
        return grpc.intercept_channel(channel, _BearerToken(auth.token))
    return channel
