"""TODO docstring."""

from __future__ import annotations

from pathlib import Path

from allocation_engine.adapters.clock import SystemClock
from allocation_engine.adapters.memory.inventory import MemoryStore
from allocation_engine.adapters.redis.inventory import RedisStore
from allocation_engine.app.demo import demo_network, demo_positions
from allocation_engine.engine import parse_rules
from allocation_engine.engine.rules import default_rules_text
from allocation_engine.ports.clock import Clock
from allocation_engine.ports.inventory import InventoryStore, SnapshotLine
from allocation_engine.service import Services


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
