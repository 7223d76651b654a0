"""Stock per node and sku, as the engine sees it: units available to promise.

available = max(0, on_hand - reserved - safety_stock), the definition commercetools, Shopify,
Saleor and Magento MSI share. Stores own the positions and the holds; the engine only reads an
`Inventory` snapshot of the skus an order needs, kept as one sparse column per sku.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from allocation_engine.engine.network import Network
from allocation_engine.errors import InvalidInput, ProblemCollector


@dataclass(frozen=True)
class InventoryPosition:
    """One (node, sku) position: physical stock, units held for orders, and the buffer kept back.

    Bad fields are named from the position down (`sku`, `on_hand`); collections of positions name
    each one as `position[node_id, sku]`.
    """

    node_id: str
    sku: str
    on_hand: int
    reserved: int = 0
    safety_stock: int = 0

    def __post_init__(self) -> None:
        problems = ProblemCollector()
        if not isinstance(self.sku, str) or not self.sku:
            problems.add("sku", self.sku, "must be a non-empty string")
        for name in ("on_hand", "reserved", "safety_stock"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                problems.add(name, value, "must be an integer >= 0")
        problems.raise_if_any()

    @property
    def available(self) -> int:
        return max(0, self.on_hand - self.reserved - self.safety_stock)


IndexArray = npt.NDArray[np.intp]
CountArray = npt.NDArray[np.int64]


@dataclass(frozen=True, eq=False)
class Inventory:
    """Available units per sku, as (node index, units) columns over one `Network`."""

    network: Network
    columns: Mapping[str, tuple[IndexArray, CountArray]] = field(repr=False)

    @classmethod
    def from_positions(cls, network: Network, positions: Iterable[InventoryPosition]) -> Inventory:
        """Builds the view from positions; unknown nodes and repeated positions are refused."""
        by_sku: dict[str, dict[int, int]] = {}
        problems = ProblemCollector()
        for p in positions:
            node = network.index.get(p.node_id)
            if node is None:
                problems.add(
                    f"position[{p.node_id!r}, {p.sku!r}].node_id", p.node_id, "unknown node"
                )
                continue
            column = by_sku.setdefault(p.sku, {})
            if node in column:
                problems.add(f"position[{p.node_id!r}, {p.sku!r}]", p.sku, "duplicate position")
            column[node] = p.available
        problems.raise_if_any()
        return cls._of(network, by_sku)

    @classmethod
    def from_available(
        cls, network: Network, available: Mapping[str, Mapping[str, int]]
    ) -> Inventory:
        """Builds the view from sku -> node id -> available units."""
        positions, problems = [], ProblemCollector()
        for sku, per_node in available.items():
            for node_id, units in per_node.items():
                try:
                    positions.append(InventoryPosition(node_id, sku, units))
                except InvalidInput as bad:
                    problems.extend(bad.under(f"position[{node_id!r}, {sku!r}].").problems)
        problems.raise_if_any()
        return cls.from_positions(network, positions)

    @classmethod
    def from_units(
        cls, network: Network, units: Mapping[str, Iterable[tuple[str, int]]]
    ) -> Inventory:
        """Builds the view from sku -> (node id, available units) pairs, as a store reads them.

        The per-request fast path of the service: no `InventoryPosition` per pair, the same
        refusals as `from_positions` (unknown node, repeated pair, negative units).
        """
        by_sku: dict[str, dict[int, int]] = {}
        problems = ProblemCollector()
        for sku, pairs in units.items():
            column = by_sku.setdefault(sku, {})
            for node_id, count in pairs:
                node = network.index.get(node_id)
                where = f"position[{node_id!r}, {sku!r}]"
                if node is None:
                    problems.add(f"{where}.node_id", node_id, "unknown node")
                elif node in column:
                    problems.add(where, sku, "duplicate position")
                elif not isinstance(count, int) or count < 0:
                    problems.add(f"{where}.available", count, "must be an integer >= 0")
                else:
                    column[node] = count
        problems.raise_if_any()
        return cls._of(network, by_sku)

    @classmethod
    def _of(cls, network: Network, by_sku: Mapping[str, Mapping[int, int]]) -> Inventory:
        columns = {}
        for sku, column in by_sku.items():
            nodes = np.fromiter(sorted(column), dtype=np.intp, count=len(column))
            units = np.fromiter((column[i] for i in nodes), dtype=np.int64, count=len(column))
            columns[sku] = (nodes, units)
        return cls(network, columns)

    @property
    def skus(self) -> frozenset[str]:
        return frozenset(self.columns)

    def matrix(self, skus: Sequence[str]) -> npt.NDArray[np.int64]:
        """Available units as a dense (nodes x skus) matrix; a sku nobody carries is an error."""
        problems = ProblemCollector()
        for j, sku in enumerate(skus):
            if sku not in self.columns:
                problems.add(f"lines[{j}].sku", sku, "unknown sku: no node carries it")
        problems.raise_if_any()
        out = np.zeros((len(self.network), len(skus)), dtype=np.int64)
        for j, sku in enumerate(skus):
            nodes, units = self.columns[sku]
            out[nodes, j] = units
        return out

    def available(self, node_id: str, sku: str) -> int:
        """Units of `sku` available at `node_id` (0 when the node holds none)."""
        nodes, units = self.columns.get(sku, (np.empty(0, np.intp), np.empty(0, np.int64)))
        hit = np.searchsorted(nodes, self.network.index[node_id])
        if hit < len(nodes) and nodes[hit] == self.network.index[node_id]:
            return int(units[hit])
        return 0

    def plus(self, added: Mapping[tuple[str, str], int]) -> Inventory:
        """A new view with (node id, sku) -> units added, e.g. incoming supply counted as if it
        were there (see dated.py); a sku nobody carried yet gets a column of its own."""
        by_sku: dict[str, dict[int, int]] = {}
        for (node_id, sku), units in added.items():
            if sku not in by_sku:
                nodes, counts = self.columns.get(sku, (np.empty(0, np.intp), np.empty(0, np.int64)))
                by_sku[sku] = dict(zip(nodes.tolist(), counts.tolist(), strict=True))
            column = by_sku[sku]
            node = self.network.index[node_id]
            column[node] = column.get(node, 0) + units
        return Inventory(self.network, {**self.columns, **self._of(self.network, by_sku).columns})

    def without(self, taken: Mapping[tuple[str, str], int]) -> Inventory:
        """A new view with (node id, sku) -> units taken out, as a plan would draw them down."""
        columns = dict(self.columns)
        for (node_id, sku), units in taken.items():
            nodes, counts = columns[sku]
            hit = int(np.searchsorted(nodes, self.network.index[node_id]))
            if (
                hit >= len(nodes)
                or nodes[hit] != self.network.index[node_id]
                or counts[hit] < units
            ):
                raise InvalidInput.one(f"taken[{node_id!r}, {sku!r}]", units, "more than available")
            counts = counts.copy()
            counts[hit] -= units
            columns[sku] = (nodes, counts)
        return Inventory(self.network, columns)
