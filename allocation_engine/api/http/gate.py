"""Who may call what over HTTP: the same callers, scopes, rate limits and audit trail as gRPC.

Each HTTP route names the gRPC method it stands for (`POST /v1/orders` is
`/allocation.v1.OrderService/PlaceOrder`), so `api.access.METHODS` stays the one table of which
scope a call needs and whether it is audited; the two routes that have no RPC (a POS sale, a
poll started by an operator) are in `HTTP_METHODS`. A caller sends `Authorization: Bearer
<token>` (mTLS callers use gRPC: uvicorn does not hand the client certificate to the app). The
rate-limit buckets are this gate's own: a caller's budget per process per edge.

Webhook routes are not guarded here: a platform authenticates by its own signature instead.
With no registry (`serve` without --auth, loopback only) every route is open, as gRPC is.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from allocation_engine.api.access import METHODS, Rule
from allocation_engine.api.http.errors import code_of
from allocation_engine.ports.access import AuditEntry, AuditLog, Caller, CallerRegistry
from allocation_engine.ports.clock import Clock
from allocation_engine.service.access import acting_as, by_token
from allocation_engine.service.ratelimit import RateLimits, TokenBuckets

log = logging.getLogger("allocation_engine.access")

HTTP_METHODS: dict[str, Rule] = {
    "/allocation.v1.http/RecordSale": Rule("inventory:write", mutating=True),
    "/allocation.v1.http/PollChannel": Rule("orders:manage", mutating=True),
}
"""HTTP routes with no RPC of their own, by a method name in the gRPC table's shape."""


class Refused(Exception):
    """A call the gate turns away: its HTTP status, code name, message and headers."""

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = headers or {}


class HttpGate:
    """Admits callers by token and audits what they change; `open()` admits everyone."""

    def __init__(
        self,
        registry: CallerRegistry | None,
        audit: AuditLog | None,
        clock: Clock,
        limits: RateLimits | None = None,
    ) -> None:
        self._registry, self._audit, self._clock = registry, audit, clock
        self._buckets = TokenBuckets(clock, limits)

    @classmethod
    def open(cls, clock: Clock) -> HttpGate:
        return cls(None, None, clock)

    def check(self, method: str, authorization: str | None) -> Caller | None:
        """The caller of `authorization`, allowed to call `method` now (None: the gate is
        open); else `Refused`: 401 no or unknown token, 403 scope (audited), 429 rate limit
        with Retry-After. Reads no body: a refused call is answered before its body is read."""
        if self._registry is None:
            return None
        rule = self._rule(method)
        caller = self._caller(authorization)
        if caller is None:
            log.warning("unauthenticated HTTP call to %s", method)
            raise Refused(
                401,
                "UNAUTHENTICATED",
                "missing, unknown or revoked token: send 'Authorization: Bearer <token>'",
                {"WWW-Authenticate": "Bearer"},
            )
        if rule is None or rule.scope not in caller.scopes:
            needed = rule.scope if rule else "<none>"
            message = f"caller {caller.name!r} lacks scope {needed!r} for {method}"
            self._write(caller, method, "PERMISSION_DENIED", "", message)
            raise Refused(403, "PERMISSION_DENIED", message)
        wait = self._buckets.take(caller)
        if wait > 0:
            raise Refused(
                429,
                "RESOURCE_EXHAUSTED",
                f"rate limit of caller {caller.name!r}: retry in {wait:.3f} s",
                {"Retry-After": str(max(1, round(wait + 0.5)))},
            )
        return caller

    @contextmanager
    def acting(self, caller: Caller | None, method: str, key: str = "") -> Iterator[None]:
        """Runs the block as `caller` (admitted by `check`), and audits a mutating call with
        the code it ended with."""
        if caller is None:
            yield
            return
        rule = self._rule(method)
        code, detail = "OK", ""
        try:
            with acting_as(caller):
                yield
        except Exception as error:
            code, detail = code_of(error)
            raise
        finally:
            if rule is not None and rule.mutating:
                self._write(caller, method, code, key, detail)

    @contextmanager
    def admit(self, method: str, authorization: str | None, key: str = "") -> Iterator[None]:
        """`check` then `acting`, for a route whose request is all in its path."""
        with self.acting(self.check(method, authorization), method, key):
            yield

    @staticmethod
    def _rule(method: str) -> Rule | None:
        return METHODS.get(method) or HTTP_METHODS.get(method)

    def _caller(self, authorization: str | None) -> Caller | None:
        assert self._registry is not None
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        return by_token(self._registry, token.strip())

    def _write(self, caller: Caller, method: str, code: str, key: str, detail: str) -> None:
        if self._audit is None:
            return
        entry = AuditEntry(self._clock.now(), caller.name, method, code, key, detail)
        try:
            self._audit.append(entry)
        except Exception:
            log.exception("audit write failed; the entry: %r", entry)
