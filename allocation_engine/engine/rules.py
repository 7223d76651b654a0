"""The rule set a planner tunes: cost weights and the fences every plan must respect.

The objective's formula is fixed (see `assignment.py`); planners change weights and fences
only. Rule sets come from TOML (see `default_rules.toml` for every key, commented) and are
validated as a whole: every problem is reported with the key that holds it and the value found.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from importlib import resources
from pathlib import Path
from typing import Any

from allocation_engine.engine.network import NODE_TYPES, NodeType
from allocation_engine.engine.order import CustomerType
from allocation_engine.errors import InvalidInput, ProblemCollector

KM_PER_MILE = 1.609344

DISTANCE_METHODS = ("haversine", "geodesic")


@dataclass(frozen=True)
class RuleSet:
    """Weights of the default objective plus the hard fences.

    Defaults are the Jasin & Sinha (2015) weights: 8.759 per package, 0.423 per unit and
    0.000541 per unit-mile, here per unit-km.
    """

    name: str = "default"
    version: str = "1"
    # costs
    shipment_cost: float = 8.759
    shipment_distance_cost: float = 0.0
    unit_cost: float = 0.423
    unit_distance_cost: float = 0.000541 / KM_PER_MILE
    unfilled_unit_penalty: float = 0.0
    # fences
    allow_partial: bool = False
    max_shipments: int | None = None
    ship_complete: bool = False
    allow_line_split: bool = True
    max_distance_km: float | None = None
    distance: str = "haversine"
    node_types: Mapping[CustomerType, frozenset[NodeType]] = field(
        default_factory=lambda: {
            CustomerType.B2C: frozenset(NODE_TYPES),
            CustomerType.B2B: frozenset({NodeType.WAREHOUSE}),  # pallets and invoices: DCs only
        }
    )
    channel_node_types: Mapping[str, frozenset[NodeType]] = field(default_factory=dict)
    click_collect_transfer_types: frozenset[NodeType] = frozenset({NodeType.WAREHOUSE})
    # solver
    time_limit_seconds: float = 2.0

    def __post_init__(self) -> None:
        problems = ProblemCollector()
        for name in ("shipment_cost", "shipment_distance_cost", "unit_cost", "unit_distance_cost"):
            _non_negative(problems, f"costs.{name}", getattr(self, name))
        _non_negative(problems, "costs.unfilled_unit_penalty", self.unfilled_unit_penalty)
        if self.allow_partial and not self.unfilled_unit_penalty > 0:
            problems.add(
                "costs.unfilled_unit_penalty",
                self.unfilled_unit_penalty,
                "must be > 0 when fences.allow_partial is true",
            )
        if self.max_shipments is not None and (
            not isinstance(self.max_shipments, int) or self.max_shipments < 1
        ):
            problems.add("fences.max_shipments", self.max_shipments, "must be an integer >= 1")
        if self.max_distance_km is not None and not (
            _number(self.max_distance_km) and self.max_distance_km > 0
        ):
            problems.add("fences.max_distance_km", self.max_distance_km, "must be a number > 0")
        if self.distance not in DISTANCE_METHODS:
            problems.add(
                "fences.distance", self.distance, f"must be one of {list(DISTANCE_METHODS)}"
            )
        if not (_number(self.time_limit_seconds) and self.time_limit_seconds > 0):
            problems.add(
                "solver.time_limit_seconds", self.time_limit_seconds, "must be a number > 0"
            )
        if not self.name:
            problems.add("name", self.name, "must be a non-empty string")
        if not self.version:
            problems.add("version", self.version, "must be a non-empty string")
        problems.raise_if_any()

    @property
    def shipment_limit(self) -> int | None:
        """The most shipments one order may take: 1 under ship-complete."""
        return 1 if self.ship_complete else self.max_shipments

    def allowed_node_types(self, customer_type: CustomerType, channel: str) -> frozenset[NodeType]:
        """Node types that may ship: the customer type's list, narrowed by the channel's."""
        allowed = self.node_types.get(customer_type, frozenset(NODE_TYPES))
        by_channel = self.channel_node_types.get(channel)
        return allowed if by_channel is None else allowed & by_channel

    def with_weights(self, **weights: Any) -> RuleSet:
        """A copy with some fields changed (for what-if replays); validated like any rule set."""
        unknown = sorted(set(weights) - {f.name for f in fields(self)})
        if unknown:
            raise InvalidInput.one(unknown[0], weights[unknown[0]], "unknown rule")
        return replace(self, **weights)


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _non_negative(problems: ProblemCollector, name: str, value: object) -> None:
    if not (_number(value) and value >= 0):  # type: ignore[operator]
        problems.add(name, value, "must be a finite number >= 0")


# TOML layout: section -> key -> RuleSet field (same name unless mapped here).
_SECTIONS: dict[str, tuple[str, ...]] = {
    "": ("name", "version"),
    "costs": (
        "shipment_cost",
        "shipment_distance_cost",
        "unit_cost",
        "unit_distance_cost",
        "unfilled_unit_penalty",
    ),
    "fences": (
        "allow_partial",
        "max_shipments",
        "ship_complete",
        "allow_line_split",
        "max_distance_km",
        "distance",
        "node_types",
        "channel_node_types",
    ),
    "click_collect": ("transfer_node_types",),
    "solver": ("time_limit_seconds",),
}
_FIELD_OF: dict[tuple[str, str], str] = {
    ("click_collect", "transfer_node_types"): "click_collect_transfer_types"
}


def rules_from_mapping(data: Mapping[str, Any]) -> RuleSet:
    """Builds a rule set from parsed TOML; reports every unknown key and bad value at once."""
    problems = ProblemCollector()
    values: dict[str, Any] = {}
    for key, value in data.items():
        if key in _SECTIONS and key and isinstance(value, Mapping):
            inner: str
            for inner, inner_value in value.items():
                if inner not in _SECTIONS[key]:
                    problems.add(f"{key}.{inner}", inner_value, "unknown key")
                    continue
                values[_FIELD_OF.get((key, inner), inner)] = inner_value
        elif key in _SECTIONS[""]:
            values[key] = str(value) if key == "version" else value
        else:
            problems.add(key, value, "unknown key or section")
    for key in ("node_types", "channel_node_types"):
        if key in values:
            values[key] = _node_type_table(
                values[key], f"fences.{key}", problems, key == "node_types"
            )
    if "click_collect_transfer_types" in values:
        values["click_collect_transfer_types"] = _node_type_list(
            values["click_collect_transfer_types"], "click_collect.transfer_node_types", problems
        )
    for name, kind in (
        ("allow_partial", bool),
        ("ship_complete", bool),
        ("allow_line_split", bool),
    ):
        if name in values and not isinstance(values[name], kind):
            problems.add(f"fences.{name}", values.pop(name), "must be true or false")
    try:
        rules = RuleSet(**values)
    except InvalidInput as bad:
        problems.extend(bad.problems)
    except TypeError as bad:  # a value of the wrong type that comparisons could not handle
        problems.add("rules", values, str(bad))
    problems.raise_if_any()
    return rules


def _node_type_table(
    table: object, where: str, problems: ProblemCollector, by_customer: bool
) -> dict[Any, frozenset[NodeType]]:
    if not isinstance(table, Mapping):
        problems.add(where, table, "must be a table of lists of node types")
        return {}
    out: dict[Any, frozenset[NodeType]] = {}
    for key, listed in table.items():
        if by_customer and key not in {c.value for c in CustomerType}:
            problems.add(f"{where}.{key}", listed, "unknown customer type (B2C or B2B)")
            continue
        out[CustomerType(key) if by_customer else key] = _node_type_list(
            listed, f"{where}.{key}", problems
        )
    return out


def _node_type_list(listed: object, where: str, problems: ProblemCollector) -> frozenset[NodeType]:
    names = {t.value for t in NODE_TYPES}
    if not isinstance(listed, list) or any(item not in names for item in listed):
        problems.add(where, listed, f"must be a list drawn from {sorted(names)}")
        return frozenset()
    return frozenset(NodeType(item) for item in listed)


def load_rules(path: str | Path) -> RuleSet:
    """Reads and validates a rule set from a TOML file."""
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except tomllib.TOMLDecodeError as bad:
        raise InvalidInput.one("rules", str(path), f"not valid TOML: {bad}") from None
    return rules_from_mapping(data)


def parse_rules(text: str) -> RuleSet:
    """Validates a rule set given as TOML text (what RulesService receives)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as bad:
        raise InvalidInput.one("rules", text[:80], f"not valid TOML: {bad}") from None
    return rules_from_mapping(data)


def default_rules_text() -> str:
    """The shipped, commented default rule file."""
    return resources.files(__package__).joinpath("default_rules.toml").read_text(encoding="utf-8")


def default_rules() -> RuleSet:
    return parse_rules(default_rules_text())
