"""Hand-off to the warehouses: one pick list per shipment, to a folder per node or to a URL.

`FolderWms` writes `<root>/<node id>/<shipment id>.json` and `.csv` (one row per line, with
the ship-to address on every row, as WMS imports like it). Files are written to a temporary
name and renamed, so a WMS polling the folder never reads half a file, and writing the same pick
list again replaces it with the same bytes. `HttpWms` POSTs the JSON with the shipment id as
`Idempotency-Key` through the shared `HttpClient`, which retries what a retry can fix (no
connection, a timeout, 408/425/429, 5xx; honouring Retry-After) under that same key, so a WMS
that took the pick list but whose answer was lost keeps one; an answer of 409 (already have it)
counts as delivered.
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from allocation_engine.adapters.http_client import HttpClient, RetryPolicy
from allocation_engine.errors import PeerRefused, PeerUnavailable
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


class WmsUnavailable(PeerUnavailable, OSError):
    """The WMS did not answer, or kept answering 408/425/429/5xx, through every attempt; whether
    it took the pick list is unknown, and sending it again under its key is safe. An `OSError`
    too, as urllib's errors were for the callers that caught those."""


class WmsRefused(OSError):
    """The WMS answered with a refusal other than 409 (a 4xx, or a redirect we do not follow).

    Deliberately no `PeerRefused`: the outbox records those as undeliverable for good, and a
    pick list given up on is a parcel that never ships, while a 401, 403 or 404 from a WMS is
    mostly a credential or URL an operator fixes. So, as before, the outbox keeps the pick list
    and tries it again later (logging each failure); `status`, `url` and `detail` say what the
    WMS answered."""

    def __init__(self, status: int, url: str, detail: str) -> None:
        self.status, self.url, self.detail = status, url, detail
        super().__init__(f"{url} answered {status}: {detail[:200]!r}")


class HttpWms:
    """POSTs each pick list to `url`; `{node_id}` in the url is replaced by the node's id.

    `timeout` bounds each attempt, `headers` go on every request (a token), `retry` says how
    many attempts and how much backoff (the client's default when None), `sleep` how the wait
    between them is spent (tests record it instead of sleeping). `release` raises
    `WmsUnavailable` or `WmsRefused`, both `OSError`s the outbox retries later."""

    def __init__(
        self,
        url: str,
        timeout: float = 10.0,
        headers: dict[str, str] | None = None,
        *,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.url = url
        # No base URL: `{node_id}` may sit anywhere in `url`, so each call names its whole URL
        # (httpx still pools connections per host).
        self._http = HttpClient("", headers=headers, timeout=timeout, retry=retry, sleep=sleep)

    def release(self, pick: PickList) -> None:
        url = self.url.replace("{node_id}", urllib.parse.quote(pick.node_id, safe=""))
        try:
            response = self._http.post(
                url,
                content=pick_list_json(pick),
                headers={"Content-Type": "application/json", "Idempotency-Key": pick.shipment_id},
            )
        except PeerUnavailable as down:
            raise WmsUnavailable(str(down)) from down
        except PeerRefused as refused:
            if refused.status == 409:  # it has this pick list already
                return
            raise WmsRefused(refused.status, url, refused.detail) from refused
        if response.status_code >= 300:  # a redirect: the pick list did not arrive
            raise WmsRefused(response.status_code, url, response.headers.get("location", ""))

    def close(self) -> None:
        """Closes the connection pool."""
        self._http.close()
