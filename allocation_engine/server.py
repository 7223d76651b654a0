"""The gRPC edge: decode the request, call the service layer, encode the answer.

Servicers stay thin; `status_for` is the one place where typed errors become status codes:

  INVALID_ARGUMENT    bad input (a google.rpc.BadRequest detail names every bad field)
  NOT_FOUND           unknown id
  FAILED_PRECONDITION not enough stock (an allocation.v1.InsufficientStock detail carries the
                      shortfalls), an illegal state change, an expired hold
  ABORTED             version conflict (an older snapshot, a stale rules revision)
  ALREADY_EXISTS      an idempotency key reused with another request
  RESOURCE_EXHAUSTED  a request over the server's limits
  UNAVAILABLE         the backing store cannot be reached
  DEADLINE_EXCEEDED   the caller's deadline passed

Around the servicers: standard health checking (NOT_SERVING while the store is unreachable, and
first thing on SIGTERM), server reflection, a sweeper that expires overdue reservations, and a
graceful stop that lets calls in flight finish.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import grpc
from google.protobuf import any_pb2
from google.protobuf.message import Message
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from grpc_status import rpc_status

from . import mapping
from .adapters.clock import SystemClock
from .adapters.memory_store import MemoryStore
from .adapters.redis_store import RedisStore
from .demo import demo_network, demo_positions
from .engine import FieldProblem, InsufficientStock, InvalidInput, parse_rules
from .engine.errors import AllocationError
from .engine.ports import (
    Clock,
    IdempotencyConflict,
    IllegalState,
    InventoryStore,
    NotFound,
    SnapshotLine,
    StoreUnavailable,
    VersionConflict,
)
from .engine.rules import default_rules_text
from .engine.workflow.errors import ConcurrentChange, ProviderUnavailable
from .proto.allocation.v1 import allocation_pb2 as apb
from .proto.allocation.v1 import allocation_pb2_grpc as apb_grpc
from .proto.allocation.v1 import common_pb2 as cpb
from .proto.allocation.v1 import inventory_pb2 as ipb
from .proto.allocation.v1 import inventory_pb2_grpc as ipb_grpc
from .proto.allocation.v1 import rules_pb2 as rpb
from .proto.allocation.v1 import rules_pb2_grpc as rpb_grpc
from .service import Services
from .service.errors import Deadline, DeadlineExceeded, LimitExceeded
from .service.expiry import expire_due

log = logging.getLogger("allocation_engine.server")

SERVICE_NAMES = (
    apb.DESCRIPTOR.services_by_name["AllocationService"].full_name,
    ipb.DESCRIPTOR.services_by_name["InventoryService"].full_name,
    rpb.DESCRIPTOR.services_by_name["RulesService"].full_name,
)


@dataclass(frozen=True)
class Limits:
    """What one request may carry; beyond it the answer is RESOURCE_EXHAUSTED."""

    max_message_bytes: int = 8 * 1024 * 1024
    max_lines_per_order: int = 200
    max_positions_per_chunk: int = 50_000
    max_nodes_per_request: int = 10_000
    max_skus_per_read: int = 1_000


def fingerprint(request: Message) -> str:
    """What makes two requests "the same" for an idempotency key: every field but the key."""
    copy = type(request)()
    copy.CopyFrom(request)
    copy.ClearField("idempotency_key")
    return hashlib.sha256(copy.SerializeToString(deterministic=True)).hexdigest()


def _detail(message: Message) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


def status_for(error: Exception) -> status_pb2.Status:
    """The one mapping from typed errors to gRPC status codes (with rich details)."""
    match error:
        case InvalidInput():
            bad = error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(
                        field=p.field, description=f"{p.value!r}: {p.problem}"
                    )
                    for p in error.problems
                ]
            )
            return status_pb2.Status(
                code=code_pb2.INVALID_ARGUMENT, message=str(error), details=[_detail(bad)]
            )
        case InsufficientStock():
            stock = cpb.InsufficientStock(
                shortfalls=[mapping.shortfall_to_proto(s) for s in error.shortfalls]
            )
            failure = error_details_pb2.PreconditionFailure(
                violations=[
                    error_details_pb2.PreconditionFailure.Violation(
                        type="STOCK",
                        subject=s.sku,
                        description=f"requested {s.requested}, available {s.available}",
                    )
                    for s in error.shortfalls
                ]
            )
            return status_pb2.Status(
                code=code_pb2.FAILED_PRECONDITION,
                message=str(error),
                details=[_detail(stock), _detail(failure)],
            )
        case NotFound():
            return status_pb2.Status(code=code_pb2.NOT_FOUND, message=str(error))
        case IllegalState():
            return status_pb2.Status(code=code_pb2.FAILED_PRECONDITION, message=str(error))
        case VersionConflict():
            return status_pb2.Status(code=code_pb2.ABORTED, message=str(error))
        case IdempotencyConflict():
            return status_pb2.Status(code=code_pb2.ALREADY_EXISTS, message=str(error))
        case LimitExceeded():
            return status_pb2.Status(code=code_pb2.RESOURCE_EXHAUSTED, message=str(error))
        case StoreUnavailable() | ProviderUnavailable():
            return status_pb2.Status(code=code_pb2.UNAVAILABLE, message=str(error))
        case ConcurrentChange():
            return status_pb2.Status(code=code_pb2.ABORTED, message=str(error))
        case DeadlineExceeded() | TimeoutError():
            return status_pb2.Status(code=code_pb2.DEADLINE_EXCEEDED, message=str(error))
    log.exception("unexpected error", exc_info=error)
    return status_pb2.Status(code=code_pb2.INTERNAL, message=f"internal error: {error!r}")


Handler = TypeVar("Handler", bound=Callable[..., Any])


def handled(method: Handler) -> Handler:
    """Answers every error a handler raises with `status_for`'s status."""

    @functools.wraps(method)
    def wrapper(self: Any, request: Any, context: grpc.ServicerContext) -> Any:
        try:
            return method(self, request, context)
        except (AllocationError, TimeoutError) as error:
            context.abort_with_status(rpc_status.to_status(status_for(error)))
        except Exception as error:  # anything else is a bug: INTERNAL, logged
            context.abort_with_status(rpc_status.to_status(status_for(error)))

    return wrapper  # type: ignore[return-value]


