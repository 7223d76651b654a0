"""Who may do what: scopes, role presets, API tokens, and the resource checks of the order flow.

Tokens are 32 random bytes (`secrets`, 256 bits) shown once and stored as their SHA-256. A
plain hash is enough here, unlike for passwords: a password is guessable, so it needs a slow,
salted hash; a 256-bit random token is not, so nobody can search the hash space and a fast hash
lets every call look its caller up by the hash at once. Looked-up hashes are compared again with
`hmac.compare_digest`, in constant time.

The caller of the running call is kept in a context variable (`current_caller`) that the gRPC
access interceptor sets; the order servicer reads it for the resource checks below. Without an
access interceptor nothing sets it and the checks let everything through (a development
server); `api.access.production_ready` refuses to start that way.
"""

from __future__ import annotations

import contextvars
import hashlib
import hmac
import re
import secrets
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from allocation_engine.errors import AllocationError, FieldProblem, InvalidInput, NotFound
from allocation_engine.orders.model import OrderRecord
from allocation_engine.ports.access import Caller, CallerRegistry

SCOPES = frozenset(
    {
        "orders:place",
        "orders:read",
        "orders:manage",
        "shipments:confirm",
        "inventory:read",
        "inventory:write",
        "allocate",
        "rules:read",
        "rules:publish",
        "admin",
    }
)

ROLES: dict[str, frozenset[str]] = {
    "shop": frozenset({"orders:place", "orders:read", "inventory:read"}),
    "wms": frozenset({"shipments:confirm", "orders:read", "inventory:read"}),
    "erp": frozenset({"inventory:read", "inventory:write", "orders:read", "orders:manage"}),
    "planner": frozenset({"rules:read", "rules:publish", "inventory:read", "allocate"}),
    "admin": SCOPES,
}
"""Presets; a caller gets its role's scopes plus any named one by one."""

TOKEN_PREFIX = "ae_"
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class AccessDenied(AllocationError):
    """The caller may call this method but not on this resource (another channel, another
    node); answered PERMISSION_DENIED by the access interceptor."""


def hash_token(token: str) -> str:
    """Hex SHA-256 of a token (see the module docstring for why a fast hash is right)."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    """A fresh API token: a prefix to spot it in a leak scan, and 256 random bits."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


@dataclass(frozen=True)
class Issued:
    """A registered caller and, for a token caller, its token (shown once, never stored)."""

    caller: Caller
    token: str | None


def register(
    registry: CallerRegistry,
    *,
    name: str,
    role: str | None = None,
    scopes: Iterable[str] = (),
    channels: Iterable[str] = (),
    nodes: Iterable[str] = (),
    cert_subject: str = "",
    rate: float | None = None,
    burst: int | None = None,
    now: float = 0.0,
    with_token: bool = True,
) -> Issued:
    """Registers a caller; every bad argument is named in one `InvalidInput`. A shop is bound
    to at least one channel and a WMS to at least one node."""
    problems: list[FieldProblem] = []
    if not NAME.match(name):
        problems.append(FieldProblem("name", name, "must be 1-64 of A-Z a-z 0-9 . _ -"))
    granted: set[str] = set()
    if role is not None:
        if role in ROLES:
            granted |= ROLES[role]
        else:
            problems.append(FieldProblem("role", role, f"must be one of {sorted(ROLES)}"))
    for scope in scopes:
        if scope in SCOPES:
            granted.add(scope)
        else:
            problems.append(FieldProblem("scope", scope, f"must be one of {sorted(SCOPES)}"))
    if not granted and role is None:
        problems.append(FieldProblem("role", None, "give a role or at least one scope"))
    channel_list, node_list = tuple(dict.fromkeys(channels)), tuple(dict.fromkeys(nodes))
    if role == "shop" and not channel_list:
        problems.append(FieldProblem("channel", None, "a shop is bound to at least one channel"))
    if role == "wms" and not node_list:
        problems.append(FieldProblem("node", None, "a WMS is bound to at least one node"))
    if rate is not None and not 0 < rate <= 1e6:
        problems.append(FieldProblem("rate", rate, "must be in (0, 1e6] calls per second"))
    if burst is not None and not 1 <= burst <= 1_000_000:
        problems.append(FieldProblem("burst", burst, "must be in [1, 1000000]"))
    if not with_token and not cert_subject:
        problems.append(FieldProblem("cert_subject", "", "a caller without a token needs one"))
    if problems:
        raise InvalidInput(problems)
    token = new_token() if with_token else None
    caller = Caller(
        id=uuid.uuid4().hex[:12],
        name=name,
        scopes=frozenset(granted),
        channels=channel_list,
        nodes=node_list,
        token_hash=hash_token(token) if token else "",
        cert_subject=cert_subject,
        rate=rate,
        burst=burst,
        created_at=now,
    )
    registry.add(caller)
    return Issued(caller, token)


def by_token(registry: CallerRegistry, token: str) -> Caller | None:
    """The live caller holding `token`, or None (unknown or revoked)."""
    digest = hash_token(token)
    caller = registry.by_token_hash(digest)
    if caller is None or caller.revoked or not hmac.compare_digest(caller.token_hash, digest):
        return None
    return caller


def by_subjects(registry: CallerRegistry, subjects: Iterable[str]) -> Caller | None:
    """The live caller registered for the first of a certificate's names that has one."""
    for subject in subjects:
        caller = registry.by_subject(subject)
        if caller is not None and not caller.revoked:
            return caller
    return None


# --- the caller of the running call -------------------------------------------------------

_current: contextvars.ContextVar[Caller | None] = contextvars.ContextVar(
    "allocation_caller", default=None
)


def current_caller() -> Caller | None:
    """The caller of the running call (None when no access interceptor runs)."""
    return _current.get()


@contextmanager
def acting_as(caller: Caller) -> Iterator[None]:
    """Runs the block as `caller` (the interceptor wraps each call in this)."""
    token = _current.set(caller)
    try:
        yield
    finally:
        _current.reset(token)


# --- resource checks ------------------------------------------------------------------------


def check_channel(caller: Caller | None, channel: str) -> None:
    """A caller bound to channels places orders only for them (else AccessDenied)."""
    if caller is not None and caller.channels and channel not in caller.channels:
        raise AccessDenied(
            f"channel={channel!r}: caller {caller.name!r} may act only for channels "
            f"{list(caller.channels)}"
        )


def sees(caller: Caller | None, record: OrderRecord) -> bool:
    """Whether the caller may see the order at all (its channel is the caller's)."""
    return caller is None or not caller.channels or record.channel in caller.channels


def check_visible(caller: Caller | None, record: OrderRecord) -> None:
    """Another channel's order is NOT_FOUND to a channel-bound caller: it does not learn that
    the id exists (PERMISSION_DENIED would tell it)."""
    if not sees(caller, record):
        raise NotFound("order_id", record.id)


def check_node(caller: Caller | None, node_id: str) -> None:
    """A caller bound to nodes acts only for them (else AccessDenied)."""
    if caller is not None and caller.nodes and node_id not in caller.nodes:
        raise AccessDenied(
            f"node_id={node_id!r}: caller {caller.name!r} may act only for nodes "
            f"{list(caller.nodes)}"
        )


def check_shipment(caller: Caller | None, record: OrderRecord, shipment_id: str) -> None:
    """A caller bound to nodes records shipments only of its nodes. An unknown shipment id is
    left to the flow, which answers NOT_FOUND naming it."""
    for shipment in record.shipments:
        if shipment.id == shipment_id:
            check_node(caller, shipment.node_id)
