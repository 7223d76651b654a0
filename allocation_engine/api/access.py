"""Who may call what, at the gRPC edge: authentication, scopes, rate limits and the audit trail.

`METHODS` is the one table: every RPC of every service maps to the scope it requires (and
whether it changes anything). A method not in the table is refused to everyone, so an RPC added
to a .proto without an entry is closed, and a test fails on it. `OPEN` methods (health) need no
caller at all.

`AccessInterceptor` (built by `build_access`) runs inside `ErrorInterceptor` and outside the
bounds check. It swaps the method's request deserializer for the raw bytes, so a refused call is
answered before its request is decoded; the only store read before that is the caller's lookup:

1. the caller: `authorization: Bearer <token>` metadata (SHA-256 looked up, compared in constant
   time), else the client certificate's common name or SAN names (mTLS) mapped to a registered
   subject; none, unknown or revoked -> UNAUTHENTICATED;
2. the method's scope -> else PERMISSION_DENIED;
3. one token of the caller's bucket (per server process) -> else RESOURCE_EXHAUSTED with a
   google.rpc.RetryInfo detail and "retry in N s" in the message;
4. then the request is decoded and the call runs as the caller (`service.access.acting_as`), so
   the order servicer can check channels and nodes; its `AccessDenied` is PERMISSION_DENIED.

Every mutating call is written to the `AuditLog`: caller, method, idempotency key (from the
decoded request), status code, time; a mutating call refused PERMISSION_DENIED is written too
(UNAUTHENTICATED and RESOURCE_EXHAUSTED are only logged: writing them would let anyone fill the
store, which the limit exists to protect). An audit write that fails does not change the
answer (the change is already made; failing the call would invite a retry of a done call): it
is logged at ERROR with the whole entry, so the log keeps the trail, and counted in
`AccessInterceptor.audit_failures`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

import grpc
from google.protobuf import duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from allocation_engine.api.errors import Undecodable, status_for
from allocation_engine.api.handlers import Behavior, rewrapped
from allocation_engine.ports.access import AuditEntry, AuditLog, Caller, CallerRegistry
from allocation_engine.ports.clock import Clock
from allocation_engine.service.access import (
    AccessDenied,
    acting_as,
    by_subjects,
    by_token,
    register,
)
from allocation_engine.service.ratelimit import RateLimits, TokenBuckets

log = logging.getLogger("allocation_engine.access")


@dataclass(frozen=True)
class Rule:
    """What a method requires: a scope, and whether a call changes anything (audited)."""

    scope: str
    mutating: bool


def _service(name: str, **methods: Rule) -> dict[str, Rule]:
    return {f"/{name}/{method}": rule for method, rule in methods.items()}


def _r(scope: str) -> Rule:
    return Rule(scope, mutating=False)


def _w(scope: str) -> Rule:
    return Rule(scope, mutating=True)


METHODS: dict[str, Rule] = {
    **_service(
        "allocation.v1.AllocationService",
        Allocate=_r("allocate"),
        Reserve=_w("allocate"),
        CommitReservation=_w("allocate"),
        ReleaseReservation=_w("allocate"),
        GetReservation=_r("allocate"),
    ),
    **_service("allocation.v1.PromiseService", GetDeliveryOptions=_r("allocate")),
    **_service(
        "allocation.v1.InventoryService",
        UpsertNodes=_w("inventory:write"),
        ListNodes=_r("inventory:read"),
        ApplySnapshot=_w("inventory:write"),
        AdjustInventory=_w("inventory:write"),
        GetAvailability=_r("inventory:read"),
        PutSupply=_w("inventory:write"),
        ListSupply=_r("inventory:read"),
        ReceiveSupply=_w("inventory:write"),
        ReviseSupply=_w("inventory:write"),
        GetAvailableToPromise=_r("inventory:read"),
    ),
    **_service(
        "allocation.v1.RulesService",
        GetRules=_r("rules:read"),
        ValidateRules=_r("rules:read"),
        PutRules=_w("rules:publish"),
    ),
    **_service(
        "allocation.v1.OrderService",
        PlaceOrder=_w("orders:place"),
        RecordPayment=_w("orders:manage"),
        CancelOrder=_w("orders:manage"),
        RecordShipment=_w("shipments:confirm"),
        RejectShipment=_w("shipments:confirm"),
        AcceptShipment=_w("shipments:confirm"),
        RecordDelivery=_w("shipments:confirm"),
        RequestReturn=_w("orders:manage"),
        ReceiveReturn=_w("shipments:confirm"),
        InspectReturn=_w("orders:manage"),
        ResumeOrder=_w("orders:manage"),
        GetOrder=_r("orders:read"),
        ListOrders=_r("orders:read"),
    ),
    **_service(
        "allocation.v1.CustomerService",
        UpsertCustomer=_w("orders:manage"),
        GetCustomer=_r("orders:read"),
    ),
    **_service("grpc.reflection.v1alpha.ServerReflection", ServerReflectionInfo=_r("admin")),
    **_service("grpc.reflection.v1.ServerReflection", ServerReflectionInfo=_r("admin")),
}
"""The one table: full method name -> the scope it requires."""

OPEN = frozenset({"/grpc.health.v1.Health/Check", "/grpc.health.v1.Health/Watch"})
"""Methods anyone may call without credentials (load balancers probe health)."""


def _raw(data: bytes) -> bytes:
    return data


def _token(context: grpc.ServicerContext) -> str | None:
    for key, value in context.invocation_metadata() or ():
        if key == "authorization" and isinstance(value, str):
            scheme, _, token = value.partition(" ")
            return token.strip() if scheme.lower() == "bearer" else ""
    return None


def _subjects(context: grpc.ServicerContext) -> list[str]:
    """The client certificate's common name, then its SAN names (mTLS; none in plaintext)."""
    auth = context.auth_context() or {}
    names = [*auth.get("x509_common_name", ()), *auth.get("x509_subject_alternative_name", ())]
    return [n.decode(errors="replace") if isinstance(n, bytes) else str(n) for n in names]


