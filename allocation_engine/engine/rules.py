"""The rule set a planner tunes: cost weights and the fences every plan must respect.

The objective's formula is fixed (see `assignment.py`); planners change weights and fences
only. Rule sets come from TOML (see `default_rules.toml` for every key, commented) and are
validated as a whole: every problem is reported with the key that holds it and the value found.

Every weight and limit has a range, so a rule set that validates plans every order the contract
admits (the solver's int64 proof in `objective.py` starts from these numbers):

  costs.shipment_cost           [0, 10^6]   per package
  costs.unit_cost               [0, 10^6]   per unit
  costs.shipment_distance_cost  [0, 100]    per package and km
  costs.unit_distance_cost      [0, 100]    per unit and km
  costs.unfilled_unit_penalty   [0, 10^7]   per unit (> 0 with allow_partial)
  fences.max_shipments          1 to 1,000, or left out
  fences.max_distance_km        (0, 20,100], or left out (no place on Earth is farther than
                                20,016 km from another)
  solver.time_limit_seconds     (0, 60]
  backorders.delay_cost_per_unit_day  [0, 10^4]  per unit and day a shipment waits for supply
  backorders.max_wait_days      1 to 365 (`supply.MAX_SUPPLY_DAYS`)
  name, version                 1 to 128 characters
A rules TOML is at most 256 KiB (`limits.MAX_RULES_CHARS`) and nests arrays and inline tables at
most 32 deep (`limits.MAX_RULES_NESTING`); past either it is refused before it is parsed.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from importlib import resources
from pathlib import Path
from typing import Any

from allocation_engine.engine.limits import (
    MAX_ID_CHARS,
    MAX_RULES_CHARS,
    MAX_RULES_NESTING,
    MAX_SHIPMENTS,
)
from allocation_engine.engine.network import NODE_TYPES, NodeType
from allocation_engine.engine.order import CustomerType
from allocation_engine.engine.supply import MAX_SUPPLY_DAYS
from allocation_engine.errors import InvalidInput, ProblemCollector

KM_PER_MILE = 1.609344

DISTANCE_METHODS = ("haversine", "geodesic")

# (low, high) of every cost weight, in currency units (per package, per unit, per km as named)
COST_RANGES: dict[str, tuple[float, float]] = {
    "shipment_cost": (0.0, 1e6),
    "shipment_distance_cost": (0.0, 100.0),
    "unit_cost": (0.0, 1e6),
    "unit_distance_cost": (0.0, 100.0),
    "unfilled_unit_penalty": (0.0, 1e7),
}
MAX_DISTANCE_KM = 20_100.0
MAX_TIME_LIMIT_SECONDS = 60.0
MAX_DELAY_COST = 1e4


@dataclass(frozen=True)
class Backorders:
    """Planning against incoming supply (`supply.IncomingLot`, see `dated.py`): when `enabled`,
    a shipment may wait for lots due within `max_wait_days`, and each unit it sends costs
    `delay_cost_per_unit_day` more per day it waits. Off by default: a plan then ships today
    from the shelf only, as before supply existed.

    The default weight, 0.5 per unit-day, sits beside the default per-unit cost (0.423): a day's
    wait weighs about one unit's handling, so a week's wait (3.5 a unit) buys saving a package
    (8.759, about 17 unit-days) but not mere distance (0.000336 per unit-km: a day's wait is
    worth ~1,500 km of it). Planners who promise dates more loosely lower it.
    """

    enabled: bool = False
    delay_cost_per_unit_day: float = 0.5
    max_wait_days: int = 60

    def __post_init__(self) -> None:
        problems = ProblemCollector()
        if not isinstance(self.enabled, bool):
            problems.add("backorders.enabled", self.enabled, "must be true or false")
        _in_range(
            problems,
            "backorders.delay_cost_per_unit_day",
            self.delay_cost_per_unit_day,
            MAX_DELAY_COST,
        )
        if (
            not isinstance(self.max_wait_days, int)
            or isinstance(self.max_wait_days, bool)
            or not 1 <= self.max_wait_days <= MAX_SUPPLY_DAYS
        ):
            problems.add(
                "backorders.max_wait_days",
                self.max_wait_days,
                f"must be an integer in [1, {MAX_SUPPLY_DAYS}]",
            )
        problems.raise_if_any()


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
    # a click & collect order takes all it can from the pickup store's own stock before any
    # transfer (false: costs alone decide; see problem.py for how each is priced)
    click_collect_own_stock_first: bool = True
    # solver
    time_limit_seconds: float = 2.0
    backorders: Backorders = field(default_factory=Backorders)

    def __post_init__(self) -> None:
        problems = ProblemCollector()
        if not isinstance(self.backorders, Backorders):
            problems.add("backorders", _quoted(self.backorders), "must be a Backorders table")
        for name, (_, high) in COST_RANGES.items():
            _in_range(problems, f"costs.{name}", getattr(self, name), high)
        if self.allow_partial and not (
            _number(self.unfilled_unit_penalty) and self.unfilled_unit_penalty > 0
        ):
            problems.add(
                "costs.unfilled_unit_penalty",
                self.unfilled_unit_penalty,
                "must be > 0 when fences.allow_partial is true",
            )
        if self.max_shipments is not None and (
            not isinstance(self.max_shipments, int)
            or isinstance(self.max_shipments, bool)
            or not 1 <= self.max_shipments <= MAX_SHIPMENTS
        ):
            problems.add(
                "fences.max_shipments",
                self.max_shipments,
                f"must be an integer in [1, {MAX_SHIPMENTS}] (leave it out for no limit)",
            )
        if self.max_distance_km is not None and not (
            _number(self.max_distance_km) and 0 < self.max_distance_km <= MAX_DISTANCE_KM
        ):
            problems.add(
                "fences.max_distance_km",
                self.max_distance_km,
                f"must be a number in (0, {MAX_DISTANCE_KM:g}] (leave it out for no limit)",
            )
        if self.distance not in DISTANCE_METHODS:
            problems.add(
                "fences.distance", self.distance, f"must be one of {list(DISTANCE_METHODS)}"
            )
        if not (
            _number(self.time_limit_seconds)
            and 0 < self.time_limit_seconds <= MAX_TIME_LIMIT_SECONDS
        ):
            problems.add(
                "solver.time_limit_seconds",
                self.time_limit_seconds,
                f"must be a number in (0, {MAX_TIME_LIMIT_SECONDS:g}]",
            )
        for name in ("name", "version"):
            value = getattr(self, name)
            if not isinstance(value, str) or not 0 < len(value) <= MAX_ID_CHARS:
                problems.add(
                    name, _short(value), f"must be a string of 1 to {MAX_ID_CHARS} characters"
                )
        for channel in self.channel_node_types:
            if not isinstance(channel, str) or not 0 < len(channel) <= MAX_ID_CHARS:
                problems.add(
                    "fences.channel_node_types",
                    _short(channel),
                    f"a channel name has 1 to {MAX_ID_CHARS} characters",
                )
        if not isinstance(self.click_collect_own_stock_first, bool):
            problems.add(
                "click_collect.own_stock_first",
                self.click_collect_own_stock_first,
                "must be true or false",
            )
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

    def fenced_by_channels(self, fences: Mapping[str, frozenset[NodeType]]) -> RuleSet:
        """A copy whose channel fences also hold `fences` (a sales channel's node types from
        channels.toml), intersected with the rule set's own fence for the same channel."""
        if not fences:
            return self
        merged = dict(self.channel_node_types)
        for channel, types in fences.items():
            merged[channel] = merged[channel] & types if channel in merged else types
        return replace(self, channel_node_types=merged)

    def with_weights(self, **weights: Any) -> RuleSet:
        """A copy with some fields changed (for what-if replays); validated like any rule set."""
        unknown = sorted(set(weights) - {f.name for f in fields(self)})
        if unknown:
            raise InvalidInput.one(unknown[0], weights[unknown[0]], "unknown rule")
        return replace(self, **weights)


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _in_range(problems: ProblemCollector, name: str, value: object, high: float) -> None:
    if not (_number(value) and 0 <= value <= high):  # type: ignore[operator]
        problems.add(name, value, f"must be a finite number in [0, {high:g}]")


