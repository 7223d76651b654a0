"""Writes bench results as JSON and as a Markdown report with PNG plots (matplotlib, no screen).

The report's sections: where each target stands, then F2 (per method over the whole grid, then
latency per cell), F4 and F5 (per set of orders, per method), F1 (cost against the LP bound per
setting, then order-by-order figures), F3.
`markdown_table` and `save_figure` serve the replay report too.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: no display on servers and CI

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from allocation_engine.bench.targets import FULL_COMMAND, evaluate

METHOD_ORDER = (
    "engine",
    "reference",
    "mip-scip",
    "mip-cbc",
    "mip-highs",
    "shopify",
    "salesforce",
    "myopic",
)


def ordered(methods: Sequence[str]) -> list[str]:
    known = [m for m in METHOD_ORDER if m in methods]
    return known + sorted(set(methods) - set(known))


def plain(value: Any) -> Any:
    """JSON-safe: NaN and infinities become null (strict JSON has no NaN)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def write_json(data: Any, path: Path) -> None:
    path.write_text(json.dumps(plain(data), indent=2) + "\n", encoding="utf-8")


def fmt(value: Any, kind: str = "") -> str:
    """A cell of a Markdown table: '-' for missing, percentages, ms and plain numbers."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if kind == "%":
        return f"{value:.2%}"
    if kind == "ms":
        return f"{value:.2f}"
    if kind == "x":
        return f"{value:.0f}x" if value >= 10 else f"{value:.1f}x"
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 100 else f"{value:,.0f}"
    return str(value)


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def save_figure(figure: Figure, path: Path) -> str:
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path.name


KPI_HEADERS = (
    "method",
    "orders",
    "p50 ms",
    "p99 ms",
    "proven optimal",
    "gap mean",
    "gap p95",
    "gap max",
    "split rate",
    "packages/order",
    "km/unit",
    "fill rate",
)


def kpi_rows(methods: dict[str, Any], ratios: dict[str, float] | None = None) -> list[list[str]]:
    rows = []
    for m in ordered(list(methods)):
        k = methods[m]
        rows.append(
            [
                m,
                str(k["orders"]),
                fmt(k["p50_ms"], "ms"),
                fmt(k["p99_ms"], "ms"),
                fmt(k["proven_optimal"], "%"),
                fmt(k["gap_mean"], "%"),
                fmt(k["gap_p95"], "%"),
                fmt(k["gap_max"], "%"),
                fmt(k["split_rate"], "%"),
                fmt(k["packages_per_order"]),
                fmt(k["km_per_unit"]),
                fmt(k["fill_rate"], "%"),
            ]
        )
    return rows


# ----- the bench report ---------------------------------------------------------------------


def write_bench_report(results: dict[str, Any], out: Path) -> Path:
    """Writes results.json, report.md and the plots into `out`; returns the report's path."""
    out.mkdir(parents=True, exist_ok=True)
    standings = evaluate(results)
    write_json(
        results | {"targets": [asdict(s) | {"status": s.verdict} for s in standings]},
        out / "results.json",
    )
    meta = results["meta"]
    parts = [
        "# Benchmark report",
        f"Mode **{meta['config']['mode']}**, started {meta['started']} on {meta['machine']}, "
        f"OR-Tools {meta['ortools']}. Times are wall clock per order in one process "
        "(`allocate` end to end: fences, reduction, model, solve, plan), after one untimed "
        "warm-up call per method. Gaps are to the cost some exact method proved optimal for "
        "the same order on the same stock.",
        "## Targets",
        markdown_table(
            ("target", "measured", "status"),
            [(s.target, s.measured, s.verdict) for s in standings],
        ),
        f"Reproduce: `{FULL_COMMAND}` (full) or `allocation-engine bench --quick` (quick).",
    ]
    if "f2" in results:
        parts += _f2_section(results["f2"], out)
    for family in ("f4", "f5"):
        if results.get(family, {}).get("sets"):
            parts += _f45_section(family, results[family], out)
    if "f1" in results:
        parts += _f1_section(results["f1"], out)
    parts += _f3_section(results.get("f3"))
    path = out / "report.md"
    path.write_text("\n\n".join(parts) + "\n", encoding="utf-8")
    return path


