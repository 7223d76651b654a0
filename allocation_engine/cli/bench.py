"""The `bench`, `replay` and `rejects` subcommands, registered on the main CLI by `register`.

The commands import the harness (matplotlib, OR-Tools' linear solver) only when they run, so
every other subcommand starts as fast as before.
"""

from __future__ import annotations

import argparse
import shlex
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

from allocation_engine.engine import InvalidInput, default_rules, load_rules

if TYPE_CHECKING:
    from allocation_engine.bench.replay import Scenario


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Adds `bench` and `replay` to the CLI's subcommands."""
    bench = subparsers.add_parser(
        "bench", help="run the solver benchmarks (F1 to F5) and write a report"
    )
    size = bench.add_mutually_exclusive_group()
    size.add_argument(
        "--quick",
        dest="mode",
        action="store_const",
        const="quick",
        help="a small subset in a minute or two (the default)",
    )
    size.add_argument(
        "--full",
        dest="mode",
        action="store_const",
        const="full",
        help="every family at full size (what `make bench` runs)",
    )
    bench.set_defaults(mode="quick", func=_cmd_bench)
    bench.add_argument("--out", default="reports/bench", help="folder for the report")
    bench.add_argument(
        "--families",
        default="f1,f2,f3,f4,f5",
        help="comma-separated subset of f1,f2,f3,f4,f5 (default: all)",
    )
    bench.add_argument("--f2-orders", type=int, help="orders per F2 cell")
    bench.add_argument("--f4-orders", type=int, help="orders per F4 set (one set per size)")
    bench.add_argument("--f4-nodes", help="comma-separated F4 network sizes, e.g. 1000,5000")
    bench.add_argument("--f5-orders", type=int, help="orders per F5 set")
    bench.add_argument("--f5-nodes", help="comma-separated F5 network sizes, e.g. 1000")
    bench.add_argument(
        "--f5-share", type=float, help="share of nodes carrying each F5 sku (default 0.2)"
    )
    bench.add_argument("--f1-periods", type=int, help="arrivals per F1 sequence (T)")
    bench.add_argument("--f1-settings", help="comma-separated F1 settings, e.g. small-0.75")
    bench.add_argument("--f1-instances", type=int, help="F1 instances per setting")
    bench.add_argument("--f1-sequences", type=int, help="F1 sequences per instance")
    bench.add_argument(
        "--mip",
        help="MIP backends to compare, e.g. SCIP,CBC,HIGHS (default SCIP,CBC on F1/F2, "
        "HIGHS,SCIP on F4/F5)",
    )
    bench.add_argument("--no-progress", action="store_true", help="no progress bar")
    kinds = bench.add_subparsers(dest="kind", metavar="{scaling}")
    scaling = kinds.add_parser(
        "scaling", help="server CPU per call and throughput from 1 to N server processes"
    )
    scaling.add_argument("--servers", default="1,2", help="server process counts, e.g. 1,2,4")
    scaling.add_argument("--clients", type=int, default=4, help="client processes")
    scaling.add_argument("--duration", type=float, default=10.0, help="seconds per run")
    scaling.add_argument("--nodes", type=int, default=1_000)
    scaling.add_argument("--skus", type=int, default=2_000)
    scaling.add_argument("--repeats", type=int, default=1, help="runs per server count")
    scaling.add_argument(
        "--cluster", action="store_true", help="on a Redis Cluster of 3 masters (and 3 replicas)"
    )
    scaling.add_argument("--out", default="reports/scaling", help="folder for the report")
    scaling.set_defaults(func=_cmd_scaling)

    what_if = subparsers.add_parser(
        "replay", help="replay an order history under one or two rule sets and compare"
    )
    what_if.add_argument("--orders", required=True, help="order history, one JSON order a line")
    what_if.add_argument("--snapshot", required=True, help="CSV node_id,sku,on_hand[,...]")
    what_if.add_argument(
        "--rules",
        action="append",
        required=True,
        help="rule set TOML; give it twice to compare two",
    )
    what_if.add_argument("--nodes", help="JSON list of nodes (default: the demo network)")
    what_if.add_argument("--sweep", help="NAME=START:STOP:COUNT, e.g. unit_distance_cost=0:0.002:9")
    what_if.add_argument("--method", default="engine", help="planning method (default engine)")
    what_if.add_argument("--out", default="reports/replay", help="folder for the report")
    what_if.set_defaults(func=_cmd_replay)

    rejects = subparsers.add_parser(
        "rejects",
        help="replay an order history while nodes reject a share of parcels: "
        "how many orders a reroute saves from cancellation",
    )
    rejects.add_argument("--orders", required=True, help="order history, one JSON order a line")
    rejects.add_argument("--snapshot", required=True, help="CSV node_id,sku,on_hand[,...]")
    rejects.add_argument("--rules", help="rule set TOML (default: the shipped rules)")
    rejects.add_argument("--nodes", help="JSON list of nodes (default: the demo network)")
    rejects.add_argument(
        "--share", type=float, default=0.05, help="share of parcels rejected (default 0.05)"
    )
    rejects.add_argument("--seeds", type=int, default=20, help="replays with other draws")
    rejects.add_argument("--max-reroutes", type=int, default=2, help="reroutes per order")
    rejects.add_argument("--out", default="reports/rejects", help="folder for the report")
    rejects.set_defaults(func=_cmd_rejects)


