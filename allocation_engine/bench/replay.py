"""Planner what-if replay: what would these rules have done with this order history?

An order history (JSON lines, one order per line, as `codec.order_from_dict` reads it) is replayed
in order against an inventory snapshot (CSV `node_id,sku,on_hand[,reserved,safety_stock]`, the
format `allocation-engine load-snapshot` reads), drawing stock down and spending node capacity as
it goes, under one or two rule sets side by side. A sweep replays a range of values of one weight
and traces the cost-versus-splits trade-off, so a planner can pick a point before publishing.

The network is the embedded demo network unless a nodes file (a JSON list of nodes) is given.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np

from allocation_engine.app.demo import demo_network
from allocation_engine.bench.harness import Replay, replay
from allocation_engine.bench.kpi import Kpis, kpis, node_usage, repriced
from allocation_engine.bench.report import fmt, markdown_table, save_figure, write_json
from allocation_engine.engine import (
    FieldProblem,
    InvalidInput,
    Inventory,
    InventoryPosition,
    Network,
    Order,
    RuleSet,
)
from allocation_engine.engine.codec import node_from_dict, order_from_dict


def load_orders(path: Path) -> list[Order]:
    """Reads an order history; every bad line is reported with its line number."""
    orders, problems = [], []
    for number, text in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not text.strip():
            continue
        try:
            orders.append(order_from_dict(json.loads(text)))
        except json.JSONDecodeError as bad:
            problems.append(FieldProblem(f"{path.name}:{number}", text[:60], f"not JSON: {bad}"))
        except InvalidInput as bad:
            problems += [
                FieldProblem(f"{path.name}:{number}.{p.field}", p.value, p.problem)
                for p in bad.problems
            ]
    if problems:
        raise InvalidInput(problems)
    if not orders:
        raise InvalidInput.one(path.name, str(path), "holds no orders")
    return orders


SNAPSHOT_COLUMNS = ("node_id", "sku", "on_hand")
COUNT_COLUMNS = ("on_hand", "reserved", "safety_stock")


def load_snapshot(path: Path, network: Network) -> Inventory:
    """Reads an inventory snapshot; bad rows are reported with their row number and column."""
    with path.open(newline="", encoding="utf-8") as handle:
        rows = csv.DictReader(handle)
        missing = [c for c in SNAPSHOT_COLUMNS if c not in (rows.fieldnames or ())]
        if missing:
            raise InvalidInput.one(f"{path.name}.columns", rows.fieldnames, f"missing {missing}")
        positions, problems = [], []
        for number, row in enumerate(rows, start=2):  # row 1 is the header
            counts = {}
            for column in COUNT_COLUMNS:
                text = (row.get(column) or "0").strip()
                if not text.isdigit():
                    where = f"{path.name}:{number}.{column}"
                    problems.append(FieldProblem(where, text, "must be an integer >= 0"))
                counts[column] = int(text) if text.isdigit() else 0
            if row["node_id"] not in network.index:
                where = f"{path.name}:{number}.node_id"
                problems.append(FieldProblem(where, row["node_id"], "unknown node"))
                continue
            positions.append(InventoryPosition(row["node_id"], row["sku"], **counts))
    if problems:
        raise InvalidInput(problems)
    return Inventory.from_positions(network, positions)


def load_network(path: Path | None) -> Network:
    """The nodes file's network (a JSON list of nodes), or the embedded demo network."""
    if path is None:
        return demo_network()
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, list):
        raise InvalidInput.one(path.name, type(data).__name__, "must be a JSON list of nodes")
    return Network.of(node_from_dict(item) for item in data)


def numeric_rules() -> dict[str, type]:
    """Rule fields a sweep can vary (weights, limits), by name, with their number type."""
    kinds = {"float": float, "float | None": float, "int": int, "int | None": int}
    return {f.name: kinds[str(f.type)] for f in fields(RuleSet) if str(f.type) in kinds}