def _quoted(value: object) -> object:
    """A value as a problem quotes it: as it is when short, else the start of its repr."""
    if isinstance(value, str | Mapping | list):
        text = repr(value)
        if len(text) > 80:
            return text[:80] + "..."
    return value


def _short(value: object) -> object:
    """A value as quoted in a problem: long strings cut to their first 80 characters."""
    return value[:80] + "..." if isinstance(value, str) and len(value) > 80 else value


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
    "click_collect": ("transfer_node_types", "own_stock_first"),
    "solver": ("time_limit_seconds",),
    "backorders": tuple(f.name for f in fields(Backorders)),
}
_FIELD_OF: dict[tuple[str, str], str] = {
    ("click_collect", "transfer_node_types"): "click_collect_transfer_types",
    ("click_collect", "own_stock_first"): "click_collect_own_stock_first",
} | {("backorders", key): f"backorders.{key}" for key in _SECTIONS["backorders"]}


def rules_from_mapping(data: Mapping[str, Any]) -> RuleSet:
    """Builds a rule set from parsed TOML; reports every unknown key and bad value at once."""
    problems = ProblemCollector()
    values: dict[str, Any] = {}
    for key, value in data.items():
        if key in _SECTIONS and key and isinstance(value, Mapping):
            inner: str
            for inner, inner_value in value.items():
                if inner not in _SECTIONS[key]:
                    problems.add(f"{key}.{inner}", _quoted(inner_value), "unknown key")
                    continue
                values[_FIELD_OF.get((key, inner), inner)] = inner_value
        elif key in _SECTIONS[""]:
            values[key] = str(value) if key == "version" else value
        else:
            problems.add(key, _quoted(value), "unknown key or section")
    for key in ("node_types", "channel_node_types"):
        if key in values:
            values[key] = _node_type_table(
                values[key], f"fences.{key}", problems, key == "node_types"
            )
    if "click_collect_transfer_types" in values:
        values["click_collect_transfer_types"] = _node_type_list(
            values["click_collect_transfer_types"], "click_collect.transfer_node_types", problems
        )
    for name, key in (
        ("allow_partial", "fences.allow_partial"),
        ("ship_complete", "fences.ship_complete"),
        ("allow_line_split", "fences.allow_line_split"),
        ("click_collect_own_stock_first", "click_collect.own_stock_first"),
    ):
        if name in values and not isinstance(values[name], bool):
            problems.add(key, values.pop(name), "must be true or false")
    backorders = {
        key.removeprefix("backorders."): values.pop(key)
        for key in list(values)
        if key.startswith("backorders.")
    }
    if backorders:
        try:
            values["backorders"] = Backorders(**backorders)
        except InvalidInput as bad:
            problems.extend(bad.problems)
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
    """Reads and validates a rule set from a TOML file (UTF-8, within the size limit)."""
    with open(path, "rb") as handle:
        raw = handle.read(4 * MAX_RULES_CHARS + 1)  # UTF-8: at most 4 bytes a character
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as bad:
        raise InvalidInput.one("rules", str(path), f"not UTF-8: {bad}") from None
    return parse_rules(text)