def _cmd_bench(args: argparse.Namespace) -> int:
    """Runs the benchmark families and writes results.json, report.md and plots."""
    from allocation_engine.bench.f1 import SETTINGS
    from allocation_engine.bench.report import F45_CONSOLE, f45_console_rows, write_bench_report
    from allocation_engine.bench.runner import FAMILIES, PRESETS, run_bench
    from allocation_engine.bench.targets import evaluate

    config = PRESETS[args.mode]
    overrides = {
        "f2_orders": args.f2_orders,
        "f1_periods": args.f1_periods,
        "f4_orders": args.f4_orders,
        "f5_orders": args.f5_orders,
        "f5_share": args.f5_share,
    }
    config = replace(config, **{k: v for k, v in overrides.items() if v is not None})
    runs = {name: (instances, sequences) for name, instances, sequences in config.f1_runs}
    if args.f1_settings:
        names = [name.strip() for name in args.f1_settings.split(",")]
        for name in names:
            if name not in SETTINGS:
                raise InvalidInput.one("--f1-settings", name, f"must be one of {list(SETTINGS)}")
        runs = {name: runs.get(name, (1, 1)) for name in names}
    config = replace(
        config,
        f1_runs=tuple(
            (name, args.f1_instances or instances, args.f1_sequences or sequences)
            for name, (instances, sequences) in runs.items()
        ),
    )
    families = tuple(f.strip() for f in args.families.split(",") if f.strip())
    for family in families or ("",):
        if family not in FAMILIES:
            raise InvalidInput.one("--families", family, f"must be some of {list(FAMILIES)}")
    config = replace(config, families=families)
    if args.f4_nodes:
        config = replace(config, f4_nodes=_sizes("--f4-nodes", args.f4_nodes))
    if args.f5_nodes:
        config = replace(config, f5_nodes=_sizes("--f5-nodes", args.f5_nodes))
    if args.f5_share is not None and not 0 < args.f5_share <= 1:
        raise InvalidInput.one("--f5-share", args.f5_share, "must be in (0, 1]")
    if args.mip is not None:
        backends = tuple(b.strip().upper() for b in args.mip.split(","))
        config = replace(config, mip_backends=backends, f45_mip_backends=backends)
    results = run_bench(config, show_progress=not args.no_progress)
    path = write_bench_report(results, Path(args.out))
    console = Console()
    for family in ("f4", "f5"):
        for found in results.get(family, {}).get("sets", []):
            per_method = Table(title=f"{found['family']}: {found['orders']} orders")
            for header in (*F45_CONSOLE, "x engine"):
                per_method.add_column(header, justify="left" if header == "method" else "right")
            for row in f45_console_rows(found):
                per_method.add_row(*row)
            console.print(per_method)
    table = Table(title="targets")
    for column in ("target", "measured", "status"):
        table.add_column(column)
    for standing in evaluate(results):
        table.add_row(standing.target, standing.measured, standing.verdict)
    console.print(table)
    console.print(f"report: {path}")
    return 0


def _cmd_scaling(args: argparse.Namespace) -> int:
    """Runs the scale-out measurement and writes scaling.md and scaling.json."""
    import sys

    from allocation_engine.bench.scaling import run_scaling, write_report

    servers = _sizes("--servers", args.servers)
    report = run_scaling(
        servers, args.clients, args.duration, args.nodes, args.skus, args.repeats, args.cluster
    )
    path = write_report(report, Path(args.out), shlex.join(["allocation-engine", *sys.argv[1:]]))
    Console().print(path.read_text())
    return 0


def _sizes(flag: str, text: str) -> tuple[int, ...]:
    """Network sizes from a comma-separated list, e.g. "1000,5000"."""
    try:
        sizes = tuple(int(n) for n in text.split(","))
    except ValueError:
        sizes = ()
    if not sizes or min(sizes) < 1:
        raise InvalidInput.one(flag, text, "must be node counts >= 1, e.g. 1000,5000")
    return sizes