def _limit(field: str, size: int, limit: int) -> None:
    if size > limit:
        raise LimitExceeded(field, size, limit)


def _deadline(context: grpc.ServicerContext) -> Deadline:
    return Deadline(context.time_remaining())


# Fields the engine names from the order down; in the request they sit under `order`.
_ORDER_FIELDS = ("lines[", "ship_to", "pickup_store_id", "customer_type", "delivery_mode")


def _order_fields(error: InvalidInput) -> InvalidInput:
    return InvalidInput(
        [
            FieldProblem(
                f"order.{p.field}" if p.field.startswith(_ORDER_FIELDS) else p.field,
                p.value,
                p.problem,
            )
            for p in error.problems
        ]
    )


class AllocationServicer(apb_grpc.AllocationServiceServicer):
    def __init__(self, services: Services, limits: Limits) -> None:
        self._services = services
        self._limits = limits

    @handled
    def Allocate(self, request: apb.AllocateRequest, context: grpc.ServicerContext) -> Any:
        _limit("order.lines", len(request.order.lines), self._limits.max_lines_per_order)
        order = mapping.order_from_proto(request.order)
        rules = (
            parse_rules(mapping.rules_text_from_proto(request.rule_set))
            if request.HasField("rule_set")
            else None
        )
        try:
            plan = self._services.planner.plan(order, rules, _deadline(context))
        except InvalidInput as bad:
            raise _order_fields(bad) from None
        return apb.AllocateResponse(plan=mapping.plan_to_proto(plan, explain=request.explain))

    @handled
    def Reserve(self, request: apb.ReserveRequest, context: grpc.ServicerContext) -> Any:
        if not request.idempotency_key:
            raise InvalidInput.one("idempotency_key", "", "is required")
        _limit("order.lines", len(request.order.lines), self._limits.max_lines_per_order)
        order = mapping.order_from_proto(request.order)
        plan = mapping.plan_from_proto(request.plan) if request.HasField("plan") else None
        try:
            record = self._services.reservations.reserve(
                request.idempotency_key,
                fingerprint(request),
                order,
                ttl_seconds=request.ttl_seconds,
                plan=plan,
                strict_plan=request.strict_plan,
                deadline=_deadline(context),
            )
        except InvalidInput as bad:
            raise _order_fields(bad) from None
        return apb.ReserveResponse(reservation=mapping.reservation_to_proto(record))

    @handled
    def CommitReservation(
        self, request: apb.CommitReservationRequest, context: grpc.ServicerContext
    ) -> Any:
        record = self._services.reservations.commit(
            _reservation_id(request.reservation_id), request.idempotency_key, fingerprint(request)
        )
        return apb.CommitReservationResponse(reservation=mapping.reservation_to_proto(record))

    @handled
    def ReleaseReservation(
        self, request: apb.ReleaseReservationRequest, context: grpc.ServicerContext
    ) -> Any:
        record = self._services.reservations.release(
            _reservation_id(request.reservation_id), request.idempotency_key, fingerprint(request)
        )
        return apb.ReleaseReservationResponse(reservation=mapping.reservation_to_proto(record))

    @handled
    def GetReservation(
        self, request: apb.GetReservationRequest, context: grpc.ServicerContext
    ) -> Any:
        record = self._services.reservations.get(_reservation_id(request.reservation_id))
        return apb.GetReservationResponse(reservation=mapping.reservation_to_proto(record))


