"""The fulfilment network: warehouses, stores and drop-ship suppliers, as validated nodes.

A `Network` sorts its nodes by id and turns their attributes into numpy arrays once, so every
order planned against it reads columns instead of looping over node objects.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from itertools import pairwise

import numpy as np
import numpy.typing as npt

from allocation_engine.engine.limits import MAX_COST
from allocation_engine.errors import InvalidInput, ProblemCollector


class NodeType(StrEnum):
    """What kind of place ships the goods."""

    WAREHOUSE = "warehouse"
    STORE = "store"
    SUPPLIER = "supplier"  # drop-ship vendor


NODE_TYPES: tuple[NodeType, ...] = tuple(NodeType)


@dataclass(frozen=True)
class Node:
    """One place that can ship: its location, where it ships to, its costs and today's capacity.

    `ships_to` lists ISO country codes; empty means anywhere. `capacity` is the number of
    shipments it can still take today (None = unlimited); a node at 0 is fenced out.
    `unit_handling_cost` (per unit) and `shipment_surcharge` (per package) lie in [0, 10^6]
    (`limits.MAX_COST`).
    Bad fields are named from the node down (`latitude`, `capacity`); a caller holding nodes in
    a list adds where (`nodes[3].`).
    """

    id: str
    type: NodeType
    latitude: float
    longitude: float
    country: str
    ships_to: frozenset[str] = frozenset()
    unit_handling_cost: float = 0.0
    shipment_surcharge: float = 0.0
    capacity: int | None = None
    active: bool = True
    tags: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if not isinstance(self.type, NodeType) and self.type in {t.value for t in NODE_TYPES}:
            object.__setattr__(self, "type", NodeType(self.type))  # accept "store" as well
        for name in ("ships_to", "tags"):
            object.__setattr__(self, name, frozenset(getattr(self, name)))
        problems = ProblemCollector()
        check_node(self, problems)
        problems.raise_if_any()


def check_node(node: Node, problems: ProblemCollector) -> None:
    """Adds every problem with one node's fields to `problems`, named from the node down."""
    if not isinstance(node.id, str) or not node.id.strip():
        problems.add("id", node.id, "must be a non-empty string")
    if not isinstance(node.type, NodeType):
        problems.add("type", node.type, f"must be one of {[t.value for t in NODE_TYPES]}")
    check_coordinates(node.latitude, node.longitude, problems)
    for name in ("unit_handling_cost", "shipment_surcharge"):
        value = getattr(node, name)
        if not _finite(value) or not 0 <= value <= MAX_COST:
            problems.add(name, value, f"must be a finite number in [0, {MAX_COST:g}]")
    if node.capacity is not None and (not isinstance(node.capacity, int) or node.capacity < 0):
        problems.add("capacity", node.capacity, "must be an integer >= 0 or unset")


def check_coordinates(lat: float, lon: float, problems: ProblemCollector, prefix: str = "") -> None:
    """Latitude in [-90, 90] and longitude in [-180, 180], both finite (named `prefix`latitude)."""
    if not _finite(lat) or not -90.0 <= lat <= 90.0:
        problems.add(f"{prefix}latitude", lat, "must be a finite number in [-90, 90]")
    if not _finite(lon) or not -180.0 <= lon <= 180.0:
        problems.add(f"{prefix}longitude", lon, "must be a finite number in [-180, 180]")


def _finite(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

UNLIMITED = np.iinfo(np.int64).max


@dataclass(frozen=True, eq=False)
class Network:
    """All nodes, sorted by id, with their attributes as arrays (index = position in `nodes`)."""

    nodes: tuple[Node, ...]
    index: Mapping[str, int] = field(repr=False)
    latitude: FloatArray = field(repr=False)
    longitude: FloatArray = field(repr=False)
    type_code: npt.NDArray[np.int8] = field(repr=False)
    active: BoolArray = field(repr=False)
    capacity: IntArray = field(repr=False)
    unit_handling_cost: FloatArray = field(repr=False)
    shipment_surcharge: FloatArray = field(repr=False)
    ships_anywhere: BoolArray = field(repr=False)
    ships_to_country: Mapping[str, BoolArray] = field(repr=False)

    @classmethod
    def of(cls, nodes: Iterable[Node]) -> Network:
        """Builds the network; duplicate ids are refused with every duplicate named."""
        ordered = tuple(sorted(nodes, key=lambda n: n.id))
        problems = ProblemCollector()
        for previous, node in pairwise(ordered):
            if previous.id == node.id:
                problems.add("nodes.id", node.id, "duplicate node id")
        problems.raise_if_any()
        countries = sorted({c for n in ordered for c in n.ships_to})
        ships_to = {
            c: np.fromiter((c in n.ships_to for n in ordered), bool, len(ordered))
            for c in countries
        }
        return cls(
            nodes=ordered,
            index={n.id: i for i, n in enumerate(ordered)},
            latitude=np.array([n.latitude for n in ordered], dtype=np.float64),
            longitude=np.array([n.longitude for n in ordered], dtype=np.float64),
            type_code=np.array([NODE_TYPES.index(n.type) for n in ordered], dtype=np.int8),
            active=np.array([n.active for n in ordered], dtype=bool),
            capacity=np.array(
                [UNLIMITED if n.capacity is None else n.capacity for n in ordered], dtype=np.int64
            ),
            unit_handling_cost=np.array([n.unit_handling_cost for n in ordered], dtype=np.float64),
            shipment_surcharge=np.array([n.shipment_surcharge for n in ordered], dtype=np.float64),
            ships_anywhere=np.array([not n.ships_to for n in ordered], dtype=bool),
            ships_to_country=ships_to,
        )

    def __len__(self) -> int:
        return len(self.nodes)

    def node(self, node_id: str) -> Node:
        """The node with this id; an unknown id is an InvalidInput naming it."""
        try:
            return self.nodes[self.index[node_id]]
        except KeyError:
            raise InvalidInput.one("node_id", node_id, "unknown node") from None

    def ships_to(self, country: str) -> BoolArray:
        """Which nodes ship to `country`."""
        listed = self.ships_to_country.get(country)
        return self.ships_anywhere if listed is None else self.ships_anywhere | listed
