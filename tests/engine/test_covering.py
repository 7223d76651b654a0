"""The node-set enumeration behind the fewest-shipments rule finds exactly the complete sets."""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pytest

from allocation_engine.engine import RuleSet, covering
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
