"""ERP files over the in-memory store, a real Redis and a real Redis Cluster: a snapshot
replaces the stock of the nodes it names, deltas move it, purchase orders become incoming lots,
each file is applied once (twice, or a crash and a re-run, changes nothing more), and a bad row
refuses the whole file with its line, field and value before anything changes. Hostile files
(empty, BOM, CRLF, not UTF-8, NUL, repeats, huge numbers, a million rows) are read safely."""

from __future__ import annotations

import datetime
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from allocation_engine.adapters.memory.inventory import MemoryStore
from allocation_engine.adapters.redis.inventory import RedisStore
from allocation_engine.app.feeds import erp_feeds
from allocation_engine.errors import InvalidInput, StoreUnavailable, VersionConflict
from allocation_engine.ports.inventory import (
    Adjustment,
    AdjustOutcome,
    Hold,
    InventoryStore,
    Level,
    SupplyKind,
)
from allocation_engine.service.feeds import erp
from allocation_engine.service.feeds.erp import ErpFeeds
from allocation_engine.service.feeds.table import explain
from tests.support.grpc_inventory import seed_tiny


@pytest.fixture(params=["memory", "redis", "redis-cluster"])
def stocked(request: pytest.FixtureRequest) -> InventoryStore:
    """The tiny network (WH-FRA A=5 B=2, WH-BER A=10 safety 1, ST-MUC B=3) in each store: in
    memory, on a redis-server, and on a Redis Cluster of three masters."""
    store: InventoryStore = (
        MemoryStore()
        if request.param == "memory"
        else RedisStore.from_url(request.getfixturevalue(f"{request.param.replace('-', '_')}_url"))
    )
    seed_tiny(store)
    return store


@pytest.fixture
def feeds(stocked: InventoryStore) -> ErpFeeds:
    return erp_feeds(stocked)


def write(folder: Path, name: str, text: str | bytes) -> Path:
    path = folder / name
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


def stock(store: InventoryStore) -> dict[tuple[str, str], tuple[int, int, int]]:
    """(node, sku) -> (on_hand, reserved, safety_stock) of every position of the tiny network."""
    return {
        (lv.node_id, lv.sku): (lv.on_hand, lv.reserved, lv.safety_stock)
        for node in ("WH-FRA", "WH-BER", "ST-MUC")
        for lv in store.node_stock(node)
    }


def in_days(days: int) -> str:
    """The UTC date `days` from today, as a file writes it."""
    return (datetime.datetime.now(datetime.UTC).date() + datetime.timedelta(days=days)).isoformat()


def refusal(feeds: ErpFeeds, path: Path) -> str:
    with pytest.raises(InvalidInput) as refused:
        feeds.apply(path)
    return explain(refused.value)


def test_a_snapshot_replaces_the_stock_of_the_nodes_it_names(
    feeds: ErpFeeds, stocked: InventoryStore, tmp_path: Path
) -> None:
    """Given WH-FRA holding A=5 and B=2 with 2 units of A held, when a snapshot names WH-FRA with
    A=7 (and safety 1) but not B, then A is 7, B is 0, the hold stays, other nodes are as they
    were."""
    stocked.hold([Hold("WH-FRA", "r-1", {"A": 2}, time.time() + 600)], time.time())
    path = write(tmp_path, "stock-2.csv", "node_id,sku,on_hand,safety_stock\nWH-FRA,A,7,1\n")
    report = feeds.apply(path)
    assert (report.kind, report.rows, report.zeroed, report.version) == ("snapshot", 1, 1, 2)
    assert stock(stocked) == {
        ("WH-FRA", "A"): (7, 2, 1),
        ("WH-FRA", "B"): (0, 0, 0),
        ("WH-BER", "A"): (10, 0, 1),
        ("ST-MUC", "B"): (3, 0, 0),
    }


