"""Rule sets load from TOML and refuse bad values with the key and the value named."""

from __future__ import annotations

from pathlib import Path

import pytest

from allocation_engine.engine import CustomerType, InvalidInput, NodeType, RuleSet
from allocation_engine.engine.rules import default_rules, load_rules, parse_rules


def test_shipped_default_file_equals_the_built_in_defaults() -> None:
    """The commented default file and RuleSet() describe the same rules (to 1e-12 per km)."""
    shipped, built_in = default_rules(), RuleSet()
    assert abs(shipped.unit_distance_cost - built_in.unit_distance_cost) < 1e-12
    assert shipped.with_weights(unit_distance_cost=built_in.unit_distance_cost) == built_in


def test_jasin_sinha_weights_are_the_defaults() -> None:
    rules = RuleSet()
    assert (rules.shipment_cost, rules.unit_cost) == (8.759, 0.423)
    assert abs(rules.unit_distance_cost * 1.609344 - 0.000541) < 1e-15


def test_partial_toml_keeps_other_defaults(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_text(
        'name = "peak"\nversion = 7\n[fences]\nmax_shipments = 2\n'
        '[fences.channel_node_types]\nmarketplace = ["warehouse"]\n'
    )
    rules = load_rules(path)
    assert (rules.name, rules.version, rules.max_shipments) == ("peak", "7", 2)
    assert rules.shipment_cost == 8.759
    assert rules.allowed_node_types(CustomerType.B2C, "marketplace") == {NodeType.WAREHOUSE}
    assert rules.allowed_node_types(CustomerType.B2B, "web") == {NodeType.WAREHOUSE}


def test_every_bad_value_is_reported_with_its_key() -> None:
    """Given three bad values and an unknown key, all four are named with the value found."""
    text = """
[costs]
unit_cost = -1
shipment_cots = 3
[fences]
max_shipments = 0
distance = "manhattan"
"""
    with pytest.raises(InvalidInput) as raised:
        parse_rules(text)
    found = {(p.field, p.value) for p in raised.value.problems}
    assert found == {
        ("costs.unit_cost", -1),
        ("costs.shipment_cots", 3),
        ("fences.max_shipments", 0),
        ("fences.distance", "manhattan"),
    }


def test_partial_fulfilment_needs_a_penalty() -> None:
    with pytest.raises(InvalidInput) as raised:
        parse_rules("[fences]\nallow_partial = true\n")
    assert raised.value.problems[0].field == "costs.unfilled_unit_penalty"


def test_unknown_node_type_and_customer_type_are_named() -> None:
    with pytest.raises(InvalidInput) as raised:
        parse_rules('[fences.node_types]\nB2C = ["warehouse", "depot"]\nB2X = ["store"]\n')
    fields = sorted(p.field for p in raised.value.problems)
    assert fields == ["fences.node_types.B2C", "fences.node_types.B2X"]


def test_broken_toml_is_an_invalid_input() -> None:
    with pytest.raises(InvalidInput) as raised:
        parse_rules("[costs\nunit_cost = 1")
    assert raised.value.problems[0].field == "rules"
