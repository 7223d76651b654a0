"""Hand-off to the warehouses: one pick list per shipment, to a folder per node or to a URL.

`FolderWms` writes `<root>/<node id>/<shipment id>.json` and `.csv` (one row per line, with
the ship-to address on every row, as WMS imports like it). Files are written to a temporary
name and renamed, so a WMS polling the folder never reads half a file, and writing the same pick
list again replaces it with the same bytes. `HttpWms` POSTs the JSON with the shipment id as
`Idempotency-Key`; an answer of 409 (already have it) counts as delivered.
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import asdict
from pathlib import Path

from allocation_engine.ports.fulfilment import PickList

CSV_COLUMNS = (
    "shipment_id",
    "order_id",
    "external_order_id",
    "node_id",
    "sku",
    "name",
    "quantity",
    "ship_to_name",
    "ship_to_street",
    "ship_to_postal_code",
    "ship_to_city",
    "ship_to_country",
    "delivery_mode",
)


def pick_list_json(pick: PickList) -> bytes:
    return json.dumps(asdict(pick), indent=2, sort_keys=True).encode() + b"\n"


def pick_list_csv(pick: PickList) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    a = pick.ship_to
    for line in pick.lines:
        writer.writerow(
            (
                pick.shipment_id,
                pick.order_id,
                pick.external_order_id,
                pick.node_id,
                line.sku,
                line.name,
                line.quantity,
                a.name,
                a.street,
                a.postal_code,
                a.city,
                a.country,
                pick.delivery_mode,
            )
        )
    return out.getvalue().encode()


def _safe(name: str) -> str:
    """A path segment that cannot climb out of the folder."""
    cleaned = "".join(c if c.isalnum() or c in "-_." else "_" for c in name).strip(".")
    return cleaned or "_"


class FolderWms:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def path(self, pick: PickList, suffix: str) -> Path:
        return self.root / _safe(pick.node_id) / f"{_safe(pick.shipment_id)}.{suffix}"

    def release(self, pick: PickList) -> None:
        for suffix, data in (("csv", pick_list_csv(pick)), ("json", pick_list_json(pick))):
            _write_atomically(self.path(pick, suffix), data)


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class HttpWms:
    """POSTs each pick list to `url`; `{node_id}` in the url is replaced by the node's id."""

    def __init__(self, url: str, timeout: float = 10.0, headers: dict[str, str] | None = None):
        self.url = url
        self._timeout = timeout
        self._headers = headers or {}

    def release(self, pick: PickList) -> None:
        url = self.url.replace("{node_id}", urllib.parse.quote(pick.node_id, safe=""))
        request = urllib.request.Request(
            url,
            data=pick_list_json(pick),
            method="POST",
            headers={
                **self._headers,
                "Content-Type": "application/json",
                "Idempotency-Key": pick.shipment_id,
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=self._timeout):
                return
        except urllib.error.HTTPError as failed:
            if failed.code != 409:
                raise