def test_a_file_applied_twice_changes_nothing_the_second_time(
    feeds: ErpFeeds, stocked: InventoryStore, tmp_path: Path
) -> None:
    """Given a snapshot and a delta applied, and stock moved since, when both files are applied
    again, then each answers its first report as a replay and the stock is as before."""
    snapshot = write(tmp_path, "stock-2.csv", "node_id,sku,on_hand\nWH-FRA,A,7\nWH-FRA,B,2\n")
    delta = write(tmp_path, "moves.csv", "node_id,sku,delta,reason\nWH-FRA,A,-3,sold\n")
    first = [feeds.apply(snapshot), feeds.apply(delta)]
    stocked.adjust("till", [Adjustment("WH-FRA", "B", -1)])
    before = stock(stocked)
    again = [feeds.apply(snapshot), feeds.apply(delta)]
    assert [r.replayed for r in again] == [True, True]
    assert [r.applied for r in again] == [r.applied for r in first]
    assert stock(stocked) == before
    assert before[("WH-FRA", "A")][0] == 4 and before[("WH-FRA", "B")][0] == 1


def test_the_same_counts_as_a_newer_snapshot_apply_again(
    feeds: ErpFeeds, stocked: InventoryStore, tmp_path: Path
) -> None:
    """Given a snapshot applied and stock moved since, when the same bytes come as a newer
    version, then they apply (the key is the content and the version)."""
    text = "node_id,sku,on_hand\nWH-FRA,A,7\n"
    feeds.apply(write(tmp_path, "stock-2.csv", text))
    stocked.adjust("till", [Adjustment("WH-FRA", "A", -1)])
    assert not feeds.apply(write(tmp_path, "stock-3.csv", text)).replayed
    assert stock(stocked)[("WH-FRA", "A")][0] == 7


def test_an_older_snapshot_is_refused_and_changes_nothing(
    feeds: ErpFeeds, stocked: InventoryStore, tmp_path: Path
) -> None:
    """Given snapshot 5 applied, when snapshot 4 comes, then it is refused and stock stays."""
    feeds.apply(write(tmp_path, "stock-5.csv", "node_id,sku,on_hand\nWH-FRA,A,7\n"))
    before = stock(stocked)
    with pytest.raises(VersionConflict):
        feeds.apply(write(tmp_path, "stock-4.csv", "node_id,sku,on_hand\nWH-FRA,A,1\n"))
    assert stock(stocked) == before


def test_deltas_add_up_per_position_and_stop_at_zero(
    feeds: ErpFeeds, stocked: InventoryStore, tmp_path: Path
) -> None:
    """Given A=5 at WH-FRA, when a delta file moves it by +4 and -2 and ST-MUC's B by -10, then
    A is 7 and B stops at 0 (reported clamped)."""
    path = write(
        tmp_path,
        "moves.csv",
        "node_id,sku,delta,reason\nWH-FRA,A,+4,received\nWH-FRA,A,-2,sold\nST-MUC,B,-10,count\n",
    )
    report = feeds.apply(path)
    assert (report.rows, report.applied, report.clamped) == (3, 2, 1)
    assert stock(stocked)[("WH-FRA", "A")][0] == 7
    assert stock(stocked)[("ST-MUC", "B")][0] == 0


def test_a_bad_row_refuses_the_whole_file_naming_line_field_and_value(
    feeds: ErpFeeds, stocked: InventoryStore, tmp_path: Path
) -> None:
    """Given a snapshot whose line 7 has on_hand -3 (and good lines before it), when applied,
    then it is refused with exactly that line, field and value, and nothing changed."""
    rows = "".join(f"WH-FRA,S{i},1\n" for i in range(5))
    path = write(tmp_path, "stock-9.csv", f"node_id,sku,on_hand\n{rows}WH-FRA,A,-3\n")
    before = stock(stocked)
    assert refusal(feeds, path) == 'line 7, field on_hand: "-3" must be an integer >= 0'
    assert stock(stocked) == before


