"""The node-set enumeration behind the fewest-shipments rule finds exactly the complete sets."""

from __future__ import annotations

from dataclasses import replace
from itertools import combinations

import numpy as np
import pytest

from allocation_engine.engine import Inventory, RuleSet, covering
from allocation_engine.engine.problem import SourcingProblem
from tests.engine.test_reference import medium_case


@pytest.mark.parametrize("n", range(8))
@pytest.mark.parametrize("size", [1, 2, 3])
def test_index_sets_are_all_subsets_in_lexicographic_order(n: int, size: int) -> None:
    expected = np.array(list(combinations(range(n), size)), dtype=np.intp).reshape(-1, size)
    assert np.array_equal(covering.index_sets(n, size), expected)


@pytest.mark.parametrize("seed", range(6))
def test_triples_by_extending_pairs_equal_brute_force(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given a thin network where three nodes are needed, the pair-extension search returns
    the same complete triples as trying every triple."""
    network, inventory, _, order = medium_case(seed, nodes=40, lines=6, share=0.2)
    problem = SourcingProblem.build(order, network, inventory, RuleSet())
    everything = covering.index_sets(len(problem.nodes), 3)
    brute = everything[covering.ships_all(problem, everything)]
    monkeypatch.setattr(covering, "MAX_SETS", len(everything) - 1)  # forces the pair path
    found = covering.complete_sets(problem, 3)
    assert found is not None
    assert np.array_equal(found, brute)


def test_the_thin_cases_do_have_complete_triples() -> None:
    """The cases above are not vacuous: most of them have complete triples and no pair."""
    with_triples = 0
    for seed in range(6):
        network, inventory, _, order = medium_case(seed, nodes=40, lines=6, share=0.2)
        problem = SourcingProblem.build(order, network, inventory, RuleSet())
        assert covering.fewest_shipments(problem)[0] >= 3
        with_triples += covering.fewest_shipments(problem)[0] == 3
    assert with_triples >= 4


@pytest.mark.parametrize("seed", range(4))
def test_triples_stay_exact_with_bulk_quantities(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With quantities in the hundreds (one bit per distinct stock level, not per unit), the
    pair-extension search still equals trying every triple."""
    rng = np.random.default_rng(seed)
    network, inventory, _, order = medium_case(seed, nodes=40, lines=3, share=0.5)
    bulk = tuple(
        replace(line, quantity=int(q))
        for line, q in zip(order.lines, rng.integers(1, 900, 3), strict=True)
    )
    order = replace(order, lines=bulk)
    stock = {
        line.sku: {n.id: int(rng.integers(0, line.quantity // 2 + 2)) for n in network.nodes}
        for line in bulk
    }
    inventory = Inventory.from_available(network, stock)
    problem = SourcingProblem.build(order, network, inventory, RuleSet())
    everything = covering.index_sets(len(problem.nodes), 3)
    brute = everything[covering.ships_all(problem, everything)]
    monkeypatch.setattr(covering, "MAX_SETS", len(everything) - 1)  # forces the pair path
    found = covering.complete_sets(problem, 3)
    assert found is not None
    assert np.array_equal(found, brute)
    assert len(brute) > 0 or seed  # the first case is not vacuous
