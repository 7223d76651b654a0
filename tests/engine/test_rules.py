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


@pytest.mark.parametrize(
    ("text", "field", "value"),
    [
        ("[costs]\nshipment_cost = 1e200\n", "costs.shipment_cost", 1e200),
        ("[costs]\nunit_cost = 1e7\n", "costs.unit_cost", 1e7),
        ("[costs]\nshipment_distance_cost = 101.0\n", "costs.shipment_distance_cost", 101.0),
        ("[costs]\nunit_distance_cost = inf\n", "costs.unit_distance_cost", float("inf")),
        ("[costs]\nunfilled_unit_penalty = 1e8\n", "costs.unfilled_unit_penalty", 1e8),
        ("[fences]\nmax_shipments = 1001\n", "fences.max_shipments", 1001),
        ("[fences]\nmax_shipments = true\n", "fences.max_shipments", True),
        ("[fences]\nmax_distance_km = 1e9\n", "fences.max_distance_km", 1e9),
        ("[solver]\ntime_limit_seconds = 1e9\n", "solver.time_limit_seconds", 1e9),
        ("[solver]\ntime_limit_seconds = 0\n", "solver.time_limit_seconds", 0),
        ("[click_collect]\nown_stock_first = 1\n", "click_collect.own_stock_first", 1),
    ],
)
def test_every_weight_and_limit_has_a_range(text: str, field: str, value: object) -> None:
    """Given a weight or limit past its documented range (engine/rules.py), when the rule set
    is parsed, then it is refused naming the key and quoting the value, so no rule set that
    validates can fail to plan (1e200 per package used to pass and then overflow the solver)."""
    with pytest.raises(InvalidInput) as raised:
        parse_rules(text)
    (problem,) = raised.value.problems
    assert (problem.field, problem.value) == (field, value)
    assert field in str(raised.value)


def test_the_largest_values_in_range_validate_and_plan() -> None:
    """Every weight at the top of its range validates, and an order of 10^9 units that needs
    both nodes (so the solver runs, at the far side of the Earth) still plans with it."""
    from allocation_engine.engine import (
        Inventory,
        Network,
        Node,
        Order,
        OrderLine,
        ShipTo,
        Status,
        allocate,
    )

    rules = parse_rules(
        "[costs]\nshipment_cost = 1e6\nshipment_distance_cost = 100.0\nunit_cost = 1e6\n"
        "unit_distance_cost = 100.0\nunfilled_unit_penalty = 1e7\n"
        "[fences]\nmax_shipments = 1000\nmax_distance_km = 20100.0\n"
        "[solver]\ntime_limit_seconds = 60\n"
    )
    network = Network.of(
        [
            Node("A", NodeType.WAREHOUSE, 52.0, 13.0, "DE", unit_handling_cost=1e6),
            Node("B", NodeType.WAREHOUSE, -33.9, 151.2, "AU", shipment_surcharge=1e6),
        ]
    )
    inventory = Inventory.from_available(network, {"X": {"A": 6 * 10**8, "B": 6 * 10**8}})
    order = Order("o", (OrderLine("X", 10**9),), ShipTo(51.0, 7.0, "DE"))
    plan = allocate(order, network, inventory, rules)
    assert plan.status in (Status.OPTIMAL, Status.FEASIBLE)
    assert plan.units_shipped == 10**9


def test_deep_or_large_toml_is_refused_with_a_clear_error() -> None:
    """A TOML nested 500 levels deep (arrays, inline tables or dotted keys) or larger than
    256 KiB is InvalidInput on `rules`, never a RecursionError."""
    deep = [
        "a = " + "[" * 500 + "]" * 500,
        "a = " + "{b = " * 500 + "1" + "}" * 500,
        "[" + "a." * 500 + "a]\n",
        "a" + ".a" * 5_000 + " = 1\n",
    ]
    for text in deep:
        with pytest.raises(InvalidInput) as raised:
            parse_rules(text)
        assert raised.value.problems[0].field == "rules"
        assert "nested" in str(raised.value)
    with pytest.raises(InvalidInput) as raised:
        parse_rules("# padding\n" * 30_000)
    assert raised.value.problems[0].field == "rules"
    assert "262144 characters" in str(raised.value)
    # nesting within the limit, and brackets inside strings and comments, are fine
    assert parse_rules('name = "[[[[{{{{"  # ]]]] [[[[\n').name == "[[[[{{{{"


def test_a_long_unknown_value_is_quoted_short() -> None:
    with pytest.raises(InvalidInput) as raised:
        parse_rules('zzz = "' + "q" * 10_000 + '"\n')
    assert len(str(raised.value)) < 200