@pytest.mark.parametrize(
    ("name", "content", "problem"),
    [
        ("stock-2.csv", b"", 'file: "stock-2.csv" is empty: a header line is required'),
        ("stock-2.csv", b"node_id,sku,on_hand\n", "holds no rows of a snapshot file"),
        ("stock-2.csv", b"node_id,sku,on_hand\nWH-FRA,A,\xff\xfe\n", "line 2: "),
        ("stock-2.csv", b"node_id,sku,on_hand\nWH-FRA,A\x00,1\n", 'line 2, field sku: "A\\u0000"'),
        (
            "stock-2.csv",
            b"node_id,sku,on_hand\nWH-FRA,A,1\nWH-FRA,A,2\n",
            'line 3, field sku: "A" repeats an earlier row of node WH-FRA',
        ),
        (
            "stock-2.csv",
            b"node_id,sku,on_hand\nWH-FRA,A," + b"9" * 5000 + b"\n",
            "line 2, field on_hand: ",
        ),
        (
            "stock-2.csv",
            b"node_id,sku,on_hand\nWH-FRA,A,1000000001\n",
            "must be an integer <= 1000000000",
        ),
        ("stock-2.csv", b"node_id,sku,on_hand\nWH-FRA,A,1,2\n", "line 2: "),
        ("stock-2.csv", b"node_id,sku,on_hand\nWH-XX,A,1\n", "is not a node of the network"),
        ("stock-2.csv", b"node_id,sku,on_hand\nWH-FRA,A,1.5\n", "must be an integer"),
        ("stock-2.csv", b"node_id,sku,on_hand\nWH-FRA,A," + b"1" * 70_000 + b"\n", "line 2: "),
        ("stock.csv", b"node_id,sku,on_hand\nWH-FRA,A,1\n", "must end in its version"),
        ("x.csv", b"node,sku,qty\nWH-FRA,A,1\n", "line 1, field header"),
        (
            "moves.csv",
            b"node_id,sku,delta,reason\nWH-FRA,A,1000000000,a\nWH-FRA,A,1,b\n",
            'line 3, field delta: "1" brings the position\'s total movement past',
        ),
        ("moves.csv", b"node_id,sku,delta,reason\nWH-FRA,A,1,\n", 'field reason: "" is required'),
    ],
)
def test_hostile_files_are_refused_whole(
    feeds: ErpFeeds,
    stocked: InventoryStore,
    tmp_path: Path,
    name: str,
    content: bytes,
    problem: str,
) -> None:
    """Given a hostile file, when applied, then it is refused naming what is wrong, and nothing
    changed."""
    before = stock(stocked)
    assert problem in refusal(feeds, write(tmp_path, name, content))
    assert stock(stocked) == before


def test_a_byte_order_mark_and_crlf_lines_read_as_plain_csv(
    feeds: ErpFeeds, stocked: InventoryStore, tmp_path: Path
) -> None:
    """Given a snapshot saved by a spreadsheet (BOM, CRLF, quoted fields, a blank last line),
    when applied, then it reads as the same rows."""
    path = write(
        tmp_path,
        "stock-2.csv",
        b'\xef\xbb\xbfNode_ID,SKU,On_Hand\r\n"WH-FRA","A",7\r\nWH-FRA,B,1\r\n\r\n',
    )
    assert feeds.apply(path).rows == 2
    assert stock(stocked)[("WH-FRA", "A")][0] == 7


def test_every_problem_of_a_file_is_listed_up_to_a_bound(feeds: ErpFeeds, tmp_path: Path) -> None:
    """Given a file of 1000 bad rows, when applied, then the refusal lists the first 100."""
    rows = "".join(f"WH-FRA,S{i},-1\n" for i in range(1000))
    with pytest.raises(InvalidInput) as refused:
        feeds.apply(write(tmp_path, "stock-2.csv", "node_id,sku,on_hand\n" + rows))
    assert len(refused.value.problems) == 100
    assert refused.value.problems[0].field == "line 2, field on_hand"


def test_purchase_orders_become_incoming_lots_once(
    feeds: ErpFeeds, stocked: InventoryStore, tmp_path: Path
) -> None:
    """Given a purchase-order file of two lines, when applied twice, then each line is one lot
    `<po_id>/<sku>` with its node, units and date, and the second time is a replay."""
    header = "po_id,node_id,sku,units,expected_date\n"
    soon, later = in_days(30), in_days(31)
    path = write(tmp_path, "po.csv", header + f"PO-1,WH-FRA,A,10,{soon}\nPO-1,WH-BER,B,4,{later}\n")
    assert feeds.apply(path).applied == 2
    assert feeds.apply(path).replayed
    lots = {lot.id: lot for lot in stocked.list_supply()}
    assert set(lots) == {"PO-1/A", "PO-1/B"}
    assert (lots["PO-1/A"].node_id, lots["PO-1/A"].units, str(lots["PO-1/A"].expected)) == (
        "WH-FRA",
        10,
        soon,
    )
    assert lots["PO-1/B"].kind is SupplyKind.PO


