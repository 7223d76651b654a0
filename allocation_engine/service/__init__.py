"""The service layer: use cases the gRPC edge calls, over the engine and an `InventoryStore`.

No protobuf or gRPC here: `server.py` decodes requests into engine types, calls these, and encodes
the answers. `Services.build` wires them to one store and one clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from allocation_engine.engine import NodeType, RuleSet
from allocation_engine.errors import StoreUnavailable
from allocation_engine.ports.clock import Clock
from allocation_engine.ports.inventory import InventoryStore
from allocation_engine.service.expiry import expire_due
from allocation_engine.service.inventory import InventoryFeeds
from allocation_engine.service.planner import Planner
from allocation_engine.service.reservations import Reservations
from allocation_engine.service.rules import RulesAdmin
from allocation_engine.service.supply import SupplyFeeds, SupplyListener


@dataclass(frozen=True)
class Services:
    store: InventoryStore
    clock: Clock
    planner: Planner
    reservations: Reservations
    inventory: InventoryFeeds
    rules: RulesAdmin
    supply_listeners: list[SupplyListener] = field(default_factory=list)

    @property
    def supply(self) -> SupplyFeeds:
        """Incoming supply and available-to-promise (stateless over the store and planner);
        `supply_listeners` hear of the reservations each receipt or revision touched."""
        return SupplyFeeds(self.store, self.planner, self.supply_listeners)

    @classmethod
    def build(
        cls,
        store: InventoryStore,
        clock: Clock,
        default_rules: RuleSet,
        default_rules_text: str | None = None,
        default_ttl_seconds: float = 900.0,
        channel_fences: Mapping[str, frozenset[NodeType]] | None = None,
    ) -> Services:
        planner = Planner(store, clock, default_rules, channel_fences)
        return cls(
            store=store,
            clock=clock,
            planner=planner,
            reservations=Reservations(store, planner, clock, default_ttl_seconds),
            inventory=InventoryFeeds(store, planner),
            rules=RulesAdmin(store, planner, default_rules_text),
        )

    def store_reachable(self) -> bool:
        """Whether the backing store answers right now (what the health check reports)."""
        try:
            self.store.ping()
        except StoreUnavailable:
            return False
        return True

    def sweep_expired(self) -> int:
        """Expires the reservations whose time is up; how many. A store that does not answer
        expires none (health reports it; the next sweep catches up)."""
        try:
            return expire_due(self.store, self.clock.now())
        except StoreUnavailable:
            return 0


__all__ = ["InventoryFeeds", "Planner", "Reservations", "RulesAdmin", "Services"]
