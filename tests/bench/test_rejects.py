"""The reroute figure: a history replayed while nodes reject a share of parcels."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from allocation_engine.bench.rejects import rejected, replay_rejects
from allocation_engine.cli.main import main
from allocation_engine.engine import (
    Inventory,
    Network,
    Node,
    NodeType,
    Order,
    OrderLine,
    RuleSet,
    ShipTo,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
COLOGNE = ShipTo(50.94, 6.96, "DE")
NETWORK = Network.of(
    [
        Node("WH-KOELN", NodeType.WAREHOUSE, 50.94, 6.96, "DE"),
        Node("WH-BERLIN", NodeType.WAREHOUSE, 52.52, 13.40, "DE"),
    ]
)


def test_the_draws_reject_the_share_asked_and_repeat_for_the_same_parcel() -> None:
    draws = [rejected(7, n, r, i, 0.05) for n in range(2000) for r in range(3) for i in range(4)]
    assert 0.04 < sum(draws) / len(draws) < 0.06
    assert draws == [
        rejected(7, n, r, i, 0.05) for n in range(2000) for r in range(3) for i in range(4)
    ]
    assert not any(rejected(7, n, 0, 0, 0.0) for n in range(500))
    assert all(rejected(7, n, 0, 0, 1.0) for n in range(500))


def test_a_rejected_parcel_is_saved_by_a_reroute_to_the_other_node() -> None:
    """One cup to Cologne ships from Koeln; with a seed whose draw rejects that parcel and not
    the next, the reroute ships it from Berlin, and without it the order is cancelled."""
    seed = next(
        s for s in range(1000) if rejected(s, 0, 0, 0, 0.5) and not rejected(s, 0, 1, 0, 0.5)
    )
    orders = [Order("o", (OrderLine("A", 1),), COLOGNE)]
    stock = Inventory.from_available(NETWORK, {"A": {"WH-KOELN": 1, "WH-BERLIN": 1}})
    common = {"share": 0.5, "seed": seed}
    without = replay_rejects(orders, NETWORK, stock, RuleSet(), reroute=False, **common)
    rerouted = replay_rejects(orders, NETWORK, stock, RuleSet(), reroute=True, **common)
    assert (without.hit, without.cancelled, without.saved) == (1, 1, 0)
    assert (rerouted.hit, rerouted.cancelled, rerouted.saved, rerouted.reroutes) == (1, 0, 1, 1)
    assert rerouted.reroute_cost > 0
    empty = Inventory.from_available(NETWORK, {"A": {"WH-KOELN": 1}})  # Berlin has none
    stuck = replay_rejects(orders, NETWORK, empty, RuleSet(), reroute=True, **common)
    assert (stuck.cancelled, stuck.reroutes) == (1, 0)


def test_when_every_parcel_is_rejected_no_reroute_saves_anything() -> None:
    orders = [Order(f"o{n}", (OrderLine("A", 1),), COLOGNE) for n in range(5)]
    stock = Inventory.from_available(NETWORK, {"A": {"WH-KOELN": 20, "WH-BERLIN": 20}})
    arm = replay_rejects(orders, NETWORK, stock, RuleSet(), share=1.0, seed=0, reroute=True)
    assert (arm.planned, arm.hit, arm.cancelled) == (5, 5, 5)
    assert arm.reroutes == 5  # each order's one reroute (to Berlin) was rejected as well
    calm = replay_rejects(orders, NETWORK, stock, RuleSet(), share=0.0, seed=0, reroute=True)
    assert (calm.hit, calm.cancelled, calm.reroutes) == (0, 0, 0)


def test_the_cli_writes_the_figure_on_the_sample_history(tmp_path: Path) -> None:
    args = ["rejects", "--orders", str(EXAMPLES / "orders.jsonl")]
    args += ["--snapshot", str(EXAMPLES / "inventory.csv"), "--seeds", "2", "--out", str(tmp_path)]
    assert main(args) == 0
    results = json.loads((tmp_path / "results.json").read_text())
    assert [t["seed"] for t in results["trials"]] == [0, 1]
    for trial in results["trials"]:
        without, rerouted = trial["without"], trial["with_reroute"]
        assert without["orders"] == rerouted["orders"] == 300
        assert without["cancelled"] == without["hit"] > 0  # nothing saves them without reroute
        assert rerouted["cancelled"] <= rerouted["hit"]
    report = (tmp_path / "report.md").read_text()
    assert "| cancel on reject |" in report and "| reroute |" in report


@pytest.mark.parametrize(
    ("flag", "value"), [("--share", "1.5"), ("--seeds", "0"), ("--max-reroutes", "21")]
)
def test_bad_arguments_are_named(
    tmp_path: Path, flag: str, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["rejects", "--orders", str(EXAMPLES / "orders.jsonl")]
    args += ["--snapshot", str(EXAMPLES / "inventory.csv"), flag, value, "--out", str(tmp_path)]
    assert main(args) != 0
    said = capsys.readouterr().err
    assert f"{flag}={value}" in said
    assert not (tmp_path / "report.md").exists()