def test_a_bad_purchase_order_row_refuses_the_file(
    feeds: ErpFeeds, stocked: InventoryStore, tmp_path: Path
) -> None:
    """Given purchase-order rows with negative units, an impossible date, a date past the
    horizon and a line twice, when applied, then each is named and no lot exists."""
    header = "po_id,node_id,sku,units,expected_date\n"
    rows = (
        "PO-1,WH-FRA,A,-1,2026-13-01\n"
        "PO-2,WH-FRA,A,1,2999-01-01\n"
        f"PO-3,WH-FRA,A,1,{in_days(3)}\nPO-3,WH-FRA,A,2,{in_days(3)}\n"
    )
    text = refusal(feeds, write(tmp_path, "po.csv", header + rows))
    assert 'line 2, field units: "-1" must be an integer >= 0' in text
    assert 'line 2, field expected_date: "2026-13-01" must be a date' in text
    assert 'line 3, field expected_date: "2999-01-01" must be at most' in text
    assert 'line 5, field sku: "A" repeats an earlier row of PO-3' in text
    assert stocked.list_supply() == ()


class CrashingStore:
    """A real store that dies once on the `n`th adjust call (a process killed mid-file)."""

    def __init__(self, store: InventoryStore, n: int) -> None:
        self._store, self._calls, self._n = store, 0, n

    def adjust(self, key: str, adjustments: Sequence[Adjustment]) -> AdjustOutcome:
        self._calls += 1
        if self._calls == self._n:
            raise StoreUnavailable("killed")
        return self._store.adjust(key, adjustments)

    def __getattr__(self, name: str) -> object:
        return getattr(self._store, name)


def test_a_delta_file_cut_short_is_finished_by_feeding_it_again(
    stocked: InventoryStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given a delta file of three chunks whose second chunk's call dies, when the same file
    is fed again, then every position moved exactly once."""
    monkeypatch.setattr(erp, "CHUNK_POSITIONS", 2)
    rows = "".join(f"WH-FRA,S{i},{i + 1},received\n" for i in range(6))
    path = write(tmp_path, "moves.csv", "node_id,sku,delta,reason\n" + rows)
    crashing = CrashingStore(stocked, 2)
    with pytest.raises(StoreUnavailable):
        erp_feeds(crashing).apply(path)  # type: ignore[arg-type]
    erp_feeds(stocked).apply(path)
    erp_feeds(stocked).apply(path)
    levels = {lv.sku: lv.on_hand for lv in stocked.node_stock("WH-FRA")}
    assert {f"S{i}": levels[f"S{i}"] for i in range(6)} == {f"S{i}": i + 1 for i in range(6)}


def test_a_file_that_changes_while_applied_is_refused(
    feeds: ErpFeeds, stocked: InventoryStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given a snapshot rewritten between its check and its staging, when applied, then it is
    refused and nothing changed."""
    path = write(tmp_path, "stock-2.csv", "node_id,sku,on_hand\nWH-FRA,A,7\n")
    check = ErpFeeds._check

    def check_then_edit(self: ErpFeeds, *args: object) -> object:
        result = check(self, *args)  # type: ignore[arg-type]
        path.write_text("node_id,sku,on_hand\nWH-FRA,A,8\n")
        return result

    monkeypatch.setattr(ErpFeeds, "_check", check_then_edit)
    before = stock(stocked)
    assert "changed while it was being applied" in refusal(feeds, path)
    assert stock(stocked) == before


def test_a_million_rows_stream_through(tmp_path: Path) -> None:
    """Given a snapshot of 10^6 positions, when applied to the in-memory store, then every one
    is set (the file is read in passes, never held whole)."""
    store = MemoryStore()
    seed_tiny(store)
    path = tmp_path / "stock-2.csv"
    with path.open("w") as out:
        out.write("node_id,sku,on_hand\n")
        for i in range(1_000_000):
            out.write(f"WH-BER,S{i},{i % 7}\n")
    report = erp_feeds(store).apply(path)
    assert (report.rows, report.applied, report.zeroed) == (1_000_000, 1_000_001, 1)
    assert store.node_stock("WH-BER")[0] == Level("WH-BER", "A", 0, 0, 1)
