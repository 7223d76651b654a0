"""The gRPC server: one `AllocationServer` over one `Services`.

It registers the Allocation, Inventory, Rules and Promise servicers (and any `extra` ones, such
as the OrderService from `app`) behind the one `ErrorInterceptor`, with health and reflection, and
runs two background loops through the service layer: store health (SERVING while the store answers)
and the sweep that expires overdue reservations. Message sizes follow `Limits`; every request is
checked against the contract's ranges (`api.bounds.BoundsInterceptor`) before a servicer sees it.

The port is its own: a second server on a port in use fails with `PortInUse` instead of sharing
it (gRPC would otherwise set SO_REUSEPORT and the kernel would split connections between the two
processes). Several processes on one port is a deliberate choice: `reuse_port=True` in each.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent import futures

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from allocation_engine.api.bounds import BoundsInterceptor
from allocation_engine.api.errors import ErrorInterceptor
from allocation_engine.api.request import Limits
from allocation_engine.api.servicers.allocation import AllocationServicer
from allocation_engine.api.servicers.inventory import InventoryServicer
from allocation_engine.api.servicers.promise import PromiseServicer
from allocation_engine.api.servicers.rules import RulesServicer
from allocation_engine.proto.allocation.v1 import allocation_pb2 as apb
from allocation_engine.proto.allocation.v1 import allocation_pb2_grpc as apb_grpc
from allocation_engine.proto.allocation.v1 import inventory_pb2 as ipb
from allocation_engine.proto.allocation.v1 import inventory_pb2_grpc as ipb_grpc
from allocation_engine.proto.allocation.v1 import promise_pb2 as ppb
from allocation_engine.proto.allocation.v1 import promise_pb2_grpc as ppb_grpc
from allocation_engine.proto.allocation.v1 import rules_pb2 as rpb
from allocation_engine.proto.allocation.v1 import rules_pb2_grpc as rpb_grpc
from allocation_engine.service import Services
from allocation_engine.service.promise import Promises

SERVICE_NAMES = (
    apb.DESCRIPTOR.services_by_name["AllocationService"].full_name,
    ipb.DESCRIPTOR.services_by_name["InventoryService"].full_name,
    rpb.DESCRIPTOR.services_by_name["RulesService"].full_name,
    ppb.DESCRIPTOR.services_by_name["PromiseService"].full_name,
)


class PortInUse(OSError):
    """The server could not bind its address: another process holds the port (or the address
    is not this host's)."""

    def __init__(self, address: str) -> None:
        self.address = address
        super().__init__(
            f"cannot listen on {address}: the port is in use by another process "
            "(or the address is not one of this host's); pick another --port, or run every "
            "process on it with --reuse-port to share it on purpose"
        )


class Every(threading.Thread):
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
        threads: int = 16,
        health_interval: float = 1.0,
        sweep_interval: float = 1.0,
        extra: Iterable[Callable[[grpc.Server], str]] = (),
        reuse_port: bool = False,
        outer: Sequence[grpc.ServerInterceptor] = (),
        inner: Sequence[grpc.ServerInterceptor] = (),
        credentials: grpc.ServerCredentials | None = None,
        reflection_enabled: bool = True,
        on_expired: Callable[[int], object] | None = None,
    ) -> None:
        """`outer` interceptors see every call first, before errors are mapped to statuses
        (telemetry); `inner` ones run after the error mapping and before the bounds check
        (access control), so a refused caller is answered before any field is read.
        `credentials` serve TLS (else the port is plaintext); `reflection_enabled` registers
        the reflection service. `on_expired` hears how many reservations each sweep expired
        (the metrics count them)."""
        self.services = services
        self.limits = limits or Limits()
        self._server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=threads, thread_name_prefix="rpc"),
            interceptors=[
                *outer,
                ErrorInterceptor(),
                *inner,
                BoundsInterceptor(self.limits),
            ],
            options=[
                ("grpc.max_receive_message_length", self.limits.max_message_bytes),
                ("grpc.max_send_message_length", self.limits.max_message_bytes),
                ("grpc.so_reuseport", 1 if reuse_port else 0),
            ],
        )
        apb_grpc.add_AllocationServiceServicer_to_server(
            AllocationServicer(services, self.limits), self._server
        )
        ipb_grpc.add_InventoryServiceServicer_to_server(
            InventoryServicer(services, self.limits), self._server
        )
        rpb_grpc.add_RulesServiceServicer_to_server(RulesServicer(services), self._server)
        ppb_grpc.add_PromiseServiceServicer_to_server(
            PromiseServicer(Promises(services.planner)), self._server
        )
        names = list(SERVICE_NAMES) + [add(self._server) for add in extra]
        self.health = health.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self._server)
        if reflection_enabled:
            reflection.enable_server_reflection(
                [
                    *names,
                    health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
                    reflection.SERVICE_NAME,
                ],
                self._server,
            )
        self._names = names
        self._on_expired = on_expired
        self.secure = credentials is not None
        try:
            self.port = (
                self._server.add_secure_port(f"{host}:{port}", credentials)
                if credentials is not None
                else self._server.add_insecure_port(f"{host}:{port}")
            )
        except RuntimeError as failed:  # grpcio raises RuntimeError("Failed to bind ...")
            raise PortInUse(f"{host}:{port}") from failed
        if self.port == 0:  # older grpcio answers 0 instead of raising
            raise PortInUse(f"{host}:{port}")
        self.address = f"{host}:{self.port}"
        self._threads = [
            Every("store-health", health_interval, self.check_store),
            Every("sweeper", sweep_interval, self.sweep),
        ]

    def check_store(self) -> bool:
        """SERVING while the store answers, NOT_SERVING while it does not."""
        up = self.services.store_reachable()
        status = health_pb2.HealthCheckResponse
        for name in ("", *self._names):
            self.health.set(name, status.SERVING if up else status.NOT_SERVING)
        return up

    def sweep(self) -> None:
        """Expires overdue reservations (nothing while the store is down; health says so)."""
        expired = self.services.sweep_expired()
        if self._on_expired is not None and expired:
            self._on_expired(expired)

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