def _cmd_replay(args: argparse.Namespace) -> int:
    """Replays the history under each rule set (and a sweep) and prints the KPIs side by side."""
    from allocation_engine.bench.replay import (
        load_network,
        load_orders,
        load_snapshot,
        parse_sweep,
        run_scenario,
        sweep_rules,
        write_replay_report,
    )

    if len(args.rules) > 2:
        raise SystemExit("replay compares at most two rule sets (--rules a.toml --rules b.toml)")
    network = load_network(Path(args.nodes) if args.nodes else None)
    orders = load_orders(Path(args.orders))
    inventory = load_snapshot(Path(args.snapshot), network)
    rule_sets = [(rules.name, rules) for rules in map(load_rules, args.rules)]
    base = rule_sets[0][1]
    sweep = parse_sweep(args.sweep, base) if args.sweep else None
    console = Console()
    scenarios = [
        run_scenario(label, orders, network, inventory, rules, base, args.method)
        for label, rules in rule_sets
    ]
    points = None
    if sweep is not None:
        name, values = sweep
        points = (
            name,
            [
                run_scenario(label, orders, network, inventory, rules, base, args.method)
                for label, rules in sweep_rules(base, name, values)
            ],
        )
    _print(console, f"{len(orders)} orders replayed", scenarios)
    if points is not None:
        _print_sweep(console, *points)
    path = write_replay_report(scenarios, Path(args.out), command=_command(args), sweep=points)
    console.print(f"report: {path}")
    return 0


def _cmd_rejects(args: argparse.Namespace) -> int:
    """Both arms (cancel on reject, reroute) per seed; prints and writes the figure."""
    from allocation_engine.bench.rejects import SUMMARY_HEADERS, summary_rows, trials
    from allocation_engine.bench.replay import load_network, load_orders, load_snapshot
    from allocation_engine.bench.report import markdown_table, write_json

    if not 0 <= args.share <= 1:
        raise InvalidInput.one("--share", args.share, "must be a share in [0, 1]")
    if not 1 <= args.seeds <= 1000:
        raise InvalidInput.one("--seeds", args.seeds, "must be in [1, 1000]")
    if not 0 <= args.max_reroutes <= 20:
        raise InvalidInput.one("--max-reroutes", args.max_reroutes, "must be in [0, 20]")
    network = load_network(Path(args.nodes) if args.nodes else None)
    orders = load_orders(Path(args.orders))
    inventory = load_snapshot(Path(args.snapshot), network)
    rules = load_rules(args.rules) if args.rules else default_rules()
    runs = trials(
        orders,
        network,
        inventory,
        rules,
        share=args.share,
        seeds=range(args.seeds),
        max_reroutes=args.max_reroutes,
    )
    rows = summary_rows(runs)
    title = (
        f"{len(orders)} orders, {args.share:.0%} of parcels rejected, {args.seeds} seeds "
        "(median, range)"
    )
    table = Table(title=title)
    for header in SUMMARY_HEADERS:
        table.add_column(header, justify="right")
    for row in rows:
        table.add_row(*row)
    Console().print(table)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    command = shlex.join(["allocation-engine", "rejects", *_given(args)])
    report = out / "report.md"
    report.write_text(
        f"# Reroutes under rejects\n\n`{command}`\n\n{title}\n\n"
        + markdown_table(SUMMARY_HEADERS, rows)
        + "\n",
        encoding="utf-8",
    )
    write_json({"command": command, "trials": [asdict(t) for t in runs]}, out / "results.json")
    Console().print(f"report: {report}")
    return 0


def _given(args: argparse.Namespace) -> list[str]:
    """The rejects run's flags as given."""
    words = ["--orders", args.orders, "--snapshot", args.snapshot]
    for flag, value in (("--rules", args.rules), ("--nodes", args.nodes)):
        if value:
            words += [flag, value]
    counts = ["--share", str(args.share), "--seeds", str(args.seeds)]
    return [*words, *counts, "--max-reroutes", str(args.max_reroutes)]


def _command(args: argparse.Namespace) -> str:
    """The replay as a command line, for the report's heading."""
    words = ["allocation-engine", "replay", "--orders", args.orders, "--snapshot", args.snapshot]
    for path in args.rules:
        words += ["--rules", path]
    for flag, value in (("--nodes", args.nodes), ("--sweep", args.sweep)):
        if value:
            words += [flag, value]
    if args.method != "engine":
        words += ["--method", args.method]
    return shlex.join(words)


def _print_sweep(console: Console, name: str, points: Sequence[Scenario]) -> None:
    from allocation_engine.bench.replay import SWEEP_HEADERS, sweep_rows

    table = Table(title=f"sweep of {name}")
    for header in SWEEP_HEADERS:
        table.add_column(header, justify="right")
    for row in sweep_rows(points):
        table.add_row(*row)
    console.print(table)


def _print(console: Console, title: str, scenarios: Sequence[Scenario]) -> None:
    from allocation_engine.bench.replay import comparison

    table = Table(title=title)
    table.add_column("KPI")
    for s in scenarios:
        table.add_column(s.label, justify="right")
    for row in comparison(scenarios):
        table.add_row(*row)
    console.print(table)
