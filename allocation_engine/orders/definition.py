"""Workflows as data: named, ordered steps chosen per order by simple conditions.

A workflow file (TOML; the shipped one is `default_workflows.toml`) holds `[[workflow]]`
tables, tried in file order; the first whose `when` matches an order carries it:

    [[workflow]]
    name = "b2c-prepaid"
    payment = "card"                     # card | invoice
    when = { customer_types = ["B2C"] }  # channels, customer_types, min/max_order_value
    steps = [
      { step = "await_payment", until = "authorized" },
      { step = "reserve" },
      ...
    ]
    [workflow.notify]                    # event type -> e-mail template
    "payment.authorized" = "payment_confirmed"

Validation reads the whole file and reports every problem, each naming the workflow, the step
(index and kind) and what is wrong, so a bad file is refused before any order sees it.
"""

from __future__ import annotations

import tomllib
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from importlib import resources
from pathlib import Path
from typing import Any

from allocation_engine.engine.order import CustomerType
from allocation_engine.errors import InvalidInput, ProblemCollector
from allocation_engine.orders.events import NOTIFIABLE, EventType

PAYMENT_KINDS = ("card", "invoice", "marketplace")
"""card: authorized by the customer up front, captured by a step; invoice: paid after billing;
marketplace: collected by the marketplace the order came from (Amazon, eBay), which pays out."""


@dataclass(frozen=True)
class Param:
    """One step parameter: its allowed values (None = any of `kind`) and default."""

    kind: type
    default: object = None
    choices: tuple[object, ...] | None = None
    required: bool = False
    minimum: int | None = None


STEP_PARAMS: Mapping[str, Mapping[str, Param]] = {
    "notify": {"template": Param(str, required=True)},
    "await_payment": {
        "until": Param(str, default="authorized", choices=("authorized", "captured"))
    },
    "reserve": {},
    "capture_payment": {},
    "release_to_wms": {},
    "await_shipment": {},
    "await_delivery": {},
    "invoice": {"due_days": Param(int, default=30, minimum=0)},
}
"""The step library: kind -> its parameters. What each step does is in `steps.py`."""

ONCE = frozenset(STEP_PARAMS) - {"notify"}


@dataclass(frozen=True)
class Step:
    kind: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def param(self, name: str) -> Any:
        return self.params.get(name, STEP_PARAMS[self.kind][name].default)


@dataclass(frozen=True)
class When:
    """Which orders a workflow takes. Empty sets match anything; values are in minor units."""

    channels: frozenset[str] = frozenset()
    customer_types: frozenset[CustomerType] = frozenset()
    min_order_value: int | None = None
    max_order_value: int | None = None

    def matches(self, channel: str, customer_type: CustomerType, value: int) -> bool:
        return (
            (not self.channels or channel in self.channels)
            and (not self.customer_types or customer_type in self.customer_types)
            and (self.min_order_value is None or value >= self.min_order_value)
            and (self.max_order_value is None or value <= self.max_order_value)
        )


REROUTE_FALLBACKS = ("cancel", "backorder", "hold")
MAX_REROUTES = 20


@dataclass(frozen=True)
class Reroute:
    """What becomes of units a node rejected or picked short.

    They are allocated again at once, at other nodes, at most `max_reroutes` times per order.
    When that cap is reached, or no node can take them within the order's fences (ship
    complete, the shipment limit counting the parcels already out, ship-together groups), or
    no node has them: `otherwise` says what happens. "cancel": those units are cancelled and
    refunded, and the rest of the order goes on. "backorder": they are promised from incoming
    supply due at any node (the customer told the day), or held when none is expected.
    "hold": the order blocks for an operator (the customer is told it is delayed); ResumeOrder
    tries the reroute again.
    """

    max_reroutes: int = 2
    otherwise: str = "hold"


@dataclass(frozen=True)
class Workflow:
    name: str
    payment: str
    steps: tuple[Step, ...]
    when: When = When()
    notify: Mapping[EventType, str] = field(default_factory=dict)
    description: str = ""
    reroute: Reroute = Reroute()

    def first(self, kind: str) -> Step | None:
        return next((s for s in self.steps if s.kind == kind), None)


