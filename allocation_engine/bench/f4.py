"""F4 and F5: the order shapes the F2 grid leaves out, bulk B2B orders and long baskets.

F4 (bulk): 2 to 8 lines of 40 to 1,000 units each (log-uniform, so most lines ask for a few
hundred), the wholesale orders a B2B channel sends. Stock is as a distributor holds it: warehouses
hundreds of units of a sku, drop-ship suppliers up to two thousand, stores a handful, so a line is
often larger than any single node holds and the plan spreads over several nodes. Half the orders
draw their skus thinly stocked (5 % of nodes carry them), half broadly (20 %); one in four is a
B2B order proper (warehouses only, the default rule set's fence), which may then be short.

F5 (long baskets): 20 to 60 lines of 1 or 2 units, on the F2 stock depths: the replenishment
order of a shop or a large consumer basket.

Both use the F2 network (German cities, the same node mix); every order gets fresh stock of its
own skus, and a fixed seed gives the same orders on every run. `Family.share` draws every order's
skus at one share of nodes instead (F5 thinner than 20 %, say: then one warehouse rarely holds
the whole basket and the plan splits).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from allocation_engine.bench import f2
from allocation_engine.engine import CustomerType, Network, NodeType, Order, OrderLine, ShipTo

BULK_LINES = (2, 8)  # lines per order, inclusive
BULK_UNITS = (40, 1_000)  # units per line, inclusive, log-uniform
BULK_SHARES = (0.05, 0.2)  # share of nodes carrying a sku (alternating)
BULK_DEPTH = {
    NodeType.WAREHOUSE: (20, 500),
    NodeType.STORE: (1, 6),
    NodeType.SUPPLIER: (100, 1_000),
}
B2B_EVERY = 4  # every fourth bulk order is B2B (warehouses only)

LONG_LINES = (20, 60)  # lines per order, inclusive
LONG_SHARE = 0.1
LONG_QUANTITIES, LONG_P = (1, 2), (0.8, 0.2)

NODES = (1_000, 5_000)
SEED = 20_260_402


@dataclass(frozen=True)
class Family:
    """One family at one network size."""

    kind: str  # "bulk" (F4) or "long" (F5)
    nodes: int
    # Share of nodes carrying each sku, for every order; None: the family's own (BULK_SHARES
    # alternating for F4, LONG_SHARE for F5). Set, it shows in the name (and the order ids).
    share: float | None = None

    @property
    def name(self) -> str:
        name = f"{'F4' if self.kind == 'bulk' else 'F5'}-n{self.nodes}"
        return name if self.share is None else f"{name}-s{self.share:g}"


def instances(family: Family, count: int, seed: int = SEED) -> Iterator[f2.Instance]:
    """`count` orders of the family, each with fresh stock of its skus."""
    net = f2.network(family.nodes, f2.SEED)
    for i in range(count):
        rng = np.random.default_rng([seed, family.nodes, 4 if family.kind == "bulk" else 5, i])
        if family.kind == "bulk":
            yield _bulk(rng, net, family, i)
        else:
            yield _long(rng, net, family, i)


def _bulk(rng: np.random.Generator, net: Network, family: Family, i: int) -> f2.Instance:
    lines = int(rng.integers(BULK_LINES[0], BULK_LINES[1] + 1))
    low, high = np.log(BULK_UNITS[0]), np.log(BULK_UNITS[1] + 1)
    quantity = np.floor(np.exp(rng.uniform(low, high, lines))).astype(int)
    quantity = np.clip(quantity, *BULK_UNITS)
    share = BULK_SHARES[i % len(BULK_SHARES)] if family.share is None else family.share
    customer = CustomerType.B2B if i % B2B_EVERY == B2B_EVERY - 1 else CustomerType.B2C
    skus = _skus(rng, lines)
    inventory = f2.stock(rng, net, f2.carry_probability(net, share), skus, BULK_DEPTH)
    order = _order(rng, f"{family.name}-{i:03d}", skus, quantity, customer)
    return f2.Instance(order.id, net, inventory, order)


def _long(rng: np.random.Generator, net: Network, family: Family, i: int) -> f2.Instance:
    lines = int(rng.integers(LONG_LINES[0], LONG_LINES[1] + 1))
    quantity = rng.choice(LONG_QUANTITIES, size=lines, p=LONG_P)
    skus = _skus(rng, lines)
    share = LONG_SHARE if family.share is None else family.share
    inventory = f2.stock(rng, net, f2.carry_probability(net, share), skus, f2.DEPTH)
    order = _order(rng, f"{family.name}-{i:03d}", skus, quantity, CustomerType.B2C)
    return f2.Instance(order.id, net, inventory, order)


def _skus(rng: np.random.Generator, lines: int) -> list[str]:
    return [f"SKU-{k:06d}" for k in rng.choice(f2.CATALOGUE, size=lines, replace=False)]


def _order(
    rng: np.random.Generator,
    order_id: str,
    skus: list[str],
    quantity: np.ndarray,
    customer: CustomerType,
) -> Order:
    lat, lon = f2.near_cities(rng, 1)
    return Order(
        id=order_id,
        lines=tuple(OrderLine(s, int(q)) for s, q in zip(skus, quantity, strict=True)),
        ship_to=ShipTo(float(lat[0]), float(lon[0]), "DE"),
        customer_type=customer,
    )