def parse_sweep(spec: str, rules: RuleSet) -> tuple[str, list[float]]:
    """'unit_distance_cost=0:0.002:9' -> ('unit_distance_cost', 9 evenly spaced values)."""
    name, _, span = spec.partition("=")
    parts = span.split(":")
    numeric = numeric_rules()
    if name not in numeric:
        raise InvalidInput.one("sweep", spec, f"{name!r} is not a numeric rule: {sorted(numeric)}")
    try:
        start, stop, count = float(parts[0]), float(parts[1]), int(parts[2])
    except (IndexError, ValueError):
        raise InvalidInput.one("sweep", spec, "expected name=start:stop:count") from None
    if len(parts) != 3 or count < 2:
        raise InvalidInput.one("sweep", spec, "expected name=start:stop:count with count >= 2")
    return name, np.linspace(start, stop, count).tolist()


@dataclass(frozen=True)
class Scenario:
    """One rule set replayed over the history."""

    label: str
    rules: RuleSet
    run: Replay
    kpis: Kpis
    usage: dict[str, Any]
    base_cost: float  # the plans priced at the first rule set's weights


def run_scenario(
    label: str,
    orders: Sequence[Order],
    network: Network,
    inventory: Inventory,
    rules: RuleSet,
    base: RuleSet,
    method: str = "engine",
) -> Scenario:
    """Replays the history under `rules`; `base` is the rule set every scenario is priced at."""
    run = replay(orders, network, inventory, rules, method)
    return Scenario(
        label,
        rules,
        run,
        kpis(label, run.outcomes, {}),
        node_usage(run.outcomes, network),
        repriced(run.outcomes, network, base),
    )


def sweep_rules(base: RuleSet, name: str, values: Sequence[float]) -> list[tuple[str, RuleSet]]:
    """The base rule set with `name` set to each value (ints stay ints)."""
    cast = numeric_rules()[name]
    return [
        (f"{name}={cast(value):g}", base.with_weights(**{name: cast(value)})) for value in values
    ]


# ----- output ---------------------------------------------------------------------------------

ROWS: tuple[tuple[str, str, str], ...] = (
    ("orders", "orders", ""),
    ("planned", "planned", "%"),
    ("total cost (own weights)", "total_cost", ""),
    ("cost per order", "cost_per_order", ""),
    ("split rate", "split_rate", "%"),
    ("packages per order", "packages_per_order", ""),
    ("km per unit", "km_per_unit", ""),
    ("fill rate", "fill_rate", "%"),
    ("p50 ms", "p50_ms", "ms"),
    ("p99 ms", "p99_ms", "ms"),
)


def comparison(scenarios: Sequence[Scenario]) -> list[list[str]]:
    """The side-by-side rows: KPIs, then shipments per node type, capacity and busiest nodes."""
    rows = [
        [title] + [fmt(getattr(s.kpis, key), kind) for s in scenarios] for title, key, kind in ROWS
    ]
    rows.insert(3, ["total cost (base weights)"] + [fmt(s.base_cost) for s in scenarios])
    kinds = sorted({k for s in scenarios for k in s.usage["by_type"]})
    for kind in kinds:
        rows.append(
            [f"shipments from {kind}s"]
            + [str(s.usage["by_type"].get(kind, {}).get("shipments", 0)) for s in scenarios]
        )
    for kind in sorted({k for s in scenarios for k in s.usage["capacity"]}):
        rows.append(
            [f"{kind} capacity used (full nodes)"]
            + [_capacity(s.usage["capacity"].get(kind)) for s in scenarios]
        )
    rows.append(
        ["busiest nodes"]
        + [
            ", ".join(f"{n} {c}" for n, c in list(s.usage["by_node"].items())[:3]) or "-"
            for s in scenarios
        ]
    )
    return rows


SWEEP_HEADERS = (
    "value",
    "cost (base)",
    "split rate",
    "pkgs/order",
    "km/unit",
    "fill rate",
    "shipments WH/ST/SUP",
)


def sweep_rows(points: Sequence[Scenario]) -> list[list[str]]:
    """One row per swept value: the trade-off a planner picks a point from."""
    rows = []
    for p in points:
        types = p.usage["by_type"]
        mix = "/".join(
            str(types.get(k, {}).get("shipments", 0)) for k in ("warehouse", "store", "supplier")
        )
        rows.append(
            [
                p.label.split("=", 1)[-1],
                fmt(p.base_cost),
                fmt(p.kpis.split_rate, "%"),
                fmt(p.kpis.packages_per_order),
                fmt(p.kpis.km_per_unit),
                fmt(p.kpis.fill_rate, "%"),
                mix,
            ]
        )
    return rows


