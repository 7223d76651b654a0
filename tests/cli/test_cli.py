"""The client subcommands against a real server: tables for people, JSON for machines."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from allocation_engine.api.server import AllocationServer
from allocation_engine.cli.main import main

ORDER = {
    "id": "cli-1",
    "ship_to": {"latitude": 50.94, "longitude": 6.96, "country": "DE"},
    "lines": [{"sku": "A", "quantity": 2}],
}


@pytest.fixture
def order_file(tmp_path: Path) -> Path:
    path = tmp_path / "order.json"
    path.write_text(json.dumps(ORDER))
    return path


@pytest.mark.parametrize("store", ["memory"], indirect=True)
def test_allocate_prints_the_plan_as_a_table_or_json(
    server: AllocationServer, order_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["allocate", str(order_file), "--target", server.address]) == 0
    table = capsys.readouterr().out
    assert "OPTIMAL" in table
    assert "WH-FRA" in table
    assert main(["allocate", str(order_file), "--target", server.address, "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)["plan"]
    assert plan["status"] == "PLAN_STATUS_OPTIMAL"
    assert plan["shipments"][0]["node_id"] == "WH-FRA"


@pytest.mark.parametrize("store", ["memory"], indirect=True)
def test_reserve_then_availability_shows_the_hold(
    server: AllocationServer, order_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = ["--target", server.address]
    assert main(["reserve", str(order_file), "--key", "cli-k", *target]) == 0
    assert "HELD" in capsys.readouterr().out
    assert main(["availability", "A", "--json", *target]) == 0
    sku = json.loads(capsys.readouterr().out)["skus"][0]
    assert (int(sku["reserved"]), int(sku["available"])) == (2, 12)


@pytest.mark.parametrize("store", ["memory"], indirect=True)
def test_an_error_prints_its_code_and_details_and_exits_1(
    server: AllocationServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    short = tmp_path / "short.json"
    short.write_text(json.dumps(ORDER | {"lines": [{"sku": "A", "quantity": 99}]}))
    assert main(["reserve", str(short), "--key", "k", "--target", server.address]) == 1
    out = capsys.readouterr().out
    assert "FAILED_PRECONDITION" in out
    assert "short: A requested 99, available 14" in out


@pytest.mark.parametrize("store", ["memory"], indirect=True)
def test_load_snapshot_streams_a_csv_in_chunks(
    server: AllocationServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv = tmp_path / "snapshot.csv"
    csv.write_text("node_id,sku,on_hand,safety_stock\nWH-FRA,A,7,1\nWH-BER,A,3,\nST-MUC,C,4,0\n")
    args = ["load-snapshot", str(csv), "--version", "2", "--chunk", "2", "--json"]
    assert main([*args, "--target", server.address]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert (int(answer["positions_applied"]), answer["chunks"]) == (3, 2)
    assert main(["availability", "A", "C", "--json", "--target", server.address]) == 0
    skus = {s["sku"]: int(s["available"]) for s in json.loads(capsys.readouterr().out)["skus"]}
    assert skus == {"A": 6 + 2, "C": 4}
