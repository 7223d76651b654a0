"""`allocation-engine feed` against a real Redis: files applied in order with a line each, a
refused file named with its problems and exit code 1, a replay said as such, and one sweep of a
drop folder; and `feed --manifest` against a real server, shipping each parcel once."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from allocation_engine.adapters.redis.inventory import RedisStore
from allocation_engine.app.orders import OrderConfig
from allocation_engine.app.serve import Running, ServeConfig, start
from allocation_engine.cli.main import main
from allocation_engine.proto.allocation.v1 import common_pb2 as cpb
from allocation_engine.proto.allocation.v1 import orders_pb2 as opb
from allocation_engine.proto.allocation.v1 import orders_pb2_grpc as opb_grpc
from tests.support.grpc_inventory import COLOGNE, seed_tiny


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


def test_feed_wants_one_source(redis_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Given no files, folder or manifest, or ERP files without a store, when run, then it says
    what it wants (exit 2)."""
    assert main(["feed", "--redis-url", redis_url]) == 2
    assert "give files to apply, --watch DIR or --manifest FILE" in capsys.readouterr().err
    assert main(["feed", "stock-1.csv"]) == 2
    assert "give --redis-url or --redis-cluster" in capsys.readouterr().err


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Running]:
    orders = OrderConfig(
        mail_dir=str(tmp_path / "mail"), wms_dir=str(tmp_path / "wms"), demo=True, dispatch=False
    )
    running = start(ServeConfig(port=0, demo=True, orders=orders))
    yield running
    running.stop(0)


def test_feed_manifest_ships_each_parcel_once(
    served: Running, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Given a released B2B parcel on a real server, when a manifest shipping it is sent twice,
    then it is shipped with the manifest's carrier and tracking and the second run changes
    nothing; a manifest with a bad row sends nothing (exit 1, the line named)."""
    with grpc.insecure_channel(served.address) as channel:
        orders = opb_grpc.OrderServiceStub(channel)
        order = orders.PlaceOrder(
            opb.PlaceOrderRequest(
                channel="web",
                external_order_id="b-1",
                customer=opb.CustomerRef(email="ada@example.com"),
                customer_type=cpb.CUSTOMER_TYPE_B2B,
                lines=[opb.PricedLine(sku="SKU-0001", quantity=2, unit_price=1000)],
                ship_to=COLOGNE,
                address=opb.Address(name="Ada", street="Domplatz 1", city="Köln", country="DE"),
            )
        ).order
        parcel = order.shipments[0].id
        path = tmp_path / "manifest.csv"
        path.write_text(
            "order_id,shipment_id,sku,quantity,carrier,tracking\n"
            f"{order.id},{parcel},SKU-0001,2,DHL,00340434\n"
        )
        target = ["--target", served.address]
        assert main(["feed", "--manifest", str(path), *target]) == 0
        assert main(["feed", "--manifest", str(path), *target]) == 0
        assert (
            capsys.readouterr().out.splitlines() == [f"{order.id}/{parcel}: shipped (1 lines)"] * 2
        )
        shipped = orders.GetOrder(opb.GetOrderRequest(order_id=order.id)).order.shipments[0]
        assert (shipped.carrier, shipped.tracking_number) == ("DHL", "00340434")
        bad = tmp_path / "bad.csv"
        bad.write_text("order_id,shipment_id,sku,quantity,carrier,tracking\nO-9,S,A,x,DHL,1\n")
        assert main(["feed", "--manifest", str(bad), *target]) == 1
        assert 'line 2, field quantity: "x" must be an integer' in capsys.readouterr().out
