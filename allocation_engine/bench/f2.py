"""F2: the single-order latency grid (lines x nodes x share of nodes stocking a sku).

Every cell is a set of independent orders, each planned once against fresh stock, so the numbers
are what one Allocate call costs. The network is generated over Germany around its 30 largest
cities (weight 1/rank, a Zipf stand-in for population), with the node mix of a real omnichannel
retailer:

- warehouses (3 %): broad range (they carry many skus), deep stock, no shipment limit;
- stores (the rest): thin stock (1 to 4 units), ship only within Germany, a handling cost, and a
  capacity of shipments left today (some are already full);
- drop-ship suppliers (5 %): few skus each, deep stock, a surcharge per package.

`share` is the expected fraction of all nodes that stock a given sku; the per-type carry
probabilities are scaled so the mix above yields exactly that share in expectation. Every sku is
stocked by at least one warehouse, so orders are fillable unless a fence says otherwise.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from itertools import product

import numpy as np

from allocation_engine.app.demo import CITIES
from allocation_engine.engine import Inventory, Network, Node, NodeType, Order, OrderLine, ShipTo

LINES = (1, 3, 8, 20)
NODES = (50, 1_000, 5_000)
SHARES = (0.05, 0.2, 0.5)
SEED = 20_150_501  # fixed: every run sees the same networks and orders

WAREHOUSE_SHARE = 0.03
SUPPLIER_SHARE = 0.05
# How many skus a node carries, relative to a store.
PROPENSITY = {NodeType.WAREHOUSE: 8.0, NodeType.STORE: 1.0, NodeType.SUPPLIER: 0.25}
# Units on hand where a node carries a sku: [low, high).
DEPTH = {NodeType.WAREHOUSE: (20, 400), NodeType.STORE: (1, 5), NodeType.SUPPLIER: (100, 1_000)}
CATALOGUE = 100_000  # sku ids an order draws its lines from
QUANTITIES, QUANTITY_P = (1, 2, 3), (0.8, 0.15, 0.05)
GERMANY = ((47.3, 55.0), (5.9, 15.0))  # latitude, longitude bounds


@dataclass(frozen=True)
class Cell:
    """One point of the grid."""

    nodes: int
    lines: int
    share: float

    @property
    def name(self) -> str:
        return f"F2-n{self.nodes}-l{self.lines}-s{self.share:g}"


@dataclass(frozen=True)
class Instance:
    """One order with the stock of its skus on the cell's network."""

    name: str
    network: Network
    inventory: Inventory
    order: Order


def grid(
    nodes: tuple[int, ...] = NODES,
    lines: tuple[int, ...] = LINES,
    shares: tuple[float, ...] = SHARES,
) -> list[Cell]:
    return [Cell(n, k, s) for n, k, s in product(nodes, lines, shares)]


def near_cities(rng: np.random.Generator, count: int) -> tuple[np.ndarray, np.ndarray]:
    """`count` points scattered around German cities, more around the bigger ones."""
    weight = 1.0 / np.arange(1, len(CITIES) + 1)
    city = rng.choice(len(CITIES), size=count, p=weight / weight.sum())
    centre = np.array([(lat, lon) for _, lat, lon in CITIES])[city]
    lat = np.clip(centre[:, 0] + rng.normal(0.0, 0.15, count), *GERMANY[0])
    lon = np.clip(centre[:, 1] + rng.normal(0.0, 0.22, count), *GERMANY[1])
    return lat, lon


@lru_cache(maxsize=4)
def network(size: int, seed: int = SEED) -> Network:
    """The F2 network of `size` nodes (cached: building 5,000 nodes takes a moment)."""
    rng = np.random.default_rng([seed, size])
    warehouses = max(1, round(WAREHOUSE_SHARE * size))
    suppliers = max(1, round(SUPPLIER_SHARE * size))
    lat, lon = near_cities(rng, size)
    nodes = []
    for i in range(size):
        if i < warehouses:
            nodes.append(Node(f"WH-{i:04d}", NodeType.WAREHOUSE, lat[i], lon[i], "DE"))
        elif i < warehouses + suppliers:
            nodes.append(
                Node(
                    f"SUP-{i:04d}",
                    NodeType.SUPPLIER,
                    lat[i],
                    lon[i],
                    "DE",
                    shipment_surcharge=round(float(rng.uniform(1.0, 3.0)), 2),
                )
            )
        else:
            nodes.append(
                Node(
                    f"ST-{i:04d}",
                    NodeType.STORE,
                    lat[i],
                    lon[i],
                    "DE",
                    ships_to=frozenset({"DE"}),
                    unit_handling_cost=round(float(rng.uniform(0.15, 0.6)), 2),
                    capacity=int(rng.choice([0, 2, 5, 10, 20], p=[0.05, 0.15, 0.3, 0.3, 0.2])),
                )
            )
    return Network.of(nodes)


def carry_probability(network: Network, share: float) -> np.ndarray:
    """Per node, the chance it carries a given sku, so that `share` of all nodes do on average.

    Each type carries in proportion to its PROPENSITY, capped at 1: solve sum(min(1, f*r)) =
    share * nodes for the factor f by bisection (the left side grows with f).
    """
    propensity = np.array([PROPENSITY[n.type] for n in network.nodes])
    target = share * len(network)
    low, high = 0.0, 1.0 / propensity.min()
    for _ in range(60):
        mid = (low + high) / 2
        low, high = (mid, high) if np.minimum(1.0, mid * propensity).sum() < target else (low, mid)
    return np.asarray(np.minimum(1.0, high * propensity))


def stock(
    rng: np.random.Generator,
    network: Network,
    carry: np.ndarray,
    skus: list[str],
    depth: dict[NodeType, tuple[int, int]] = DEPTH,
) -> Inventory:
    """Random stock of `skus` (as (node, units) columns, units in `depth`'s [low, high) by node
    type), every sku at one warehouse at least."""
    kinds = [n.type for n in network.nodes]
    low = np.array([depth[k][0] for k in kinds])
    high = np.array([depth[k][1] for k in kinds])
    warehouses = np.flatnonzero([k is NodeType.WAREHOUSE for k in kinds])
    columns = {}
    for sku in skus:
        carries = rng.random(len(network)) < carry
        if not carries[warehouses].any():
            carries[rng.choice(warehouses)] = True
        nodes = np.flatnonzero(carries)
        columns[sku] = (nodes.astype(np.intp), rng.integers(low[nodes], high[nodes]))
    return Inventory(network, columns)


def instances(cell: Cell, count: int, seed: int = SEED) -> Iterator[Instance]:
    """`count` orders of the cell, each with fresh stock; the same seed gives the same orders."""
    net = network(cell.nodes, seed)
    carry = carry_probability(net, cell.share)
    for i in range(count):
        rng = np.random.default_rng([seed, cell.nodes, cell.lines, round(cell.share * 100), i])
        skus = [f"SKU-{k:06d}" for k in rng.choice(CATALOGUE, size=cell.lines, replace=False)]
        quantity = rng.choice(QUANTITIES, size=cell.lines, p=QUANTITY_P)
        lat, lon = near_cities(rng, 1)
        order = Order(
            id=f"{cell.name}-{i:03d}",
            lines=tuple(OrderLine(sku, int(q)) for sku, q in zip(skus, quantity, strict=True)),
            ship_to=ShipTo(float(lat[0]), float(lon[0]), "DE"),
        )
        yield Instance(order.id, net, stock(rng, net, carry, skus), order)
