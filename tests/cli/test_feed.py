"""`allocation-engine feed` against a real Redis: files applied in order with a line each, a
refused file named with its problems and exit code 1, a replay said as such, and one sweep of a
drop folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from allocation_engine.adapters.redis.inventory import RedisStore
from allocation_engine.cli.main import main
from tests.support.grpc_inventory import seed_tiny


@pytest.fixture
def store(redis_url: str) -> RedisStore:
    stocked = RedisStore.from_url(redis_url)
    seed_tiny(stocked)
    return stocked


def test_feed_applies_files_and_names_a_refused_one(
    store: RedisStore, redis_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Given a snapshot, a bad delta and the snapshot again, when fed, then the snapshot is
    applied once, the delta refused with its line, and the exit code is 1."""
    snapshot = tmp_path / "stock-3.csv"
    snapshot.write_text("node_id,sku,on_hand\nWH-FRA,A,7\nWH-FRA,B,2\n")
    bad = tmp_path / "moves.csv"
    bad.write_text("node_id,sku,delta,reason\nWH-FRA,A,-1,\n")
    code = main(["feed", str(snapshot), str(bad), str(snapshot), "--redis-url", redis_url])
    out = capsys.readouterr().out.splitlines()
    assert code == 1
    assert out == [
        "stock-3.csv: snapshot v3, 2 rows: 2 positions set, 0 zeroed, 0 skipped (newer data)",
        "moves.csv: refused",
        '  line 2, field reason: "" is required',
        "stock-3.csv: snapshot v3, 2 rows: 2 positions set, 0 zeroed, 0 skipped (newer data)"
        " (applied before: nothing changed now)",
    ]
    assert store.node_stock("WH-FRA")[0].on_hand == 7


def test_feed_watch_once_sweeps_the_folder(
    store: RedisStore, redis_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Given a delta in a drop folder, when `feed --watch DIR --once --json` runs, then it is
    applied, moved to done/ and reported as JSON."""
    (tmp_path / "moves.csv").write_text("node_id,sku,delta,reason\nWH-FRA,A,2,received\n")
    code = main(["feed", "--watch", str(tmp_path), "--once", "--json", "--redis-url", redis_url])
    (line,) = capsys.readouterr().out.splitlines()
    assert code == 0
    assert json.loads(line)["moved_to"] == str(tmp_path / "done" / "moves.csv")
    assert json.loads(line)["applied"] == 1
    assert store.node_stock("WH-FRA")[0].on_hand == 7


def test_feed_wants_files_or_a_folder(redis_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Given neither files nor --watch, when run, then it says what it wants (exit 2)."""
    assert main(["feed", "--redis-url", redis_url]) == 2
    assert "give either files to apply or --watch DIR" in capsys.readouterr().err