def _f2_section(f2: dict[str, Any], out: Path) -> list[str]:
    summary = f2["summary"]
    parts = [
        "## F2: single-order latency grid",
        "Independent orders on fresh stock over a German network (3 % warehouses, 5 % "
        "suppliers, stores the rest). The reference model and MIP backends run on the first "
        "orders of each cell and stop in a cell once they miss their time limit.",
        "### All cells, per method",
        markdown_table(KPI_HEADERS, kpi_rows(summary["methods"])),
        "Speed ratio (median per order, method time / engine time): "
        + ", ".join(f"{m} {fmt(r, 'x')}" for m, r in summary["speed_ratio"].items()),
    ]
    parts += _disagreements(summary["disagreements"])
    headers = [
        "cell",
        "engine p50",
        "engine p99",
        "engine optimal",
        "reference p50 (n)",
        "speed ratio",
        "shopify gap mean",
        "salesforce gap mean",
        "did not finish",
    ]
    rows = []
    for cell in f2["cells"]:
        m = cell["methods"]
        ref = m.get("reference")
        rows.append(
            [
                cell["cell"],
                fmt(m["engine"]["p50_ms"], "ms"),
                fmt(m["engine"]["p99_ms"], "ms"),
                fmt(m["engine"]["proven_optimal"], "%"),
                f"{fmt(ref['p50_ms'], 'ms')} ({ref['orders']})" if ref else "-",
                fmt(cell["speed_ratio"].get("reference"), "x"),
                fmt(m["shopify"]["gap_mean"], "%"),
                fmt(m["salesforce"]["gap_mean"], "%"),
                "; ".join(f"{k}: {v}" for k, v in cell["did_not_finish"].items()) or "-",
            ]
        )
    parts += ["### Per cell (latency in ms)", markdown_table(headers, rows)]
    parts.append(f"![latency]({_latency_plot(f2, out)})")
    parts.append(f"![cost gap]({_bar_plot(summary['methods'], 'gap_mean', 'gap_p95', out)})")
    parts.append(f"![split rate]({_split_plot(f2, out)})")
    return parts


def _disagreements(found: list[dict[str, Any]]) -> list[str]:
    """Orders where exact methods proved different optima: one of them is wrong; list them."""
    if not found:
        return []
    rows = [
        [d["order_id"], ", ".join(f"{m} {c:.6f}" for m, c in d["costs"].items())]
        for d in found[:10]
    ]
    return [
        f"**Exact methods proved different optima on {len(found)} orders** (first 10):",
        markdown_table(("order", "cost per method"), rows),
    ]


def _latency_plot(f2: dict[str, Any], out: Path) -> str:
    lines = sorted({row["lines"] for row in f2["by_size"]})
    figure, axes = plt.subplots(1, len(lines), figsize=(4 * len(lines), 3.6), squeeze=False)
    for ax, k in zip(axes[0], lines, strict=True):
        rows = [r for r in f2["by_size"] if r["lines"] == k]
        for method in ordered(list(rows[0]["methods"])):
            points = [(r["nodes"], r["methods"][method]) for r in rows if method in r["methods"]]
            xs = [n for n, _ in points]
            (line,) = ax.plot(xs, [m["p50_ms"] for _, m in points], marker="o", label=method)
            ax.plot(xs, [m["p99_ms"] for _, m in points], ls="--", color=line.get_color())
        ax.set(xscale="log", yscale="log", title=f"{k} lines", xlabel="nodes")
        ax.set_ylabel("ms per order (solid p50, dashed p99)")
        ax.grid(True, which="both", alpha=0.3)
    axes[0][0].legend(fontsize=7)
    return save_figure(figure, out / "f2_latency_vs_nodes.png")


def _bar_plot(methods: dict[str, Any], mean: str, p95: str, out: Path, name: str = "f2") -> str:
    names = ordered(list(methods))
    figure, ax = plt.subplots(figsize=(7, 3.6))
    xs = range(len(names))
    ax.bar([x - 0.2 for x in xs], [100 * (methods[m][mean] or 0) for m in names], 0.4, label="mean")
    ax.bar([x + 0.2 for x in xs], [100 * (methods[m][p95] or 0) for m in names], 0.4, label="p95")
    ax.set_xticks(list(xs), names, rotation=20)
    ax.set(ylabel="cost gap to proven optimum (%)", title=f"{name.upper()}: cost gap per method")
    ax.legend()
    return save_figure(figure, out / f"{name}_cost_gap.png")


def _split_plot(f2: dict[str, Any], out: Path) -> str:
    methods = f2["summary"]["methods"]
    names = ordered(list(methods))
    figure, ax = plt.subplots(figsize=(7, 3.6))
    ax.bar(names, [100 * methods[m]["split_rate"] for m in names])
    ax.set(ylabel="orders in > 1 package (%)", title="F2: split rate per method")
    ax.tick_params(axis="x", rotation=20)
    return save_figure(figure, out / "f2_split_rate.png")


