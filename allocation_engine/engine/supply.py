"""Stock on its way: a purchase order or transfer arriving at a node, and what a plan takes of it.

Days count from today: a lot with `day=3` can ship three days from now, which is when a
shipment promised from it leaves. A plan never takes more of a lot than its `units`.
"""

from __future__ import annotations

from dataclasses import dataclass

from allocation_engine.engine.limits import MAX_UNITS
from allocation_engine.errors import ProblemCollector

MAX_SUPPLY_DAYS = 365
"""Furthest a supply may be expected (days from today): a year covers every pre-order horizon."""


@dataclass(frozen=True)
class IncomingLot:
    """`units` of `sku` expected at `node_id` and shippable from `day` days from today."""

    id: str
    node_id: str
    sku: str
    units: int
    day: int

    def __post_init__(self) -> None:
        problems = ProblemCollector()
        for name in ("id", "node_id", "sku"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value:
                problems.add(name, value, "must be a non-empty string")
        if (
            not isinstance(self.units, int)
            or isinstance(self.units, bool)
            or not 0 < self.units <= MAX_UNITS
        ):
            problems.add("units", self.units, f"must be an integer in [1, {MAX_UNITS}]")
        if (
            not isinstance(self.day, int)
            or isinstance(self.day, bool)
            or not 0 <= self.day <= MAX_SUPPLY_DAYS
        ):
            problems.add("day", self.day, f"must be an integer in [0, {MAX_SUPPLY_DAYS}]")
        problems.raise_if_any()


@dataclass(frozen=True)
class LotTake:
    """Units of one sku a shipment takes from one incoming lot (the rest comes off the shelf)."""

    lot_id: str
    sku: str
    units: int