def _reservation_id(value: str) -> str:
    if not value:
        raise InvalidInput.one("reservation_id", value, "is required")
    return value


class InventoryServicer(ipb_grpc.InventoryServiceServicer):
    def __init__(self, services: Services, limits: Limits) -> None:
        self._services = services
        self._limits = limits

    @handled
    def UpsertNodes(self, request: ipb.UpsertNodesRequest, context: grpc.ServicerContext) -> Any:
        _limit("nodes", len(request.nodes), self._limits.max_nodes_per_request)
        nodes = mapping.nodes_from_proto(request.nodes)
        version = self._services.inventory.upsert_nodes(
            request.idempotency_key, fingerprint(request), nodes
        )
        return ipb.UpsertNodesResponse(nodes_version=version, upserted=len(nodes))

    @handled
    def ListNodes(self, request: ipb.ListNodesRequest, context: grpc.ServicerContext) -> Any:
        record = self._services.inventory.nodes()
        return ipb.ListNodesResponse(
            nodes_version=record.version, nodes=[mapping.node_to_proto(n) for n in record.nodes]
        )

    @handled
    def ApplySnapshot(
        self, request_iterator: Iterator[ipb.SnapshotChunk], context: grpc.ServicerContext
    ) -> Any:
        """Applies chunk by chunk as they arrive; nothing of the stream is held beyond one."""
        version, applied, skipped, chunks = None, 0, 0, 0
        for chunk in request_iterator:
            _limit(
                f"chunks[{chunks}].positions",
                len(chunk.positions),
                self._limits.max_positions_per_chunk,
            )
            if version is not None and chunk.version != version:
                raise InvalidInput.one(
                    f"chunks[{chunks}].version",
                    chunk.version,
                    f"differs from the first ({version})",
                )
            version = chunk.version
            lines = [mapping.snapshot_line_from_proto(p) for p in chunk.positions]
            try:
                outcome = self._services.inventory.apply_snapshot(chunk.version, lines)
            except InvalidInput as bad:
                raise InvalidInput(
                    [
                        FieldProblem(f"chunks[{chunks}].{p.field}", p.value, p.problem)
                        for p in bad.problems
                    ]
                ) from None
            applied, skipped, chunks = (
                applied + outcome.applied,
                skipped + outcome.skipped,
                chunks + 1,
            )
        if version is None:
            raise InvalidInput.one("chunks", 0, "a snapshot needs at least one chunk")
        return ipb.ApplySnapshotResponse(
            version=version, positions_applied=applied, positions_skipped=skipped, chunks=chunks
        )

    @handled
    def AdjustInventory(
        self, request: ipb.AdjustInventoryRequest, context: grpc.ServicerContext
    ) -> Any:
        _limit("adjustments", len(request.adjustments), self._limits.max_positions_per_chunk)
        outcome = self._services.inventory.adjust(
            request.idempotency_key,
            fingerprint(request),
            [mapping.adjustment_from_proto(a) for a in request.adjustments],
        )
        return ipb.AdjustInventoryResponse(
            positions=[mapping.level_to_proto(lv) for lv in outcome.levels],
            clamped=[mapping.adjustment_to_proto(a) for a in outcome.clamped],
        )

    @handled
    def GetAvailability(
        self, request: ipb.GetAvailabilityRequest, context: grpc.ServicerContext
    ) -> Any:
        _limit("skus", len(request.skus), self._limits.max_skus_per_read)
        found = self._services.inventory.availability(list(request.skus), list(request.node_ids))
        return ipb.GetAvailabilityResponse(
            skus=[mapping.availability_to_proto(sku, levels) for sku, levels in found.items()]
        )


class RulesServicer(rpb_grpc.RulesServiceServicer):
    def __init__(self, services: Services) -> None:
        self._services = services

    @handled
    def GetRules(self, request: rpb.GetRulesRequest, context: grpc.ServicerContext) -> Any:
        published = self._services.rules.get()
        return rpb.GetRulesResponse(
            rules=mapping.rules_to_proto(published.rules, published.text, published.revision)
        )

    @handled
    def ValidateRules(
        self, request: rpb.ValidateRulesRequest, context: grpc.ServicerContext
    ) -> Any:
        rules, problems = self._services.rules.validate(request.toml)
        response = rpb.ValidateRulesResponse(
            valid=rules is not None, problems=[mapping.problem_to_proto(p) for p in problems]
        )
        if rules is not None:
            response.rules.CopyFrom(mapping.rules_to_proto(rules, request.toml, 0))
        return response

    @handled
    def PutRules(self, request: rpb.PutRulesRequest, context: grpc.ServicerContext) -> Any:
        expected = request.expected_revision if request.HasField("expected_revision") else None
        published = self._services.rules.put(
            request.toml, expected, request.idempotency_key, fingerprint(request)
        )
        return rpb.PutRulesResponse(
            rules=mapping.rules_to_proto(published.rules, published.text, published.revision)
        )