def _decoder(deserializer: Callable[[bytes], Any] | None) -> Callable[[bytes, str], Any]:
    """Decodes the raw request bytes with the method's own deserializer; bytes that are not
    its message are INVALID_ARGUMENT naming `field` (as `ErrorInterceptor` would have)."""
    owner = getattr(deserializer, "__self__", None)
    type_name = getattr(getattr(owner, "DESCRIPTOR", None), "full_name", "request")

    def decode(data: bytes, field: str) -> Any:
        if deserializer is None:
            return data
        try:
            return deserializer(data)
        except Exception:
            raise Undecodable(len(data), type_name).error(field) from None

    return decode


class AccessInterceptor(grpc.ServerInterceptor):
    """See the module docstring."""

    def __init__(
        self,
        registry: CallerRegistry,
        audit: AuditLog,
        clock: Clock,
        limits: RateLimits | None = None,
        methods: dict[str, Rule] | None = None,
    ) -> None:
        self._registry, self._audit, self._clock = registry, audit, clock
        self._buckets = TokenBuckets(clock, limits)
        self._methods = METHODS if methods is None else methods
        self.audit_failures = 0

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler[Any, Any] | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or method in OPEN:
            return handler
        rule = self._methods.get(method)
        decode = _decoder(handler.request_deserializer)

        def wrap(behavior: Behavior, streamed_in: bool, streamed_out: bool) -> Behavior:
            def call(raw: Any, context: grpc.ServicerContext) -> Any:
                caller = self._admit(method, rule, context)
                if streamed_in:
                    request: Any = (decode(r, f"chunks[{i}]") for i, r in enumerate(raw))
                    key = ""
                else:
                    request = decode(raw, "request")
                    key = str(getattr(request, "idempotency_key", "") or "")
                return caller, request, key

            if streamed_out:

                def streaming(raw: Any, context: grpc.ServicerContext) -> Iterator[Any]:
                    caller, request, key = call(raw, context)
                    with self._outcome(method, rule, caller, key, context):
                        yield from behavior(request, context)

                return streaming

            def unary(raw: Any, context: grpc.ServicerContext) -> Any:
                caller, request, key = call(raw, context)
                with self._outcome(method, rule, caller, key, context):
                    return behavior(request, context)

            return unary

        return rewrapped(handler, wrap, _raw)

    # --- the gate ------------------------------------------------------------------------

    def _admit(self, method: str, rule: Rule | None, context: grpc.ServicerContext) -> Caller:
        """The caller, allowed to call `method` now; else the call ends here (raises)."""
        token = _token(context)
        if token is not None:
            caller = by_token(self._registry, token) if token else None
        else:
            caller = by_subjects(self._registry, _subjects(context))
        if caller is None:
            how = "token" if token is not None else "credentials"
            log.warning("unauthenticated call to %s (%s)", method, how)
            context.abort(
                grpc.StatusCode.UNAUTHENTICATED,
                "missing, unknown or revoked credentials: send 'authorization: Bearer <token>' "
                "or a registered client certificate",
            )
        if rule is None or rule.scope not in caller.scopes:
            needed = rule.scope if rule else "<none: the method is not in the access table>"
            message = f"caller {caller.name!r} lacks scope {needed!r} for {method}"
            if rule is None or rule.mutating:
                self._write(
                    AuditEntry(
                        self._clock.now(), caller.name, method, "PERMISSION_DENIED", detail=message
                    )
                )
            context.abort(grpc.StatusCode.PERMISSION_DENIED, message)
        wait = self._buckets.take(caller)
        if wait > 0:
            log.warning("rate limit: %s on %s, retry in %.3f s", caller.name, method, wait)
            _exhausted(context, caller, wait)
        return caller

    def _outcome(
        self,
        method: str,
        rule: Rule | None,
        caller: Caller,
        key: str,
        context: grpc.ServicerContext,
    ) -> _Outcome:
        return _Outcome(self, method, bool(rule and rule.mutating), caller, key, context)

    def _write(self, entry: AuditEntry) -> None:
        try:
            self._audit.append(entry)
        except Exception:
            self.audit_failures += 1
            log.exception("audit write failed; the entry: %r", entry)