F45_HEADERS = (
    "method",
    "orders",
    "p50 ms",
    "p90 ms",
    "p99 ms",
    "max ms",
    "OPTIMAL",
    "FEASIBLE",
    "INFEASIBLE",
    "not finished",
    "off optimum",
    "gap max",
    "time / engine",
)
F45_ABOUT = {
    "f4": (
        "F4: bulk B2B orders",
        "2 to 8 lines of 40 to 1,000 units each on distributor stock (warehouses hundreds of "
        "units a sku, suppliers up to a thousand, stores a handful), skus drawn at 5 % and 20 % "
        "of nodes in turn; every fourth order is B2B (warehouses only).",
    ),
    "f5": (
        "F5: long baskets",
        "20 to 60 lines of 1 or 2 units on the F2 stock depths.",
    ),
}


def _f45_section(family: str, found: dict[str, Any], out: Path) -> list[str]:
    title, about = F45_ABOUT[family]
    parts = [
        f"## {title}",
        f"{about} Every order is planned by every method on the same fresh stock (the exact "
        "methods on the first orders of a set where the run limits them). **not finished**: no "
        "plan within the method's time limit, counted at that limit; **off optimum**: planned at "
        "another cost than the best optimum some exact method proved; **time / engine**: median "
        "over orders of the method's time over the engine's.",
    ]
    for s in found["sets"]:
        share = "" if s.get("share") is None else f", skus at {s['share'] * 100:g} % of nodes"
        limits = ", ".join(f"{m} {t:g} s" for m, t in s["time_limits"].items())
        parts += [
            f"### {s['family']} ({s['orders']} orders, {s['nodes']:,} nodes{share})",
            markdown_table(F45_HEADERS, f45_rows(s)),
            f"Time limits: {limits}. Engine against the best independent MIP (the faster of the "
            f"backends on each order, {s['best_mip_orders']} orders): "
            f"{fmt(s['speed_ratio'].get('best-mip'), 'x')} (median of per-order ratios). Engine "
            f"orders past {s['engine_time_limit']['limit_s']:g} s + "
            f"{s['engine_time_limit']['slack'] * 100:g} %: {s['engine_time_limit']['over']} of "
            f"{s['engine_time_limit']['orders']}.",
        ]
        parts += _disagreements(s["disagreements"])
        if s["status_conflicts"]:
            rows = [
                [c["order_id"], ", ".join(f"{m} {v}" for m, v in c["statuses"].items())]
                for c in s["status_conflicts"][:10]
            ]
            parts += [
                f"**Exact methods disagree on feasibility on {len(s['status_conflicts'])} "
                "orders** (first 10):",
                markdown_table(("order", "status per method"), rows),
            ]
    parts.append(f"![{family} latency]({_f45_plot(family, found, out)})")
    return parts


def f45_rows(found: dict[str, Any]) -> list[list[str]]:
    rows = []
    for m in ordered(list(found["methods"])):
        k = found["methods"][m]
        seen = found["statuses"].get(m, {})
        rows.append(
            [
                m,
                str(k["orders"]),
                fmt(k["p50_ms"], "ms"),
                fmt(k["p90_ms"], "ms"),
                fmt(k["p99_ms"], "ms"),
                fmt(k["max_ms"], "ms"),
                str(seen.get("OPTIMAL", 0)),
                str(seen.get("FEASIBLE", 0)),
                str(seen.get("INFEASIBLE", 0)),
                str(sum(v for st, v in seen.items() if st not in PLAN_STATUSES)),
                str(found["off_optimum"].get(m, 0)),
                fmt(k["gap_max"], "%"),
                "1x" if m == "engine" else fmt(found["speed_ratio"].get(m), "x"),
            ]
        )
    return rows


PLAN_STATUSES = ("OPTIMAL", "FEASIBLE", "INFEASIBLE")
# The columns a terminal has room for (the CLI prints them after a run).
F45_CONSOLE = ("method", "orders", "p50 ms", "p99 ms", "max ms", "OPTIMAL", "not finished")


def f45_console_rows(found: dict[str, Any]) -> list[list[str]]:
    """`f45_rows` cut to F45_CONSOLE plus the time over the engine's (as "x engine")."""
    keep = [F45_HEADERS.index(h) for h in (*F45_CONSOLE, "time / engine")]
    return [[row[i] for i in keep] for row in f45_rows(found)]


def _f45_plot(family: str, found: dict[str, Any], out: Path) -> str:
    """Per set, each order's time per method (log scale): the spread behind the percentiles."""
    sets = found["sets"]
    figure, axes = plt.subplots(1, len(sets), figsize=(4.5 * len(sets), 3.6), squeeze=False)
    for ax, s in zip(axes[0], sets, strict=True):
        names = ordered(list(s["methods"]))
        for x, m in enumerate(names):
            ms = [r["methods"][m]["ms"] for r in s["per_order"] if m in r["methods"]]
            ax.scatter([x] * len(ms), ms, s=12, alpha=0.6)
        ax.set_xticks(list(range(len(names))), names, rotation=20)
        ax.set(yscale="log", title=s["family"], ylabel="ms per order")
        ax.grid(True, axis="y", which="both", alpha=0.3)
    return save_figure(figure, out / f"{family}_latency.png")


