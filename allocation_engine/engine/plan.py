"""What the allocator answers: shipments, costs, shortfalls, and why each node was (not) used."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import overload

import numpy as np
import numpy.typing as npt

from allocation_engine.engine.problem import Reason, SourcingProblem
from allocation_engine.engine.supply import LotTake
from allocation_engine.errors import Shortfall


class Status(StrEnum):
    OPTIMAL = "OPTIMAL"  # proven optimal
    FEASIBLE = "FEASIBLE"  # valid plan; the time limit stopped the proof (see optimality_gap)
    INFEASIBLE = "INFEASIBLE"  # the order cannot be filled under the fences (see shortfalls)


@dataclass(frozen=True)
class ShipmentLine:
    sku: str
    quantity: int


@dataclass(frozen=True)
class Shipment:
    """One package: a node, the units it sends, its distance to the ship-to and its cost.

    For click & collect, `transfer_to` names the pickup store when the package is a transfer
    from another node to it; it is empty for the store's own stock (distance 0, no package
    cost) and for every shipment to a customer's address.

    `ship_day` is when the package leaves, in days from today: 0 unless it waits for incoming
    supply (backorders, see dated.py), and then `lots` says what it takes from which lot; the
    rest of its units come off the shelf. Its `cost` then includes the delay cost.
    """

    node_id: str
    lines: tuple[ShipmentLine, ...]
    distance_km: float
    cost: float
    transfer_to: str = ""
    ship_day: int = 0
    lots: tuple[LotTake, ...] = ()

    @property
    def units(self) -> int:
        return sum(line.quantity for line in self.lines)


@dataclass(frozen=True)
class Explanation:
    """Why a node ships, was not chosen, or was excluded, in words and as a reason code."""

    node_id: str
    reason: Reason
    detail: str


@dataclass(frozen=True)
class Plan:
    """A sourcing decision for one order.

    `total_cost` follows the default formula (see `assignment.py`) and equals the sum of the
    shipment costs plus the unfilled-unit penalty. `optimality_gap` is 0 for OPTIMAL, the
    solver's relative gap for FEASIBLE, and NaN for heuristics that prove nothing. `candidates`
    counts the nodes that passed the fences; `solver_candidates` those left for the exact model
    after candidate reduction. `rules_name` and `rules_version` name the rule set it was planned
    under (empty for a plan read from a client that did not say).
    """

    order_id: str
    method: str
    status: Status
    shipments: tuple[Shipment, ...]
    total_cost: float
    optimality_gap: float
    unfilled: tuple[ShipmentLine, ...] = ()
    shortfalls: tuple[Shortfall, ...] = ()
    explanations: Sequence[Explanation] = field(default=(), repr=False, compare=False)
    rules_name: str = ""
    rules_version: str = ""
    candidates: int = 0
    solver_candidates: int = 0

    @property
    def units_shipped(self) -> int:
        return sum(s.units for s in self.shipments)

    @property
    def units_unfilled(self) -> int:
        return sum(line.quantity for line in self.unfilled)

    def taken(self) -> dict[tuple[str, str], int]:
        """(node id, sku) -> units this plan draws from the shelf (what it takes from incoming
        lots is in each shipment's `lots`, not here)."""
        taken = {(s.node_id, line.sku): line.quantity for s in self.shipments for line in s.lines}
        for s in self.shipments:
            for lot in s.lots:
                taken[s.node_id, lot.sku] -= lot.units
        return {key: units for key, units in taken.items() if units}


@dataclass(frozen=True, eq=False)
class Explanations(Sequence[Explanation]):
    """One explanation per network node, built only when read (a 5,000-node network is common).

    `bound` holds, where computed, a lower bound on the cost of any plan that uses the node;
    `dominator` the node that made it redundant.
    """

    problem: SourcingProblem
    reason: npt.NDArray[np.int8]
    bound: npt.NDArray[np.float64]
    dominator: npt.NDArray[np.int64]
    plan_cost: float
    shipped: dict[int, Shipment]

    def __len__(self) -> int:
        return len(self.reason)

    @overload
    def __getitem__(self, index: int) -> Explanation: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[Explanation]: ...
    def __getitem__(self, index: int | slice) -> Explanation | Sequence[Explanation]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        node = self.problem.network.nodes[index]
        reason = Reason(int(self.reason[index]))
        return Explanation(node.id, reason, self._detail(index, reason))

    def __iter__(self) -> Iterator[Explanation]:
        return (self[i] for i in range(len(self)))

    def for_node(self, node_id: str) -> Explanation:
        return self[self.problem.network.index[node_id]]

    def _detail(self, i: int, reason: Reason) -> str:
        p = self.problem
        node = p.network.nodes[i]
        d = float(p.network_distance_km[i])
        match reason:
            case Reason.CHOSEN:
                s = self.shipped[i]
                when = f" in {s.ship_day} days" if s.ship_day else ""
                return f"ships {s.units} units{when} over {s.distance_km:.1f} km for {s.cost:.2f}"
            case Reason.NOT_CHOSEN | Reason.COST_BOUND:
                bound = float(self.bound[i])
                better = (
                    "the chosen plan" if reason is Reason.NOT_CHOSEN else "a plan already found"
                )
                if math.isnan(bound):
                    return f"not used; {better} costs {self.plan_cost:.2f}"
                return (
                    f"any plan using it costs at least {bound:.2f}; "
                    f"{better} costs {self.plan_cost:.2f}"
                )
            case Reason.DOMINATED:
                other = p.network.nodes[int(self.dominator[i])].id
                return f"{other} can ship everything it could, at no higher cost ({d:.1f} km away)"
            case Reason.INACTIVE:
                return "node is inactive"
            case Reason.EXCLUDED_FOR_ORDER:
                return "excluded for this order (it rejected part of it)"
            case Reason.NODE_TYPE_NOT_ALLOWED:
                return (
                    f"{node.type.value} nodes may not ship {p.order.customer_type.value} orders "
                    f"from channel {p.order.channel!r}"
                )
            case Reason.NOT_PICKUP_SOURCE:
                return f"cannot send stock to pickup store {p.order.pickup_store_id!r}"
            case Reason.DOES_NOT_SHIP_TO_COUNTRY:
                return f"does not ship to {p.order.ship_to.country}"
            case Reason.NO_CAPACITY:
                return "no shipment capacity left today"
            case Reason.NO_STOCK:
                return "holds none of the order's skus available"
            case Reason.TOO_FAR:
                return f"{d:.1f} km away, beyond max_distance_km={p.rules.max_distance_km}"
            case Reason.NO_FEASIBLE_USE:
                return (
                    "cannot take a whole ship-together group or any line within the shipment limit"
                )
            case _:
                return reason.name.lower()
