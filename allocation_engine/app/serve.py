"""The composition root of `serve`: one process's stores, services, gRPC server and workflow.

`ServeConfig` says what to run (every choice `allocation-engine serve` offers); `start` picks the
adapters for it (memory or Redis, the rules file, the demo network) and starts everything;
`Running.stop` stops it gracefully. Tests, benchmarks and the CLI all start a server this way, so
what they run is what production runs.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from wsgiref.simple_server import WSGIServer

import grpc

from allocation_engine.adapters.clock import SystemClock
from allocation_engine.adapters.memory.inventory import MemoryStore
from allocation_engine.adapters.redis.inventory import RedisStore
from allocation_engine.api.access import build_access, dev_admin_token, production_ready
from allocation_engine.api.http.app import HttpDeps, build_app
from allocation_engine.api.http.gate import HttpGate
from allocation_engine.api.http.server import HttpServer
from allocation_engine.api.server import AllocationServer, PortInUse
from allocation_engine.api.servicers.customers import register as register_customers
from allocation_engine.api.servicers.promise import PromiseServicer
from allocation_engine.api.telemetry import TelemetryInterceptor
from allocation_engine.api.tls import server_credentials
from allocation_engine.app.access import open_audit, open_registry
from allocation_engine.app.channels import Pollers, build_intake, channel_fences
from allocation_engine.app.demo import demo_network, demo_positions
from allocation_engine.app.feeds import FeedWatcher
from allocation_engine.app.orders import (
    OrderConfig,
    OrderRuntime,
    load_channel_file,
    load_workflow_file,
)
from allocation_engine.engine import NodeType, parse_rules
from allocation_engine.engine.rules import default_rules_text
from allocation_engine.observability.logs import configure_logging
from allocation_engine.observability.metrics import Metrics
from allocation_engine.observability.store import instrumented
from allocation_engine.observability.tracing import configure_tracing
from allocation_engine.ports.clock import Clock
from allocation_engine.ports.inventory import InventoryStore, SnapshotLine
from allocation_engine.service import Services
from allocation_engine.service.channels.intake import ChannelIntake
from allocation_engine.service.feeds.crm import Customers
from allocation_engine.service.promise import Promises
from allocation_engine.service.ratelimit import RateLimits

LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})


@dataclass(frozen=True)
class AccessConfig:
    """Who may call: `auth` requires a token or client certificate on every RPC but health;
    TLS when a certificate and key are given (mTLS with a client CA too). `production` refuses
    to start without TLS and a registry of live callers. Without `auth` the server only listens
    on loopback (development: every RPC is open to the local machine)."""

    auth: bool = False
    tls_cert: str | None = None
    tls_key: str | None = None
    tls_client_ca: str | None = None
    production: bool = False
    rate: float = RateLimits.rate  # calls per second per caller registered without its own
    burst: int = RateLimits.burst


@dataclass(frozen=True)
class TelemetryConfig:
    """What the server reports: Prometheus metrics on `metrics_port` (None: no metrics and no
    store timing), traces to `trace_exporter` (none, console, otlp at `otlp_endpoint`), logs
    as `log_format` (json or text; None leaves logging as the caller set it up)."""

    metrics_host: str = "127.0.0.1"
    metrics_port: int | None = None
    trace_exporter: str = "none"
    otlp_endpoint: str | None = None
    log_format: str | None = None


class AccessRefused(ValueError):
    """The access settings do not fit where the server would listen (a usage mistake)."""


@dataclass(frozen=True)
class ServeConfig:
    """What one server process runs; see `allocation-engine serve --help`."""

    host: str = "127.0.0.1"
    port: int = 50051
    redis_url: str | None = None  # None: the in-memory store (one process, nothing kept)
    rules: str | None = None  # a rule set TOML published at start; None: the shipped defaults
    demo: bool = False  # load the demo network into an empty store
    threads: int = 16  # threads serving calls in this process
    reuse_port: bool = False  # share the port with other processes started with it (scale-out)
    orders: OrderConfig = field(default_factory=OrderConfig)
    access: AccessConfig = field(default_factory=AccessConfig)
    telemetry: TelemetryConfig = field(default_factory=TelemetryConfig)
    http_host: str = "127.0.0.1"
    http_port: int | None = None  # the HTTP edge (webhooks, REST); None: gRPC only
    poll: bool = True  # run the channels' importers on their schedules in this process
    feed_dir: str | None = None  # an ERP drop folder this process sweeps (docs/feeds.md)


@dataclass
class Running:
    """A started server process: the gRPC server with its order workflow."""

    server: AllocationServer
    orders: OrderRuntime
    seeded: bool  # the demo network was loaded into an empty store
    dev_token: str | None = None  # the local admin token of a development server with auth
    metrics: Metrics | None = None
    metrics_port: int | None = None  # where /metrics is served
    http: HttpServer | None = None  # the HTTP edge, when serving one
    intake: ChannelIntake | None = None

    @property
    def address(self) -> str:
        return self.server.address

    def stop(self, grace: float = 10.0) -> None:
        """Health goes NOT_SERVING, new calls are refused, calls in flight finish; then the
        outbox dispatcher and the metrics endpoint stop."""
        if self.http is not None:
            self.http.stop(grace)
        if self._pollers is not None:
            self._pollers.stop()
        if self._feeds is not None:
            self._feeds.stop()
        self.server.stop(grace)
        self.orders.stop()
        if self._metrics_http is not None:
            self._metrics_http.shutdown()
            self._metrics_http.server_close()

    _metrics_http: WSGIServer | None = None
    _pollers: Pollers | None = None
    _feeds: FeedWatcher | None = None
    _stopping: threading.Thread | None = None

    def stop_soon(self, grace: float = 10.0) -> None:
        """Starts `stop` on its own thread (a signal handler must not block); a second call
        changes nothing."""
        if self._stopping is None:
            self._stopping = threading.Thread(target=self.stop, args=(grace,), daemon=True)
            self._stopping.start()

    def wait(self) -> None:
        """Returns when the server has stopped and, after `stop_soon`, everything behind it."""
        self.server.wait()
        if self._stopping is not None:
            self._stopping.join()


def open_inventory(redis_url: str | None, metrics: Metrics | None = None) -> InventoryStore:
    """The inventory store: Redis at `redis_url`, or in memory without one; every call timed
    and traced when `metrics` are kept."""
    store: InventoryStore = RedisStore.from_url(redis_url) if redis_url else MemoryStore()
    return instrumented(store, metrics) if metrics is not None else store


def build_services(
    redis_url: str | None = None,
    rules_path: str | None = None,
    clock: Clock | None = None,
    metrics: Metrics | None = None,
    channel_fences: Mapping[str, frozenset[NodeType]] | None = None,
) -> Services:
    """Services over Redis (`redis_url`) or memory, with `rules_path` as the default rule set
    and each sales channel's node types (`channel_fences`) on top of every rule set.

    A rules file is published at start unless the store already holds the same text, so several
    processes started with the same file publish it once.
    """
    store = open_inventory(redis_url, metrics)
    text = Path(rules_path).read_text() if rules_path else default_rules_text()
    services = Services.build(
        store, clock or SystemClock(), parse_rules(text), text, channel_fences=channel_fences
    )
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


@dataclass(frozen=True)
class Guard:
    """What `access_guard` decided: the interceptors, TLS credentials, and a development
    token if one was made."""

    inner: list[grpc.ServerInterceptor]
    credentials: grpc.ServerCredentials | None
    dev_token: str | None
    http: HttpGate


def access_guard(config: ServeConfig, clock: Clock) -> Guard:
    """The access layer `config.access` asks for, or `AccessRefused`/`NotProductionReady` before
    anything is bound: no auth off loopback, no production without TLS and live callers.

    With auth over the in-memory store there is nobody to register callers, so a development
    admin token is made and returned for the operator to use (never in production)."""
    access = config.access
    if not access.auth and not access.production:
        for host in (config.host, config.http_host if config.http_port is not None else None):
            if host is not None and host not in LOOPBACK:
                raise AccessRefused(
                    f"refusing to listen on {host} with authentication off: every call "
                    "would be open to the network; add --auth (tokens or mTLS), or listen on "
                    "127.0.0.1"
                )
        return Guard([], None, None, HttpGate.open(clock))
    registry = open_registry(config.redis_url)
    dev_token = None
    if config.redis_url is None and not access.production:
        dev_token = dev_admin_token(registry, clock)
    if access.production:
        production_ready(tls_cert=access.tls_cert, tls_key=access.tls_key, registry=registry)
    credentials = (
        server_credentials(access.tls_cert, access.tls_key, access.tls_client_ca)
        if access.tls_cert and access.tls_key
        else None
    )
    limits = RateLimits(access.rate, access.burst)
    audit = open_audit(config.redis_url)
    inner = build_access(registry, audit, limits, clock)
    return Guard(inner, credentials, dev_token, HttpGate(registry, audit, clock, limits))


def start(config: ServeConfig) -> Running:
    """Builds and starts one server process as `config` says.

    The port is bound before anything is written or started: a port another process holds
    raises `PortInUse` (unless every process on it runs with `reuse_port`), and the demo network
    is only loaded by a process that got its port. Access settings that do not fit are refused
    before that (`access_guard`)."""
    clock = SystemClock()
    guard = access_guard(config, clock)
    telemetry = config.telemetry
    if telemetry.log_format is not None:
        configure_logging(telemetry.log_format)
    configure_tracing(telemetry.trace_exporter, telemetry.otlp_endpoint)
    metrics = Metrics() if telemetry.metrics_port is not None else None
    channels = load_channel_file(config.orders, load_workflow_file(config.orders))
    services = build_services(
        config.redis_url, config.rules, clock, metrics, channel_fences(channels)
    )
    orders = OrderRuntime.build(services, config.orders, services.clock, channels)
    try:
        server = AllocationServer(
            services,
            host=config.host,
            port=config.port,
            threads=config.threads,
            extra=[
                orders.register,
                lambda grpc_server: register_customers(
                    Customers(orders.store, services.clock), grpc_server
                ),
            ],
            reuse_port=config.reuse_port,
            inner=guard.inner,
            credentials=guard.credentials,
            outer=[TelemetryInterceptor(metrics)] if metrics is not None else [],
            on_expired=metrics.reservations.labels("EXPIRED").inc if metrics else None,
        )
        http, metrics_port = None, None
        if metrics is not None and telemetry.metrics_port is not None:
            where = f"{telemetry.metrics_host}:{telemetry.metrics_port}"
            try:
                http, metrics_port = metrics.serve(telemetry.metrics_host, telemetry.metrics_port)
            except OSError as taken:  # bound before anything starts, like the gRPC port
                server.stop(0)
                raise PortInUse(where) from taken
        intake = build_intake(
            orders.channels,
            orders.connected,
            orders.flow,
            services.inventory,
            orders.outbox,
            config.redis_url,
        )
        edge = None
        if config.http_port is not None:
            try:
                edge = http_edge(config, guard, services, orders, intake, metrics)
            except PortInUse:
                server.stop(0)
                if http is not None:
                    http.shutdown()
                    http.server_close()
                raise
    except PortInUse:
        orders.stop_peers()
        raise
    seeded = seed_demo(services) if config.demo else False
    server.start()
    orders.start()
    running = Running(server, orders, seeded, guard.dev_token, metrics, metrics_port, edge, intake)
    running._metrics_http = http
    if edge is not None:
        edge.start()
    if config.poll and intake.polled():
        running._pollers = Pollers(intake)
        running._pollers.start()
    if config.feed_dir:
        running._feeds = FeedWatcher(services, Path(config.feed_dir))
        running._feeds.start()
    return running


def http_edge(
    config: ServeConfig,
    guard: Guard,
    services: Services,
    orders: OrderRuntime,
    intake: ChannelIntake,
    metrics: Metrics | None,
) -> HttpServer:
    """The HTTP edge, its port bound (`PortInUse`), not yet serving; same TLS as gRPC."""
    app = build_app(
        HttpDeps(
            orders=orders.servicer(),
            intake=intake,
            gate=guard.http,
            healthy=services.store_reachable,
            metrics=metrics,
            promise=PromiseServicer(Promises(services.planner)),
        )
    )
    access = config.access
    assert config.http_port is not None
    return HttpServer(
        app,
        config.http_host,
        config.http_port,
        tls_cert=access.tls_cert,
        tls_key=access.tls_key,
        tls_client_ca=access.tls_client_ca,
        reuse_port=config.reuse_port,
    )