@dataclass(frozen=True)
class Workflows:
    """A validated workflow file, in the order its workflows are tried."""

    workflows: tuple[Workflow, ...]

    def select(self, channel: str, customer_type: CustomerType, value: int) -> Workflow:
        """The first workflow whose conditions match, or InvalidInput saying none does."""
        for workflow in self.workflows:
            if workflow.when.matches(channel, customer_type, value):
                return workflow
        raise InvalidInput.one(
            "order",
            {"channel": channel, "customer_type": customer_type.value, "value": value},
            "no workflow matches this channel, customer type and order value",
        )

    def get(self, name: str) -> Workflow:
        for workflow in self.workflows:
            if workflow.name == name:
                return workflow
        raise InvalidInput.one("workflow", name, "no workflow of that name")

    @property
    def templates(self) -> frozenset[str]:
        """Every e-mail template the workflows send."""
        out = {t for w in self.workflows for t in w.notify.values()}
        out |= {s.param("template") for w in self.workflows for s in w.steps if s.kind == "notify"}
        return frozenset(out)


def parse_workflows(text: str, templates: Collection[str] | None = None) -> Workflows:
    """Reads and validates a workflow file given as TOML text.

    `templates`, when given, are the e-mail templates that exist; naming another is an error.
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as bad:
        raise InvalidInput.one("workflows", text[:80], f"not valid TOML: {bad}") from None
    return workflows_from_mapping(data, templates)


def load_workflows(path: str | Path, templates: Collection[str] | None = None) -> Workflows:
    return parse_workflows(Path(path).read_text(encoding="utf-8"), templates)


def default_workflows_text() -> str:
    return resources.files(__package__).joinpath("default_workflows.toml").read_text("utf-8")


def default_workflows(templates: Collection[str] | None = None) -> Workflows:
    return parse_workflows(default_workflows_text(), templates)


def workflows_from_mapping(
    data: Mapping[str, Any], templates: Collection[str] | None = None
) -> Workflows:
    problems = ProblemCollector()
    _unknown_keys(data, {"workflow"}, "workflows", problems)
    tables = data.get("workflow")
    if not isinstance(tables, list) or not tables:
        problems.add("workflow", tables, "a workflow file needs at least one [[workflow]] table")
        problems.raise_if_any()
    assert isinstance(tables, list)
    out: list[Workflow] = []
    seen: set[str] = set()
    for i, table in enumerate(tables):
        name = table.get("name") if isinstance(table, Mapping) else None
        where = f"workflow[{name}]" if isinstance(name, str) and name else f"workflow[{i}]"
        if not isinstance(table, Mapping):
            problems.add(where, table, "must be a table")
            continue
        if not isinstance(name, str) or not name.strip():
            problems.add(f"{where}.name", name, "must be a non-empty string")
        elif name in seen:
            problems.add(f"{where}.name", name, "repeats an earlier workflow's name")
        else:
            seen.add(name)
        workflow = _workflow(table, where, templates, problems)
        if workflow is not None:
            out.append(workflow)
    problems.raise_if_any()
    return Workflows(tuple(out))


def _workflow(
    table: Mapping[str, Any],
    where: str,
    templates: Collection[str] | None,
    problems: ProblemCollector,
) -> Workflow | None:
    _unknown_keys(
        table,
        {"name", "description", "payment", "when", "steps", "notify", "reroute"},
        where,
        problems,
    )
    payment = table.get("payment")
    if payment not in PAYMENT_KINDS:
        problems.add(f"{where}.payment", payment, f"must be one of {list(PAYMENT_KINDS)}")
    when = _when(table.get("when", {}), f"{where}.when", problems)
    raw_steps = table.get("steps")
    if not isinstance(raw_steps, list) or not raw_steps:
        problems.add(f"{where}.steps", raw_steps, "must be a non-empty list of step tables")
        return None
    steps = [
        _step(raw, f"{where}.steps[{i}]", templates, problems) for i, raw in enumerate(raw_steps)
    ]
    notify = _notify(table.get("notify", {}), f"{where}.notify", templates, problems)
    if any(step is None for step in steps):
        return None  # the order of steps is checked once every step is known
    checked = tuple(step for step in steps if step is not None)
    _check_order(checked, str(payment), where, problems)
    description = table.get("description", "")
    if not isinstance(description, str):
        problems.add(f"{where}.description", description, "must be a string")
    reroute = _reroute(table.get("reroute", {}), f"{where}.reroute", problems)
    return Workflow(
        str(table.get("name")), str(payment), checked, when, notify, str(description), reroute
    )


def _reroute(raw: object, where: str, problems: ProblemCollector) -> Reroute:
    if not isinstance(raw, Mapping):
        problems.add(where, raw, "must be a table such as { max_reroutes = 2 }")
        return Reroute()
    _unknown_keys(raw, {"max_reroutes", "otherwise"}, where, problems)
    cap = raw.get("max_reroutes", Reroute.max_reroutes)
    if not isinstance(cap, int) or isinstance(cap, bool) or not 0 <= cap <= MAX_REROUTES:
        problems.add(f"{where}.max_reroutes", cap, f"must be an integer in [0, {MAX_REROUTES}]")
        cap = Reroute.max_reroutes
    otherwise = raw.get("otherwise", Reroute.otherwise)
    if otherwise not in REROUTE_FALLBACKS:
        problems.add(f"{where}.otherwise", otherwise, f"must be one of {list(REROUTE_FALLBACKS)}")
        otherwise = Reroute.otherwise
    return Reroute(cap, str(otherwise))


def _step(
    raw: object, where: str, templates: Collection[str] | None, problems: ProblemCollector
) -> Step | None:
    if not isinstance(raw, Mapping):
        problems.add(where, raw, 'must be a table such as { step = "reserve" }')
        return None
    kind = raw.get("step")
    if not isinstance(kind, str) or kind not in STEP_PARAMS:
        problems.add(f"{where}.step", kind, f"unknown step; the library has {sorted(STEP_PARAMS)}")
        return None
    where = f"{where} ({kind})"
    spec = STEP_PARAMS[kind]
    _unknown_keys(raw, {"step", *spec}, where, problems)
    params: dict[str, Any] = {}
    for name, param in spec.items():
        if name not in raw:
            if param.required:
                problems.add(f"{where}.{name}", None, "is required")
            continue
        value = raw[name]
        if not isinstance(value, param.kind) or isinstance(value, bool):
            problems.add(f"{where}.{name}", value, f"must be a {param.kind.__name__}")
        elif param.choices is not None and value not in param.choices:
            problems.add(f"{where}.{name}", value, f"must be one of {list(param.choices)}")
        elif param.minimum is not None and isinstance(value, int) and value < param.minimum:
            problems.add(f"{where}.{name}", value, f"must be >= {param.minimum}")
        else:
            params[name] = value
    if kind == "notify" and templates is not None and params.get("template") not in templates:
        problems.add(f"{where}.template", params.get("template"), "no such e-mail template")
    return Step(kind, params)


def _check_order(
    steps: tuple[Step, ...], payment: str, where: str, problems: ProblemCollector
) -> None:
    """The dependencies between steps: what must come before what, and what is required."""
    first: dict[str, int] = {}
    for i, step in enumerate(steps):
        label = f"{where}.steps[{i}] ({step.kind})"
        if step.kind in first and step.kind in ONCE:
            problems.add(label, step.kind, f"repeats steps[{first[step.kind]}]; it may appear once")
            continue
        first.setdefault(step.kind, i)
        needs = _NEEDS.get(step.kind)
        if needs is not None and needs not in first:
            problems.add(label, step.kind, f"needs an earlier {needs} step")
        if step.kind == "capture_payment":
            if payment == "invoice":
                problems.add(label, payment, "invoices are paid, not captured")
            elif (
                "await_payment" in first
                and steps[first["await_payment"]].param("until") != "authorized"
            ):
                problems.add(
                    label, step.kind, 'needs an earlier await_payment with until = "authorized"'
                )
        if step.kind == "invoice" and payment != "invoice":
            problems.add(label, payment, 'an invoice step needs payment = "invoice"')
        if step.kind == "await_payment" and payment == "invoice":
            if step.param("until") != "captured":
                problems.add(
                    label, step.param("until"), 'invoices are paid: use until = "captured"'
                )
            if "invoice" not in first:
                problems.add(label, step.kind, "needs an earlier invoice step")
    if "reserve" not in first:
        problems.add(f"{where}.steps", None, "needs a reserve step: every order is allocated")
    if "release_to_wms" not in first:
        problems.add(f"{where}.steps", None, "needs a release_to_wms step: goods must leave")
    if payment == "card":
        await_payment = first.get("await_payment")
        if await_payment is None:
            problems.add(f"{where}.steps", None, "a card workflow needs an await_payment step")
        elif steps[await_payment].param("until") == "authorized" and "capture_payment" not in first:
            problems.add(
                f"{where}.steps[{await_payment}] (await_payment)",
                "authorized",
                "the authorized money is never captured: add a capture_payment step after it",
            )
    if payment == "invoice" and "invoice" not in first:
        problems.add(f"{where}.steps", None, "an invoice workflow needs an invoice step")


_NEEDS = {
    "release_to_wms": "reserve",
    "await_shipment": "release_to_wms",
    "await_delivery": "await_shipment",
    "capture_payment": "await_payment",
}


def _when(raw: object, where: str, problems: ProblemCollector) -> When:
    if not isinstance(raw, Mapping):
        problems.add(where, raw, "must be a table")
        return When()
    _unknown_keys(
        raw, {"channels", "customer_types", "min_order_value", "max_order_value"}, where, problems
    )
    channels = raw.get("channels", [])
    if not isinstance(channels, list) or not all(isinstance(c, str) and c for c in channels):
        problems.add(f"{where}.channels", channels, "must be a list of channel names")
        channels = []
    types = raw.get("customer_types", [])
    names = [t.value for t in CustomerType]
    if not isinstance(types, list) or any(t not in names for t in types):
        problems.add(f"{where}.customer_types", types, f"must be a list drawn from {names}")
        types = []
    low = _money(raw.get("min_order_value"), f"{where}.min_order_value", problems)
    high = _money(raw.get("max_order_value"), f"{where}.max_order_value", problems)
    if low is not None and high is not None and low > high:
        problems.add(
            f"{where}.min_order_value", raw.get("min_order_value"), "exceeds max_order_value"
        )
    return When(frozenset(channels), frozenset(CustomerType(t) for t in types), low, high)


def _money(raw: object, where: str, problems: ProblemCollector) -> int | None:
    """An amount in major units (12.50) as minor units (1250); None when absent."""
    if raw is None:
        return None
    try:
        if isinstance(raw, bool):
            raise InvalidOperation
        cents = Decimal(str(raw)) * 100
    except InvalidOperation:
        cents = Decimal(-1)
    if cents < 0 or cents != cents.to_integral_value():
        problems.add(where, raw, "must be an amount >= 0 with at most two decimals")
        return None
    return int(cents)


def _notify(
    raw: object, where: str, templates: Collection[str] | None, problems: ProblemCollector
) -> dict[EventType, str]:
    if not isinstance(raw, Mapping):
        problems.add(where, raw, 'must be a table of "event.type" = "template"')
        return {}
    out: dict[EventType, str] = {}
    for event, template in raw.items():
        if event not in NOTIFIABLE:
            known = [t.value for t in NOTIFIABLE]
            problems.add(f"{where}.{event}", template, f"unknown event type; known: {known}")
        elif not isinstance(template, str) or (templates is not None and template not in templates):
            problems.add(f"{where}.{event}", template, "no such e-mail template")
        else:
            out[EventType(event)] = template
    return out


def _unknown_keys(
    table: Mapping[str, Any], known: Collection[str], where: str, problems: ProblemCollector
) -> None:
    for key in table:
        if key not in known:
            problems.add(
                f"{where}.{key}", table[key], f"unknown key; expected one of {sorted(known)}"
            )
