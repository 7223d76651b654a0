"""Who may call: the registered callers (`Caller`, kept by a `CallerRegistry`) and the trail of
what they changed (`AuditEntry`, written to an `AuditLog`).

A caller is found by the SHA-256 of its API token (the token itself is never stored) or by the
subject of its client certificate (mTLS). Scopes say which RPCs it may call; `channels` and
`nodes` bind it to the sales channels it may place and read orders for and to the nodes it may
confirm shipments of (empty = not bound).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Caller:
    """One registered caller: a shop, a WMS, the ERP, a planner, an operator."""

    id: str
    name: str
    scopes: frozenset[str]
    channels: tuple[str, ...] = ()
    nodes: tuple[str, ...] = ()
    token_hash: str = ""  # hex SHA-256 of the API token; empty = certificate only
    cert_subject: str = ""  # the client certificate's common name or SAN; empty = token only
    rate: float | None = None  # calls per second; None = the server's default
    burst: int | None = None  # bucket size; None = the server's default
    created_at: float = 0.0
    revoked: bool = False


class CallerRegistry(Protocol):
    """The registered callers. Lookups return revoked callers too: the caller of a lookup
    refuses them (so `list` can show them)."""

    def add(self, caller: Caller) -> None:
        """Registers `caller`; a name, token hash or certificate subject already taken is
        `InvalidInput` naming the field."""
        ...

    def by_token_hash(self, token_hash: str) -> Caller | None: ...

    def by_subject(self, subject: str) -> Caller | None: ...

    def revoke(self, name_or_id: str) -> Caller | None:
        """Marks the caller revoked; None when no caller has that name or id."""
        ...

    def callers(self) -> list[Caller]:
        """Every caller, revoked ones included, by name."""
        ...


@dataclass(frozen=True)
class AuditEntry:
    """One mutating call: who, what, under which idempotency key, with which outcome, when."""

    at: float
    caller: str  # the caller's name
    method: str  # the full gRPC method, /allocation.v1.OrderService/PlaceOrder
    code: str  # the status code's name: OK, PERMISSION_DENIED, ...
    idempotency_key: str = ""
    detail: str = ""


class AuditLog(Protocol):
    """An append-only, bounded trail of mutating calls."""

    def append(self, entry: AuditEntry) -> None:
        """Writes the entry or raises (`StoreUnavailable`); never drops it silently."""
        ...

    def recent(self, limit: int = 100) -> list[AuditEntry]:
        """The newest `limit` entries, oldest first."""
        ...
