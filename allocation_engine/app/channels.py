"""Wiring of the sales channels: the platform adapters a channels file names, their secrets from
the environment, the intake the HTTP edge calls, the confirmations the outbox sends, and the
threads that poll importers.

`PLATFORMS` is the one list of platform kinds and the adapter module of each (every module offers
`CREDENTIALS`, `OPTIONS`, `connect`; `adapters.channels`).
"""

from __future__ import annotations

import importlib
import logging
import os
import threading
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from allocation_engine.adapters.channels import Connection
from allocation_engine.adapters.geo.postal_codes import PostalCodeTable
from allocation_engine.adapters.http_client import RetryPolicy
from allocation_engine.adapters.memory.cursors import MemoryCursors
from allocation_engine.adapters.redis.cursors import RedisCursors
from allocation_engine.engine.network import NodeType
from allocation_engine.errors import InvalidInput, ProblemCollector
from allocation_engine.ports.channels import (
    ChannelCursors,
    ChannelSettings,
    OrderImporter,
    ShipmentConfirmer,
    WebhookSource,
)
from allocation_engine.ports.orders import Outbox
from allocation_engine.service.channels.config import Channels, PlatformSpec, parse_channels
from allocation_engine.service.channels.intake import ChannelIntake
from allocation_engine.service.inventory import InventoryFeeds
from allocation_engine.service.orders.flow import OrderFlow

log = logging.getLogger("allocation_engine.channels")

PLATFORMS: dict[str, str] = {
    "shopify": "shopify",
    "shopware": "shopware",
    "magento": "magento",
    "bigcommerce": "bigcommerce",
    "amazon": "amazon",
    "ebay": "ebay",
    "aliexpress": "aliexpress",
    "pos": "pos",
    "app": "pos",
}
"""Channel kind -> its adapter module under `allocation_engine.adapters.channels`."""


def platform_module(kind: str) -> ModuleType:
    return importlib.import_module(f"allocation_engine.adapters.channels.{PLATFORMS[kind]}")


def platform_specs() -> dict[str, PlatformSpec]:
    """What each platform's adapter needs of a channel, for validating channel files."""
    out = {}
    for kind in PLATFORMS:
        module = platform_module(kind)
        out[kind] = PlatformSpec(
            credentials=tuple(module.CREDENTIALS),
            options=dict(module.OPTIONS),
            needs_base_url=getattr(module, "NEEDS_BASE_URL", True),
        )
    return out


def load_channels(path: str | Path | None, workflows: Collection[str]) -> Channels:
    """The validated channel file at `path` (no file: no channels)."""
    if path is None:
        return Channels()
    return parse_channels(Path(path).read_text(), platform_specs(), workflows)


def channel_fences(channels: Channels) -> dict[str, frozenset[NodeType]]:
    """The node types each channel may be served from, for the planner."""
    return {c.name: frozenset(NodeType(t) for t in c.node_types) for c in channels if c.node_types}


def channel_workflows(channels: Channels) -> dict[str, str]:
    return {c.name: c.workflow for c in channels if c.workflow}


def resolve_secrets(
    settings: ChannelSettings, environ: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The channel's secrets from the environment; `InvalidInput` naming each variable that is
    not set (the server refuses to start rather than take unsigned webhooks)."""
    env = os.environ if environ is None else environ
    problems = ProblemCollector()
    out: dict[str, str] = {}
    for role, var in settings.credentials.items():
        out[role] = env.get(var, "")
        if not out[role]:
            problems.add(f"channel[{settings.name}].credentials.{role}", var, "is not set")
    problems.raise_if_any()
    return out


@dataclass(frozen=True)
class Connected:
    """Every channel's adapter roles, by channel name."""

    webhooks: dict[str, WebhookSource]
    importers: dict[str, OrderImporter]
    confirmers: dict[str, ShipmentConfirmer]


def connect_all(
    channels: Channels,
    environ: Mapping[str, str] | None = None,
    retry: RetryPolicy | None = None,
) -> Connected:
    """Connects every channel (secrets from `environ`; nothing is called yet); every unset
    secret and every option its adapter cannot read named at once."""
    problems = ProblemCollector()
    connections: dict[str, Connection] = {}
    for settings in channels:
        try:
            secrets = resolve_secrets(settings, environ)
        except InvalidInput as bad:
            problems.extend(bad.problems)
            continue
        try:
            connections[settings.name] = platform_module(settings.kind).connect(
                settings, secrets, retry=retry
            )
        except InvalidInput as bad:  # an option the platform's adapter cannot read
            problems.extend(bad.under(f"channel[{settings.name}].").problems)
    problems.raise_if_any()
    return Connected(
        webhooks={n: c.webhook for n, c in connections.items() if c.webhook is not None},
        importers={n: c.importer for n, c in connections.items() if c.importer is not None},
        confirmers={n: c.confirmer for n, c in connections.items() if c.confirmer is not None},
    )


def open_cursors(redis_url: str | None) -> ChannelCursors:
    return RedisCursors.from_url(redis_url) if redis_url else MemoryCursors()


def build_intake(
    channels: Channels,
    connected: Connected,
    flow: OrderFlow,
    inventory: InventoryFeeds,
    receipts: Outbox,
    redis_url: str | None,
) -> ChannelIntake:
    return ChannelIntake(
        channels,
        flow,
        inventory,
        receipts,
        open_cursors(redis_url),
        PostalCodeTable(),
        connected.webhooks,
        connected.importers,
    )


class Pollers(threading.Thread):
    """Polls every importer on its channel's schedule until `stop()`. A failed poll (the
    platform down, an order that cannot be mapped) is logged and tried again at the next turn,
    from the same cursor."""

    def __init__(self, intake: ChannelIntake, tick: float = 1.0) -> None:
        super().__init__(name="channel-pollers", daemon=True)
        self._intake = intake
        self._tick = tick
        self._stopping = threading.Event()
        self._due = {c.name: 0.0 for c in intake.polled()}
        self._every = {c.name: c.poll_seconds for c in intake.polled()}

    def run(self) -> None:
        clock = self._intake.flow.clock
        while not self._stopping.is_set():
            for name, due in self._due.items():
                if self._stopping.is_set() or clock.now() < due:
                    continue
                self._due[name] = clock.now() + self._every[name]
                try:
                    placed = self._intake.poll(name)
                    if placed.orders:
                        log.info("channel %s: %d orders placed", name, len(placed.orders))
                except Exception:
                    log.exception("channel %s: poll failed; retried at the next turn", name)
            self._stopping.wait(self._tick)

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        if self.is_alive():
            self.join(timeout)