def _f1_section(f1: dict[str, Any], out: Path) -> list[str]:
    parts = [
        "## F1: multi-item fulfilment sequences (Jasin & Sinha 2015)",
        "Each policy draws down its own stock over the sequence; unfilled items cost what the "
        "papers' dummy centre costs. **/ LP**: total cost of the sequence over the optimum of the "
        "deterministic LP over expected demand (the papers' yardstick, a lower bound on any "
        "policy's expected cost). **/ offline**: over the same LP on the sequence's realised "
        "orders (a lower bound even for a policy that knew the whole sequence in advance). Both "
        "averaged over instances x sequences; '-' where the LP did not finish in its time limit.",
    ]
    policies = sorted({m for s in f1["settings"] for m in s["ratio_to_lp"]}, key=METHOD_ORDER.index)
    rows = [
        [
            s["setting"],
            str(s["periods"]),
            f"{s['instances']} x {s['sequences']}",
            str(s["orders"]),
            ", ".join(f"{t:.0f}" for t in s["lp_seconds"] + s["offline_lp_seconds"]),
        ]
        + [
            f"{fmt(s['ratio_to_lp'].get(m))} / {fmt(s['ratio_to_offline_lp'].get(m))}"
            for m in policies
        ]
        for s in f1["settings"]
    ]
    headers = (
        "setting",
        "T",
        "instances x sequences",
        "orders",
        "LP seconds",
        *(f"{m}: / LP, / offline" for m in policies),
    )
    parts.append(markdown_table(headers, rows))
    for s in f1["settings"]:
        parts += [
            f"### {s['setting']}: policies on their own stock",
            markdown_table(KPI_HEADERS, kpi_rows(s["policies"])),
            f"### {s['setting']}: order by order on the engine's stock",
            "The reference model and MIP backends plan a sample of the orders (every "
            f"{_every(s)}-th), the peers every order.",
            markdown_table(KPI_HEADERS, kpi_rows(s["per_order"]["methods"])),
            "Speed ratio (method / engine): "
            + ", ".join(f"{m} {fmt(r, 'x')}" for m, r in s["per_order"]["speed_ratio"].items()),
        ]
        gap_plot = _bar_plot(
            s["per_order"]["methods"], "gap_mean", "gap_p95", out, f"f1-{s['setting']}"
        )
        parts.append(f"![cost gap]({gap_plot})")
        parts += _disagreements(s["per_order"]["disagreements"])
    parts.append(f"![F1 ratio]({_f1_plot(f1, policies, out)})")
    return parts


def _every(setting: dict[str, Any]) -> str:
    methods = setting["per_order"]["methods"]
    if "reference" not in methods or not methods["reference"]["orders"]:
        return "?"
    return str(round(methods["engine"]["orders"] / methods["reference"]["orders"]))


def _f1_plot(f1: dict[str, Any], policies: list[str], out: Path) -> str:
    settings = [s["setting"] for s in f1["settings"]]
    figure, ax = plt.subplots(figsize=(7, 3.6))
    width = 0.8 / max(1, len(policies))
    for i, m in enumerate(policies):
        xs = [x + i * width for x in range(len(settings))]
        ax.bar(xs, [s["ratio_to_lp"].get(m, 0) for s in f1["settings"]], width, label=m)
    ax.axhline(1.0, color="black", lw=0.8)
    ax.set_xticks([x + 0.4 - width / 2 for x in range(len(settings))], settings)
    ax.set(ylabel="total cost / LP bound", title="F1: cost against the LP lower bound")
    ax.legend(fontsize=8)
    return save_figure(figure, out / "f1_ratio_to_lp.png")


def _f3_section(f3: dict[str, Any] | None) -> list[str]:
    parts = ["## F3: the service end to end"]
    if not f3 or f3.get("status") != "run":
        why = f3.get("why", "") if f3 else "not requested"
        return [*parts, f"F3 was not run: {why}."]
    headers = ("load", "clients", "calls", "per second", "p50 ms", "p90 ms", "p99 ms", "errors")
    rows = [
        [
            name,
            str(r["clients"]),
            str(r["calls"]),
            f"{r['throughput']:.0f}",
            fmt(r["p50_ms"], "ms"),
            fmt(r["p90_ms"], "ms"),
            fmt(r["p99_ms"], "ms"),
            str(r["errors"] or "-"),
        ]
        for name, r in f3["results"].items()
    ]
    return [
        *parts,
        "Allocate and Reserve over gRPC against a throwaway redis-server, driven by the load "
        "generator's client processes (`allocation_engine/service_bench.py`).",
        markdown_table(headers, rows),
    ]