def _per_node(scenarios: Sequence[Scenario]) -> list[list[str]]:
    nodes = sorted({n for s in scenarios for n in s.usage["by_node"]})
    return [[n] + [str(s.usage["by_node"].get(n, 0)) for s in scenarios] for n in nodes]


def _capacity(row: dict[str, int] | None) -> str:
    if not row or not row["capacity"]:
        return "-"
    return f"{row['used']}/{row['capacity']} ({row['full']} of {row['nodes']} full)"


def write_replay_report(
    scenarios: Sequence[Scenario],
    out: Path,
    *,
    command: str,
    sweep: tuple[str, Sequence[Scenario]] | None = None,
) -> Path:
    """Writes results.json, report.md and plots for a replay into `out`."""
    out.mkdir(parents=True, exist_ok=True)
    everything = [*scenarios, *(sweep[1] if sweep else ())]
    write_json(
        {
            "command": command,
            "scenarios": [
                {
                    "label": s.label,
                    "rules": f"{s.rules.name}@{s.rules.version}",
                    "base_cost": s.base_cost,
                    "kpis": s.kpis.as_dict(),
                    "usage": s.usage,
                }
                for s in everything
            ],
        },
        out / "results.json",
    )
    parts = [
        "# What-if replay",
        f"`{command}`",
        markdown_table(["KPI", *(s.label for s in scenarios)], comparison(scenarios)),
        f"![by node type]({_node_type_plot(scenarios, out)})",
        "### Shipments per node",
        markdown_table(["node", *(s.label for s in scenarios)], _per_node(scenarios)),
    ]
    if sweep:
        name, points = sweep
        parts += [
            f"## Sweep of {name}",
            "Every point replays the whole history with the first rule set and this one value "
            "changed; costs are priced at the first rule set's weights so the points compare.",
            markdown_table(SWEEP_HEADERS, sweep_rows(points)),
            f"![trade-off]({_trade_off_plot(name, points, out)})",
        ]
    path = out / "report.md"
    path.write_text("\n\n".join(parts) + "\n", encoding="utf-8")
    return path


def _node_type_plot(scenarios: Sequence[Scenario], out: Path) -> str:
    kinds = sorted({k for s in scenarios for k in s.usage["by_type"]})
    figure, (left, right) = plt.subplots(1, 2, figsize=(9, 3.6))
    width = 0.8 / max(1, len(scenarios))
    for i, s in enumerate(scenarios):
        xs = [x + i * width for x in range(len(kinds))]
        left.bar(
            xs,
            [s.usage["by_type"].get(k, {}).get("shipments", 0) for k in kinds],
            width,
            label=s.label,
        )
    left.set_xticks([x + 0.4 - width / 2 for x in range(len(kinds))], kinds)
    left.set(title="shipments per node type")
    left.legend(fontsize=8)
    right.bar([s.label for s in scenarios], [s.kpis.split_rate * 100 for s in scenarios])
    right.set(title="split rate (%)")
    return save_figure(figure, out / "replay_by_node_type.png")


def _trade_off_plot(name: str, points: Sequence[Scenario], out: Path) -> str:
    """Left: cost against split rate, one point per value (the curve to pick from); right: both
    against the swept value."""
    figure, (curve, along) = plt.subplots(1, 2, figsize=(11, 4.2))
    values = [float(p.label.split("=", 1)[1]) for p in points]
    splits = [p.kpis.split_rate * 100 for p in points]
    costs = [p.base_cost for p in points]
    curve.plot(splits, costs, marker="o")
    for value, x, y in zip(values, splits, costs, strict=True):
        curve.annotate(f"{value:g}", (x, y), fontsize=7, xytext=(4, 4), textcoords="offset points")
    curve.set(
        xlabel="split rate (%)",
        ylabel="total cost at the base weights",
        title=f"cost vs splits over {name}",
    )
    curve.grid(True, alpha=0.3)
    along.plot(values, costs, marker="o", color="tab:blue")
    along.set(xlabel=name, ylabel="total cost at the base weights")
    split_axis = along.twinx()
    split_axis.plot(values, splits, marker="s", color="tab:orange")
    split_axis.set_ylabel("split rate (%)", color="tab:orange")
    along.set_title(f"cost (blue) and split rate (orange) against {name}")
    return save_figure(figure, out / "replay_sweep_trade_off.png")