class _Outcome:
    """Runs the call as its caller; maps `AccessDenied` to PERMISSION_DENIED and audits a
    mutating call with its status code."""

    def __init__(
        self,
        gate: AccessInterceptor,
        method: str,
        mutating: bool,
        caller: Caller,
        key: str,
        context: grpc.ServicerContext,
    ) -> None:
        self._gate, self._method, self._mutating = gate, method, mutating
        self._caller, self._key, self._context = caller, key, context
        self._acting = acting_as(caller)

    def __enter__(self) -> None:
        self._acting.__enter__()

    def __exit__(self, kind: Any, error: BaseException | None, trace: Any) -> None:
        self._acting.__exit__(kind, error, trace)
        code, detail = _code_of(error, self._context)
        if self._mutating:
            entry = AuditEntry(
                self._gate._clock.now(), self._caller.name, self._method, code, self._key, detail
            )
            self._gate._write(entry)
        if isinstance(error, AccessDenied):
            self._context.abort(grpc.StatusCode.PERMISSION_DENIED, str(error))


def _code_of(error: BaseException | None, context: grpc.ServicerContext) -> tuple[str, str]:
    """The status code name the call ends with, and a short detail."""
    if error is None:
        return "OK", ""
    if isinstance(error, AccessDenied):
        return "PERMISSION_DENIED", str(error)[:200]
    if isinstance(error, Exception):
        status = status_for(error)
        if status is not None:
            return code_pb2.Code.Name(status.code), status.message[:200]
    code = getattr(context, "code", None)
    set_code = code() if code is not None else None
    if isinstance(set_code, grpc.StatusCode):
        return set_code.name, ""
    return "INTERNAL", type(error).__name__


def _exhausted(context: grpc.ServicerContext, caller: Caller, wait: float) -> NoReturn:
    delay = duration_pb2.Duration()
    delay.FromNanoseconds(max(1, round(wait * 1e9)))
    detail = status_pb2.Status().details.add()
    detail.Pack(error_details_pb2.RetryInfo(retry_delay=delay))
    status = status_pb2.Status(
        code=code_pb2.RESOURCE_EXHAUSTED,
        message=f"rate limit of caller {caller.name!r}: retry in {wait:.3f} s",
        details=[detail],
    )
    context.abort_with_status(rpc_status.to_status(status))
    raise AssertionError("abort_with_status returned")  # pragma: no cover


# --- for the composition root ----------------------------------------------------------------


def build_access(
    registry: CallerRegistry,
    audit: AuditLog,
    limits: RateLimits | None,
    clock: Clock,
) -> list[grpc.ServerInterceptor]:
    """The `inner` interceptors of `AllocationServer` that guard every RPC."""
    return [AccessInterceptor(registry, audit, clock, limits)]


DEV_ADMIN = "dev-admin"


def dev_admin_token(registry: CallerRegistry, clock: Clock) -> str:
    """Registers a local admin caller in `registry` (the memory one of `make run`) and returns
    its token, for the developer to use; never for production (see `production_ready`)."""
    issued = register(registry, name=DEV_ADMIN, role="admin", now=clock.now())
    assert issued.token is not None
    return issued.token


class NotProductionReady(ValueError):
    """The server's configuration is not fit to face a network; lists every reason."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("refusing to start in production: " + "; ".join(self.problems))


def production_ready(
    *,
    tls_cert: str | None,
    tls_key: str | None,
    registry: CallerRegistry | None,
    dev_mode: bool = False,
) -> None:
    """Raises `NotProductionReady` unless the server has TLS (cert and key), an access registry
    holding at least one live caller, and no development admin token."""
    problems = []
    if not tls_cert:
        problems.append("no TLS certificate (tls_cert)")
    if not tls_key:
        problems.append("no TLS key (tls_key)")
    if dev_mode:
        problems.append("development mode (a local admin token) is on")
    if registry is None:
        problems.append("no caller registry: every RPC would be open")
    else:
        live = [c for c in registry.callers() if not c.revoked]
        if not live:
            problems.append("no live caller is registered (allocation-engine tokens create)")
        if any(c.name == DEV_ADMIN for c in live):
            problems.append(f"the development caller {DEV_ADMIN!r} is registered")
    if problems:
        raise NotProductionReady(problems)


__all__ = [
    "METHODS",
    "OPEN",
    "AccessInterceptor",
    "NotProductionReady",
    "RateLimits",
    "Rule",
    "build_access",
    "dev_admin_token",
    "production_ready",
]
