"""`allocation-engine replay`: the shipped samples run as the README shows; bad files are refused
with the line, field and value named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from allocation_engine.app.demo import demo_network
from allocation_engine.bench.replay import load_orders, load_snapshot, parse_sweep
from allocation_engine.cli.main import main
from allocation_engine.engine import InvalidInput, RuleSet

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_two_rule_sets_and_a_sweep_side_by_side(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Given the sample history, snapshot and rule files, when replayed with a 3-point sweep,
    then the KPIs print side by side and the report, its JSON and its plots are written."""
    code = main(
        [
            "replay",
            "--orders",
            str(EXAMPLES / "orders.jsonl"),
            "--snapshot",
            str(EXAMPLES / "inventory.csv"),
            "--rules",
            str(EXAMPLES / "a.toml"),
            "--rules",
            str(EXAMPLES / "b.toml"),
            "--sweep",
            "unit_distance_cost=0:0.002:3",
            "--out",
            str(tmp_path),
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "a-current" in printed and "b-local-first" in printed and "split rate" in printed
    results = json.loads((tmp_path / "results.json").read_text())
    labels = [s["label"] for s in results["scenarios"]]
    assert labels == [
        "a-current",
        "b-local-first",
        "unit_distance_cost=0",
        "unit_distance_cost=0.001",
        "unit_distance_cost=0.002",
    ]
    a, b = results["scenarios"][:2]
    assert a["kpis"]["orders"] == b["kpis"]["orders"] == 300
    assert b["kpis"]["packages_per_order"] <= 2  # b allows at most two packages
    assert a["base_cost"] == pytest.approx(a["kpis"]["total_cost"])  # a is the yardstick
    report = (tmp_path / "report.md").read_text()
    assert "## Sweep of unit_distance_cost" in report
    for png in ("replay_by_node_type.png", "replay_sweep_trade_off.png"):
        assert (tmp_path / png).stat().st_size > 1000


def test_bad_order_lines_are_named_by_line_and_field(tmp_path: Path) -> None:
    history = tmp_path / "orders.jsonl"
    good = (EXAMPLES / "orders.jsonl").read_text().splitlines()[0]
    bad = json.loads(good) | {"lines": [{"sku": "SKU-0001", "quantity": -2}]}
    history.write_text("\n".join([good, json.dumps(bad), "{not json"]) + "\n")
    with pytest.raises(InvalidInput) as refused:
        load_orders(history)
    fields = [(p.field, p.value) for p in refused.value.problems]
    assert fields[0] == ("orders.jsonl:2.order.lines[0].quantity", -2)
    assert fields[1][0] == "orders.jsonl:3"


def test_bad_snapshot_rows_are_named_by_row_and_column(tmp_path: Path) -> None:
    snapshot = tmp_path / "stock.csv"
    snapshot.write_text(
        "node_id,sku,on_hand\nWH-HAMBURG,SKU-0001,4\nWH-NOWHERE,SKU-0001,1\nWH-LEIPZIG,SKU-0002,x\n"
    )
    with pytest.raises(InvalidInput) as refused:
        load_snapshot(snapshot, demo_network())
    assert [(p.field, p.value) for p in refused.value.problems] == [
        ("stock.csv:3.node_id", "WH-NOWHERE"),
        ("stock.csv:4.on_hand", "x"),
    ]
    snapshot.write_text("node,sku\n")
    with pytest.raises(InvalidInput, match="missing"):
        load_snapshot(snapshot, demo_network())


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("unit_cost=0:1", "start:stop:count"),
        ("unit_cost=a:1:3", "start:stop:count"),
        ("unit_cost=0:1:1", "count >= 2"),
        ("colour=0:1:3", "not a numeric rule"),
        ("allow_partial=0:1:2", "not a numeric rule"),
    ],
)
def test_bad_sweeps_are_refused(spec: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message) as refused:
        parse_sweep(spec, RuleSet())
    assert refused.value.problems[0].value == spec


def test_sweep_values_are_evenly_spaced() -> None:
    assert parse_sweep("max_shipments=1:4:4", RuleSet()) == ("max_shipments", [1, 2, 3, 4])
    name, values = parse_sweep("unit_distance_cost=0:0.002:9", RuleSet())
    assert name == "unit_distance_cost" and values[1] == pytest.approx(0.00025)
