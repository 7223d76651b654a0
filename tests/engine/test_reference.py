"""On medium instances the reduced model finds the same optimum as the full reference model."""

from __future__ import annotations

import math

import numpy as np
import pytest

from allocation_engine.engine import (
    Inventory,
    Network,
    Node,
    NodeType,
    Order,
    OrderLine,
    RuleSet,
    ShipTo,
    Status,
    allocate,
)
from tests.engine.oracle import violations


def medium_case(seed: int, nodes: int = 150, lines: int = 5, share: float = 0.15):
    """A random network over Germany; each node stocks each sku with probability `share`."""
    rng = np.random.default_rng(seed)
    kinds = list(NodeType)
    types = [kinds[k] for k in rng.choice(3, size=nodes, p=[0.1, 0.8, 0.1])]
    network = Network.of(
        Node(
            f"N{i:04d}",
            types[i],
            float(rng.uniform(47.5, 54.8)),
            float(rng.uniform(6.0, 15.0)),
            "DE",
            unit_handling_cost=float(rng.choice([0.0, 0.2, 0.5])),
            shipment_surcharge=float(rng.choice([0.0, 0.0, 2.0])),
        )
        for i in range(nodes)
    )
    skus = [f"SKU-{j}" for j in range(lines)]
    available = {
        (n.id, sku): int(rng.integers(1, 4))
        for n in network.nodes
        for sku in skus
        if rng.random() < share
    }
    order = Order(
        f"o-{seed}",
        tuple(OrderLine(sku, int(rng.integers(1, 4))) for sku in skus),
        ShipTo(float(rng.uniform(47.5, 54.8)), float(rng.uniform(6.0, 15.0)), "DE"),
    )
    table = {sku: {n: q for (n, s), q in available.items() if s == sku} for sku in skus}
    return network, Inventory.from_available(network, table), available, order


RULES = {
    "default": RuleSet(),
    "max-2-shipments": RuleSet(max_shipments=2),
    "no-line-split": RuleSet(allow_line_split=False),
    "partial": RuleSet(allow_partial=True, unfilled_unit_penalty=6.0),
    "distance-heavy": RuleSet(unit_distance_cost=0.02, shipment_distance_cost=0.02),
}


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("rules", RULES.values(), ids=RULES.keys())
def test_engine_equals_reference_model(seed: int, rules: RuleSet) -> None:
    """Given 150 nodes and 5 lines, when both exact methods plan, then their costs agree, both
    are proven optimal, and the engine handed the solver fewer candidates."""
    network, inventory, available, order = medium_case(seed)
    engine = allocate(order, network, inventory, rules)
    reference = allocate(order, network, inventory, rules, method="reference")
    assert engine.status is reference.status
    if engine.status is Status.INFEASIBLE:
        assert engine.shortfalls == reference.shortfalls
        return
    assert engine.status is Status.OPTIMAL
    assert math.isclose(engine.total_cost, reference.total_cost, rel_tol=1e-9, abs_tol=1e-6)
    assert engine.solver_candidates <= reference.solver_candidates
    assert violations(engine, order, network, available, rules) == []


def test_reduction_shrinks_the_model() -> None:
    """Given a dense network (half the nodes stock each sku), the engine solves over a small
    fraction of the candidates."""
    network, inventory, _, order = medium_case(1, nodes=400, lines=3, share=0.5)
    plan = allocate(order, network, inventory)
    assert plan.status is Status.OPTIMAL
    assert plan.candidates > 300
    assert plan.solver_candidates < plan.candidates / 10
