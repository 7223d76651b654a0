"""Pick lists to the warehouses: one per shipment, JSON and CSV in a folder per node, or POSTed
to a URL; handing one over twice leaves one pick list."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from allocation_engine.adapters.wms import FolderWms, HttpWms
from allocation_engine.orders.model import Address
from allocation_engine.ports.fulfilment import PickLine, PickList
from tests.support.inbox import Inbox

PICK = PickList(
    shipment_id="O-000001-S1",
    order_id="O-000001",
    external_order_id="web-1",
    node_id="WH-KOELN",
    lines=(PickLine("A", 2, "Espresso cup"), PickLine("B", 1, "Milk jug")),
    ship_to=Address("Ada Lovelace", "Hohe Strasse 1", "50667", "Köln", "DE"),
    delivery_mode="ship_to_address",
    created_at=1_800_000_000.0,
)


def test_a_pick_list_lands_as_json_and_csv_in_the_nodes_folder(tmp_path: Path) -> None:
    """Given a pick list for WH-KOELN, when it is released twice, then WH-KOELN/<shipment>.json
    and .csv hold it (the second write gives the same bytes) and no temporary file is left."""
    wms = FolderWms(tmp_path)
    wms.release(PICK)
    first = {p.name: p.read_bytes() for p in (tmp_path / "WH-KOELN").iterdir()}
    wms.release(PICK)
    second = {p.name: p.read_bytes() for p in (tmp_path / "WH-KOELN").iterdir()}
    assert sorted(first) == ["O-000001-S1.csv", "O-000001-S1.json"]
    assert first == second
    data = json.loads(first["O-000001-S1.json"])
    assert data["lines"] == [
        {"sku": "A", "quantity": 2, "name": "Espresso cup"},
        {"sku": "B", "quantity": 1, "name": "Milk jug"},
    ]
    assert data["ship_to"]["city"] == "Köln"
    rows = list(csv.DictReader(io.StringIO(first["O-000001-S1.csv"].decode())))
    assert [(r["sku"], r["quantity"], r["ship_to_city"]) for r in rows] == [
        ("A", "2", "Köln"),
        ("B", "1", "Köln"),
    ]


def test_a_node_id_cannot_write_outside_the_folder(tmp_path: Path) -> None:
    """Given ids with path separators, then each becomes one folder or file name below root."""
    FolderWms(tmp_path / "wms").release(
        PickList(**{**PICK.__dict__, "node_id": "../../etc", "shipment_id": "../x"})
    )
    written = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.json"))
    assert written == ["wms/_.._etc/_x.json"]


def test_a_pick_list_is_posted_with_the_shipment_as_idempotency_key() -> None:
    """Given a WMS endpoint per node, when a pick list is released, then it is POSTed as JSON
    to that node's URL with the shipment id as Idempotency-Key."""
    inbox = Inbox()
    try:
        HttpWms(inbox.url + "/nodes/{node_id}/pick-lists").release(PICK)
        (posted,) = inbox.wait_for(1)
        assert posted.path == "/nodes/WH-KOELN/pick-lists"
        assert posted.headers["Idempotency-Key"] == "O-000001-S1"
        assert json.loads(posted.body)["shipment_id"] == "O-000001-S1"
        inbox.status = 409  # "I have it already" is delivered
        HttpWms(inbox.url + "/pick-lists").release(PICK)
        inbox.status = 503
        with pytest.raises(OSError):
            HttpWms(inbox.url + "/pick-lists").release(PICK)
    finally:
        inbox.close()
