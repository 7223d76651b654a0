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


def error_of(capsys: pytest.CaptureFixture[str]) -> str:
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err + captured.out
    return captured.err


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "No such file or directory"),
        ("{not json", "not valid JSON: Expecting property name enclosed in double quotes (line 1"),
        (b"\xff\xfe", "not UTF-8 text"),
    ],
    ids=["missing", "malformed", "binary"],
)
def test_a_file_that_cannot_be_read_is_one_line_and_exit_2(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    content: str | bytes | None,
    expected: str,
) -> None:
    """Given an order file that is missing, not JSON or not text, when `plan` reads it, then
    the command names the file and the reason on one line, exits 2 and prints no traceback."""
    path = tmp_path / "order.json"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    assert main(["plan", str(path)]) == 2
    err = error_of(capsys)
    assert err.startswith(f"error: {path}: ")
    assert expected in err


def test_a_place_order_file_of_the_wrong_shape_is_refused_before_any_call(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Given a JSON file with a field PlaceOrderRequest does not have, when `order place` reads
    it, then it exits 2 naming the field, without calling a server (none listens here)."""
    path = tmp_path / "order.json"
    path.write_text(json.dumps({"channel": "web", "qty": 2}))
    assert main(["order", "place", str(path), "--target", "127.0.0.1:1"]) == 2
    err = error_of(capsys)
    assert "not a PlaceOrderRequest" in err
    assert "qty" in err


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        ("node_id,sku,on_hand\nWH-FRA,A,7\nWH-FRA,B,lots\n", ":3: on_hand='lots': must be a whole"),
        ("node_id,sku,on_hand\nWH-FRA,A,-1\n", ":2: on_hand='-1': must be a whole number"),
        ("node_id,sku\nWH-FRA,A\n", "missing columns ['on_hand']"),
        ("node_id,sku,on_hand\nWH-FRA,,7\n", ":2: node_id and sku are required"),
        ("node_id,sku,on_hand\nWH-FRA,A,7,9\n", ":2: more fields than the header names"),
    ],
    ids=["word", "negative", "no-column", "no-sku", "extra-field"],
)
@pytest.mark.parametrize("store", ["memory"], indirect=True)
def test_a_bad_snapshot_line_refuses_the_load_and_changes_nothing(
    server: AllocationServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    rows: str,
    expected: str,
) -> None:
    """Given a snapshot CSV with one bad line after good ones, when it is loaded, then the
    command names the line, column and value, exits 2, and the server's stock is unchanged
    (the file is checked before anything is sent)."""
    target = ["--target", server.address]
    assert main(["availability", "A", "B", "--json", *target]) == 0
    before = capsys.readouterr().out
    csv = tmp_path / "snapshot.csv"
    csv.write_text(rows)
    assert main(["load-snapshot", str(csv), "--version", "2", "--chunk", "1", *target]) == 2
    assert expected in error_of(capsys)
    assert main(["availability", "A", "B", "--json", *target]) == 0
    assert capsys.readouterr().out == before


def test_bench_refuses_an_unknown_family(capsys: pytest.CaptureFixture[str]) -> None:
    """Given `bench --families f9`, then it names the option and the known families, exit 2,
    instead of running nothing and reporting success."""
    assert main(["bench", "--families", "f2,f9"]) == 2
    err = error_of(capsys)
    assert "--families='f9'" in err
    assert "['f1', 'f2', 'f3', 'f4', 'f5']" in err


@pytest.mark.parametrize(
    ("order", "expected"),
    [
        (
            ORDER | {"lines": [{"sku": "A", "qty": 2}]},
            ["order.lines[0].qty=2: unknown field", "order.lines[0].quantity=None: is required"],
        ),
        ([ORDER], ["order=[{"]),
        (
            ORDER | {"ship_to": {"latitude": "north", "longitude": 6.96, "country": "DE"}},
            ["order.ship_to.latitude='north': must be a number"],
        ),
        (ORDER | {"customer_type": "B2X"}, ["order.customer_type='B2X': must be one of"]),
    ],
    ids=["typo", "not-an-object", "text-for-a-number", "unknown-enum"],
)
def test_an_order_file_with_a_wrong_field_names_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], order: object, expected: list[str]
) -> None:
    """Given an order file with a typo'd key, the wrong shape or a wrong value, when `plan`
    reads it, then every problem is named by its path (a typo as an unknown field beside the
    missing one), exit 2, no traceback."""
    path = tmp_path / "order.json"
    path.write_text(json.dumps(order))
    assert main(["plan", str(path)]) == 2
    err = error_of(capsys)
    for text in expected:
        assert text in err