class _Every(threading.Thread):
    """Runs `task` every `interval` seconds until stopped (a daemon, so it never blocks exit)."""

    def __init__(self, name: str, interval: float, task: Callable[[], object]) -> None:
        super().__init__(name=name, daemon=True)
        self._interval, self._task, self._stop = interval, task, threading.Event()

    def run(self) -> None:
        while not self._stop.wait(self._interval):
            self._task()

    def stop(self) -> None:
        self._stop.set()


class AllocationServer:
    """One gRPC server over one `Services`: start, serve, stop gracefully."""

    def __init__(
        self,
        services: Services,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        limits: Limits | None = None,
        workers: int = 16,
        health_interval: float = 1.0,
        sweep_interval: float = 1.0,
        extra: Iterable[Callable[[grpc.Server], str]] = (),
    ) -> None:
        self.services = services
        self.limits = limits or Limits()
        self._server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="rpc"),
            options=[
                ("grpc.max_receive_message_length", self.limits.max_message_bytes),
                ("grpc.max_send_message_length", self.limits.max_message_bytes),
                ("grpc.so_reuseport", 1),
            ],
        )
        apb_grpc.add_AllocationServiceServicer_to_server(
            AllocationServicer(services, self.limits), self._server
        )
        ipb_grpc.add_InventoryServiceServicer_to_server(
            InventoryServicer(services, self.limits), self._server
        )
        rpb_grpc.add_RulesServiceServicer_to_server(RulesServicer(services), self._server)
        names = list(SERVICE_NAMES) + [add(self._server) for add in extra]
        self.health = health.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self._server)
        reflection.enable_server_reflection(
            [
                *names,
                health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
                reflection.SERVICE_NAME,
            ],
            self._server,
        )
        self._names = names
        self.port = self._server.add_insecure_port(f"{host}:{port}")
        self.address = f"{host}:{self.port}"
        self._threads = [
            _Every("store-health", health_interval, self.check_store),
            _Every("sweeper", sweep_interval, self.sweep),
        ]

    def check_store(self) -> bool:
        """SERVING while the store answers, NOT_SERVING while it does not."""
        try:
            self.services.store.ping()
            up = True
        except StoreUnavailable:
            up = False
        status = health_pb2.HealthCheckResponse
        for name in ("", *self._names):
            self.health.set(name, status.SERVING if up else status.NOT_SERVING)
        return up

    def sweep(self) -> None:
        with contextlib.suppress(StoreUnavailable):  # health says so; the next sweep catches up
            expire_due(self.services.store, self.services.clock.now())

    def start(self) -> AllocationServer:
        self.check_store()
        self._server.start()
        for thread in self._threads:
            thread.start()
        return self

    def stop(self, grace: float = 10.0) -> None:
        """Health goes NOT_SERVING first, new calls are refused, calls in flight finish."""
        self.health.enter_graceful_shutdown()
        for thread in self._threads:
            thread.stop()
        self._server.stop(grace).wait()

    def wait(self) -> None:
        self._server.wait_for_termination()


def build_services(
    redis_url: str | None = None,
    rules_path: str | None = None,
    clock: Clock | None = None,
) -> Services:
    """Services over Redis (`redis_url`) or memory, with `rules_path` as the default rule set.

    A rules file is published at start unless the store already holds the same text, so several
    processes started with the same file publish it once.
    """
    store: InventoryStore = RedisStore.from_url(redis_url) if redis_url else MemoryStore()
    text = Path(rules_path).read_text() if rules_path else default_rules_text()
    services = Services.build(store, clock or SystemClock(), parse_rules(text), text)
    if rules_path:
        current = store.get_rules()
        if current is None or current.text != text:
            store.put_rules(text)
    return services


def seed_demo(services: Services) -> bool:
    """Loads the demo network and its stock into an empty store; False if it held nodes."""
    store = services.store
    if store.load_nodes().nodes:
        return False
    network = demo_network()
    store.upsert_nodes(network.nodes)
    lines = [
        SnapshotLine(p.node_id, p.sku, p.on_hand, p.safety_stock) for p in demo_positions(network)
    ]
    store.apply_snapshot(1, lines)
    return True
