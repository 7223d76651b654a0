"""TLS for the server: a certificate and key, and for mTLS the CA that signs client
certificates (clients without one are refused in the handshake)."""

from __future__ import annotations

from pathlib import Path

import grpc

from allocation_engine.errors import FieldProblem, InvalidInput


def _read(field: str, path: str | Path, problems: list[FieldProblem]) -> bytes:
    try:
        data = Path(path).read_bytes()
    except OSError as failed:
        problems.append(FieldProblem(field, str(path), f"cannot be read: {failed.strerror}"))
        return b""
    if b"-----BEGIN" not in data:
        problems.append(FieldProblem(field, str(path), "is not a PEM file"))
    return data


def server_credentials(
    cert: str | Path, key: str | Path, client_ca: str | Path | None = None
) -> grpc.ServerCredentials:
    """TLS credentials from PEM files; with `client_ca`, mTLS: every client must present a
    certificate that CA signed (`require_client_auth`). Unreadable or non-PEM files are one
    `InvalidInput` naming each (tls_cert, tls_key, tls_client_ca)."""
    problems: list[FieldProblem] = []
    chain = _read("tls_cert", cert, problems)
    private = _read("tls_key", key, problems)
    roots = _read("tls_client_ca", client_ca, problems) if client_ca is not None else None
    if problems:
        raise InvalidInput(problems)
    return grpc.ssl_server_credentials(
        [(private, chain)],
        root_certificates=roots,
        require_client_auth=roots is not None,
    )
