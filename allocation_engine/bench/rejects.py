"""What a reroute is worth: an order history replayed while nodes reject a share of parcels.

Each order is planned on the stock (and node capacity) left by the ones before it; each of its
parcels is then rejected by its node with probability `share` (the node found no stock: the
held units are written off there, as `RejectShipment(reason=no_stock)` does). Two arms replay the
same history with the same draws:

* without reroute, an order with a rejected parcel is cancelled (what the platform did before
  rerouting, and what a rigid workflow still does);
* with reroute, the rejected units are re-planned at once without the rejecting nodes and within
  the order's fences (`orders.reroute.rest_of`, the workflow's own rule), up to `max_reroutes`
  times; a new parcel may be rejected too, with the same probability.

An order the arm cannot fill in full ends cancelled (its rest at least). The draws are keyed by
(order, round, parcel), so both arms reject the same first parcels; later rounds differ only
where the arms' stock does.
"""

from __future__ import annotations

import hashlib
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from allocation_engine.bench.harness import spend_capacity
from allocation_engine.engine import Inventory, Network, Order, Plan, RuleSet, Status, allocate
from allocation_engine.orders.reroute import Parcels, Refusal, rest_of

FILLED = frozenset({Status.OPTIMAL, Status.FEASIBLE})


@dataclass(frozen=True)
class Arm:
    """One replay's outcome: orders hit by a reject, those shipped in full in the end, reroutes
    made, and what the rerouted parcels cost on top of the plans they replaced."""

    orders: int
    planned: int  # orders the stock could fill when they arrived
    hit: int  # planned orders with at least one rejected parcel
    cancelled: int  # hit orders not shipped in full
    reroutes: int
    reroute_cost: float

    @property
    def saved(self) -> int:
        return self.hit - self.cancelled


@dataclass(frozen=True)
class Trial:
    """Both arms of one seed."""

    seed: int
    without: Arm
    with_reroute: Arm


def rejected(seed: int, order: int, round_: int, parcel: int, share: float) -> bool:
    """Whether that parcel is rejected: a draw fixed by its coordinates, the same in both arms."""
    digest = hashlib.blake2b(f"{seed}:{order}:{round_}:{parcel}".encode(), digest_size=8)
    return int.from_bytes(digest.digest(), "big") / 2**64 < share


def replay_rejects(
    orders: Sequence[Order],
    network: Network,
    inventory: Inventory,
    rules: RuleSet,
    *,
    share: float,
    seed: int,
    reroute: bool,
    max_reroutes: int = 2,
) -> Arm:
    """Replays `orders` with rejected parcels, rerouting them or not (see the module docstring)."""
    planned = hit = cancelled = reroutes = 0
    extra = 0.0
    for n, order in enumerate(orders):
        plan = allocate(order, network, inventory, rules)
        if plan.status not in FILLED or plan.shortfalls:
            continue
        planned += 1
        network, inventory = spend_capacity(network, inventory.without(plan.taken()), plan)
        rest, excluded, out = _rejects(plan, seed, n, 0, share)
        if not rest:
            continue
        hit += 1
        attempt = 0
        while rest and reroute and attempt < max_reroutes:
            attempt += 1
            asked = rest_of(order, rest, out, excluded, attempt, rules.shipment_limit)
            if isinstance(asked, Refusal):
                break
            again = allocate(asked, network, inventory, rules)
            if again.status not in FILLED or again.shortfalls:
                break
            reroutes += 1
            extra += again.total_cost
            network, inventory = spend_capacity(network, inventory.without(again.taken()), again)
            rest, failed, shipped = _rejects(again, seed, n, attempt, share)
            excluded |= failed
            out = Parcels(out.count + shipped.count, out.skus | shipped.skus)
        cancelled += bool(rest)
    return Arm(len(orders), planned, hit, cancelled, reroutes, extra)


def _rejects(
    plan: Plan, seed: int, order: int, round_: int, share: float
) -> tuple[dict[str, int], frozenset[str], Parcels]:
    """The units of the plan's rejected parcels, their nodes, and the parcels that went out."""
    rest: dict[str, int] = {}
    failed: set[str] = set()
    out = []
    for i, shipment in enumerate(plan.shipments):
        if rejected(seed, order, round_, i, share):
            failed.add(shipment.node_id)
            for line in shipment.lines:
                rest[line.sku] = rest.get(line.sku, 0) + line.quantity
        else:
            out.append(shipment)
    skus = frozenset(line.sku for s in out for line in s.lines)
    return rest, frozenset(failed), Parcels(len(out), skus)


def trials(
    orders: Sequence[Order],
    network: Network,
    inventory: Inventory,
    rules: RuleSet,
    *,
    share: float,
    seeds: Sequence[int],
    max_reroutes: int = 2,
) -> list[Trial]:
    """Both arms for each seed."""
    return [
        Trial(
            seed,
            replay_rejects(
                orders, network, inventory, rules, share=share, seed=seed, reroute=False
            ),
            replay_rejects(
                orders,
                network,
                inventory,
                rules,
                share=share,
                seed=seed,
                reroute=True,
                max_reroutes=max_reroutes,
            ),
        )
        for seed in seeds
    ]


def summary_rows(runs: Sequence[Trial]) -> list[list[str]]:
    """The figure over all seeds: median and range of each count, per arm."""

    def cell(values: Sequence[float], digits: int = 0) -> str:
        mid = statistics.median(values)
        return f"{mid:.{digits}f} ({min(values):.{digits}f} to {max(values):.{digits}f})"

    rows = []
    for label, arms in (
        ("cancel on reject", [t.without for t in runs]),
        ("reroute", [t.with_reroute for t in runs]),
    ):
        rows.append(
            [
                label,
                cell([a.hit for a in arms]),
                cell([a.cancelled for a in arms]),
                cell([a.saved for a in arms]),
                cell([a.reroutes for a in arms]),
                cell(costs, 2)
                if (costs := [a.reroute_cost / a.reroutes for a in arms if a.reroutes])
                else "-",
            ]
        )
    return rows


SUMMARY_HEADERS = [
    "arm",
    "orders hit by a reject",
    "cancelled",
    "shipped in full after all",
    "reroutes",
    "cost per reroute",
]
