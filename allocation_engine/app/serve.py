"""The composition root of `serve`: one process's stores, services, gRPC server and workflow.

`ServeConfig` says what to run (every choice `allocation-engine serve` offers); `start` picks the
adapters for it (memory or Redis, the rules file, the demo network) and starts everything;
`Running.stop` stops it gracefully. Tests, benchmarks and the CLI all start a server this way, so
what they run is what production runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from allocation_engine.adapters.clock import SystemClock
from allocation_engine.adapters.memory.inventory import MemoryStore
from allocation_engine.adapters.redis.inventory import RedisStore
from allocation_engine.api.server import AllocationServer, PortInUse
from allocation_engine.app.demo import demo_network, demo_positions
from allocation_engine.app.orders import OrderConfig, OrderRuntime
from allocation_engine.engine import parse_rules
from allocation_engine.engine.rules import default_rules_text
from allocation_engine.ports.clock import Clock
from allocation_engine.ports.inventory import InventoryStore, SnapshotLine
from allocation_engine.service import Services


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


@dataclass
class Running:
    """A started server process: the gRPC server with its order workflow."""

    server: AllocationServer
    orders: OrderRuntime
    seeded: bool  # the demo network was loaded into an empty store

    @property
    def address(self) -> str:
        return self.server.address

    def stop(self, grace: float = 10.0) -> None:
        """Health goes NOT_SERVING, new calls are refused, calls in flight finish; then the
        outbox dispatcher stops."""
        self.server.stop(grace)
        self.orders.stop()

    def wait(self) -> None:
        self.server.wait()


def open_inventory(redis_url: str | None) -> InventoryStore:
    """The inventory store: Redis at `redis_url`, or in memory without one."""
    return RedisStore.from_url(redis_url) if redis_url else MemoryStore()


def build_services(
    redis_url: str | None = None,
    rules_path: str | None = None,
    clock: Clock | None = None,
) -> Services:
    """Services over Redis (`redis_url`) or memory, with `rules_path` as the default rule set.

    A rules file is published at start unless the store already holds the same text, so several
    processes started with the same file publish it once.
    """
    store = open_inventory(redis_url)
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


def start(config: ServeConfig) -> Running:
    """Builds and starts one server process as `config` says.

    The port is bound before anything is written or started: a port another process holds
    raises `PortInUse` (unless every process on it runs with `reuse_port`), and the demo network
    is only loaded by a process that got its port."""
    services = build_services(config.redis_url, config.rules)
    orders = OrderRuntime.build(services, config.orders, services.clock)
    try:
        server = AllocationServer(
            services,
            host=config.host,
            port=config.port,
            threads=config.threads,
            extra=[orders.register],
            reuse_port=config.reuse_port,
        )
    except PortInUse:
        if orders.card_peer is not None:
            orders.card_peer.stop()
        raise
    seeded = seed_demo(services) if config.demo else False
    server.start()
    orders.start()
    return Running(server, orders, seeded)
