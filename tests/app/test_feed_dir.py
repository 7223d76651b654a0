"""A server started with an ERP drop folder (`serve --feed-dir`) applies what lands there: a
delta written into the folder moves the server's stock and is moved to done/, a bad file goes
to refused/ with its .error.txt."""

from __future__ import annotations

import os
import time
from pathlib import Path

import grpc

from allocation_engine.app.orders import OrderConfig
from allocation_engine.app.serve import ServeConfig, start
from allocation_engine.proto.allocation.v1 import inventory_pb2 as ipb
from allocation_engine.proto.allocation.v1 import inventory_pb2_grpc as ipb_grpc


def settled(path: Path, text: str) -> None:
    path.write_text(text)
    past = time.time() - 10
    os.utime(path, (past, past))


def on_hand(address: str, node_id: str, sku: str) -> int:
    with grpc.insecure_channel(address) as channel:
        answer = ipb_grpc.InventoryServiceStub(channel).GetAvailability(
            ipb.GetAvailabilityRequest(skus=[sku], node_ids=[node_id])
        )
    return sum(p.on_hand for s in answer.skus for p in s.positions)


def test_the_server_sweeps_its_drop_folder(tmp_path: Path) -> None:
    """Given a demo server with a drop folder, when a delta and a bad file land there, then
    the delta moves stock and goes to done/, the bad one goes to refused/ with its reason."""
    drop = tmp_path / "drop"
    orders = OrderConfig(mail_dir=str(tmp_path / "mail"), wms_dir=str(tmp_path / "wms"))
    running = start(ServeConfig(port=0, demo=True, orders=orders, feed_dir=str(drop)))
    try:
        before = on_hand(running.address, "WH-DORTMUND", "SKU-0001")
        settled(drop / "moves.csv", "node_id,sku,delta,reason\nWH-DORTMUND,SKU-0001,+7,received\n")
        settled(drop / "bad.csv", "node_id,sku,delta,reason\nWH-DORTMUND,SKU-0001,7,\n")
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not (
            (drop / "done" / "moves.csv").exists() and (drop / "refused" / "bad.csv").exists()
        ):
            time.sleep(0.1)
        assert on_hand(running.address, "WH-DORTMUND", "SKU-0001") == before + 7
        reason = (drop / "refused" / "bad.csv.error.txt").read_text()
        assert reason == 'line 2, field reason: "" is required\n'
    finally:
        running.stop(0)
