"""A 3PL's CSV manifest read into shipment reports: one report per parcel with its lines in
file order; a bad row, a parcel whose rows disagree on carrier or tracking, a sku twice in a
parcel, or an empty file refuses the whole manifest naming line and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from allocation_engine.errors import InvalidInput
from allocation_engine.orders.model import ShipmentItem
from allocation_engine.service.feeds.table import explain
from allocation_engine.service.feeds.tpl import ShipmentReport, manifest_reports

HEADER = "order_id,shipment_id,sku,quantity,carrier,tracking\r\n"


def manifest(tmp_path: Path, rows: str) -> Path:
    path = tmp_path / "manifest.csv"
    path.write_bytes(b"\xef\xbb\xbf" + (HEADER + rows).encode())
    return path


def test_rows_group_into_one_report_per_parcel(tmp_path: Path) -> None:
    """Given three rows of two parcels (BOM, CRLF), when read, then two shipped reports with
    their lines, carrier and tracking, keyed by order and parcel."""
    path = manifest(
        tmp_path,
        "O-1,O-1-S1,A,2,DHL,111\r\nO-2,O-2-S1,B,1,UPS,222\r\nO-1,O-1-S1,B,0,DHL,111\r\n",
    )
    assert manifest_reports(path) == [
        ShipmentReport(
            "O-1", "O-1-S1", "shipped", (ShipmentItem("A", 2), ShipmentItem("B", 0)), "DHL", "111"
        ),
        ShipmentReport("O-2", "O-2-S1", "shipped", (ShipmentItem("B", 1),), "UPS", "222"),
    ]
    assert manifest_reports(path)[0].idempotency_key == "3pl:O-1/O-1-S1"


@pytest.mark.parametrize(
    ("rows", "problem"),
    [
        ("", 'file: "manifest.csv" holds no rows of a manifest'),
        ("O-1,O-1-S1,A,-2,DHL,111\r\n", 'line 2, field quantity: "-2" must be an integer >= 0'),
        (
            "O-1,O-1-S1,A,1,DHL,111\r\nO-1,O-1-S1,B,1,UPS,111\r\n",
            'line 3, field carrier: "UPS" differs from line 2 of O-1-S1',
        ),
        (
            "O-1,O-1-S1,A,1,DHL,111\r\nO-1,O-1-S1,A,1,DHL,111\r\n",
            'line 3, field sku: "A" repeats an earlier row of O-1-S1',
        ),
        ("O-1,O-1-S1,A,1,DHL,\r\n", 'line 2, field tracking: "" is required'),
        ("O-1,O-1-S1,A,1,DHL\r\n", "line 2: "),
    ],
)
def test_a_bad_manifest_is_refused_whole(tmp_path: Path, rows: str, problem: str) -> None:
    """Given a manifest with a bad row, when read, then it is refused naming what is wrong."""
    with pytest.raises(InvalidInput) as refused:
        manifest_reports(manifest(tmp_path, rows))
    assert problem in explain(refused.value)