def parse_rules(text: str) -> RuleSet:
    """Validates a rule set given as TOML text (what RulesService receives).

    Text longer than `limits.MAX_RULES_CHARS` or nested deeper than `limits.MAX_RULES_NESTING`
    is refused before the TOML parser sees it (it recurses once per level).
    """
    if len(text) > MAX_RULES_CHARS:
        raise InvalidInput.one(
            "rules", f"{len(text)} characters", f"at most {MAX_RULES_CHARS} characters"
        )
    depth = nesting(text)
    if depth > MAX_RULES_NESTING:
        raise InvalidInput.one(
            "rules",
            text[:80],
            f"arrays and inline tables nested {depth} deep; at most {MAX_RULES_NESTING}",
        )
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as bad:
        raise InvalidInput.one("rules", text[:80], f"not valid TOML: {bad}") from None
    except RecursionError:  # the scan above keeps valid TOML from here; this is the backstop
        raise InvalidInput.one("rules", text[:80], "nested too deeply") from None
    depth = data_depth(data)  # dotted keys (a.b.c = 1, [a.b.c]) nest without brackets
    if depth > MAX_RULES_NESTING:
        raise InvalidInput.one(
            "rules", text[:80], f"tables and keys nested more than {MAX_RULES_NESTING} deep"
        )
    return rules_from_mapping(data)


def data_depth(data: object) -> int:
    """How deep tables and arrays nest in parsed TOML (a plain value is depth 0); iterative."""
    deepest = 0
    stack: list[tuple[object, int]] = [(data, 0)]
    while stack:
        value, depth = stack.pop()
        children: list[object] = []
        if isinstance(value, Mapping):
            children = list(value.values())
        elif isinstance(value, list):
            children = value
        else:
            continue
        deepest = max(deepest, depth + 1)
        if deepest > MAX_RULES_NESTING:
            return deepest
        stack.extend((child, depth + 1) for child in children)
    return deepest


# Strings and comments (whose brackets do not nest anything), and the brackets that do.
_TOKENS = re.compile(
    r'"""(?:[^\\]|\\.)*?"""|\'\'\'.*?\'\'\'|"(?:[^"\\\n]|\\.)*"|\'[^\'\n]*\'|#[^\n]*|[\[\]{}]',
    re.DOTALL,
)


def nesting(text: str) -> int:
    """How deep arrays and inline tables nest in TOML `text` (a table header counts as 1).

    A linear scan that skips strings and comments; on broken TOML it may count brackets inside
    an unterminated string, which only ever makes it refuse text the parser would refuse too.
    """
    depth = deepest = 0
    for match in _TOKENS.finditer(text):
        token = match.group()
        if token in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif token in "]}":
            depth = max(0, depth - 1)
    return deepest


def default_rules_text() -> str:
    """The shipped, commented default rule file."""
    return resources.files(__package__).joinpath("default_rules.toml").read_text(encoding="utf-8")


def default_rules() -> RuleSet:
    return parse_rules(default_rules_text())
