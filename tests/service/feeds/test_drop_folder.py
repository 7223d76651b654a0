"""The ERP drop folder over a real Redis: a good file is applied and moved to done/, a bad one
to refused/ beside a .error.txt saying why, the same file dropped again is a replay, a file
still being written waits, and a store that does not answer leaves the file for the next
sweep."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from allocation_engine.adapters.feeds.drop_folder import DropFolder
from allocation_engine.adapters.redis.inventory import RedisStore
from allocation_engine.app.feeds import erp_drop_folder, erp_feeds, open_erp_feeds
from allocation_engine.errors import StoreUnavailable
from allocation_engine.service.feeds.erp import FeedReport
from tests.support.grpc_inventory import seed_tiny
from tests.support.orders import free_port


@pytest.fixture
def store(redis_url: str) -> RedisStore:
    stocked = RedisStore.from_url(redis_url)
    seed_tiny(stocked)
    return stocked


def drop(folder: Path, name: str, text: str, age: float = 10.0) -> Path:
    """A file written `age` seconds ago (settled)."""
    path = folder / name
    path.write_text(text)
    past = time.time() - age
    os.utime(path, (past, past))
    return path


def test_good_files_go_to_done_and_bad_ones_to_refused(store: RedisStore, tmp_path: Path) -> None:
    """Given a good snapshot and a delta with a bad row dropped, when the folder is swept, then
    the snapshot is applied and in done/, the delta is in refused/ with the line named in its
    .error.txt, and stock moved by the snapshot only."""
    folder = erp_drop_folder(tmp_path, erp_feeds(store))
    drop(tmp_path, "a-stock-2.csv", "node_id,sku,on_hand\nWH-FRA,A,7\nWH-FRA,B,2\n")
    drop(tmp_path, "b-moves.csv", "node_id,sku,delta,reason\nWH-FRA,A,-1,sold\nWH-FRA,A,x,y\n")
    taken = folder.sweep()
    assert [(t.name, t.moved_to.parent.name) for t in taken] == [
        ("a-stock-2.csv", "done"),
        ("b-moves.csv", "refused"),
    ]
    error = (tmp_path / "refused" / "b-moves.csv.error.txt").read_text()
    assert error == 'line 3, field delta: "x" must be an integer\n'
    assert {lv.sku: lv.on_hand for lv in store.node_stock("WH-FRA")} == {"A": 7, "B": 2}
    assert list(tmp_path.glob("*.csv")) == []


def test_the_same_file_dropped_again_is_a_replay(store: RedisStore, tmp_path: Path) -> None:
    """Given a delta applied from the folder, when the same file is dropped again, then it is
    moved to done/ beside the first (as a replay) and stock moved once."""
    folder = erp_drop_folder(tmp_path, erp_feeds(store))
    text = "node_id,sku,delta,reason\nWH-FRA,A,-1,sold\n"
    drop(tmp_path, "moves.csv", text)
    folder.sweep()
    drop(tmp_path, "moves.csv", text)
    (again,) = folder.sweep()
    assert isinstance(again.result, FeedReport) and again.result.replayed
    assert again.moved_to == tmp_path / "done" / "moves.1.csv"
    assert store.node_stock("WH-FRA")[0].on_hand == 4


def test_a_file_still_being_written_waits(store: RedisStore, tmp_path: Path) -> None:
    """Given a file written just now and one named .part, when swept, then neither is taken."""
    folder = erp_drop_folder(tmp_path, erp_feeds(store), settle_seconds=30)
    drop(tmp_path, "moves.csv", "node_id,sku,delta,reason\nWH-FRA,A,-1,sold\n", age=0)
    drop(tmp_path, "moves.csv.part", "node_id,sku,delta,reason\n")
    assert folder.sweep() == []
    assert store.node_stock("WH-FRA")[0].on_hand == 5


def test_a_store_that_does_not_answer_leaves_the_file_for_the_next_sweep(
    store: RedisStore, tmp_path: Path
) -> None:
    """Given the store unreachable, when the folder is swept, then the error is raised and the
    file stays; the next sweep with the store back applies it."""
    drop(tmp_path, "moves.csv", "node_id,sku,delta,reason\nWH-FRA,A,-1,sold\n")
    down = erp_drop_folder(tmp_path, open_erp_feeds(f"redis://127.0.0.1:{free_port()}/0"))
    with pytest.raises(StoreUnavailable):
        down.sweep()
    assert (tmp_path / "moves.csv").exists()
    assert [
        t.moved_to.parent.name for t in erp_drop_folder(tmp_path, erp_feeds(store)).sweep()
    ] == ["done"]


def test_watch_applies_files_until_stopped(store: RedisStore, tmp_path: Path) -> None:
    """Given a watching folder, when a file lands, then it is applied within a few sweeps."""
    folder = DropFolder(tmp_path, erp_feeds(store).apply, lambda error: None, settle_seconds=0)
    stop = threading.Event()
    seen: list[str] = []
    watcher = threading.Thread(
        target=folder.watch, args=(stop, 0.05), kwargs={"on_taken": lambda t: seen.append(t.name)}
    )
    watcher.start()
    try:
        drop(tmp_path, "moves.csv", "node_id,sku,delta,reason\nWH-FRA,A,-1,sold\n")
        deadline = time.monotonic() + 10
        while not seen and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        watcher.join()
    assert seen == ["moves.csv"]
    assert store.node_stock("WH-FRA")[0].on_hand == 4
