"""3PL shipment confirmations in: what a third-party warehouse reports of the parcels it was
given (shipped, with the units that left, the carrier and the tracking number; or rejected,
with a reason), as a JSON body (`POST /v1/3pl/shipments`) or a CSV manifest
(`allocation-engine feed --manifest`), both documented in docs/feeds.md.

Both become the order flow's own requests (RecordShipment with its lines: fewer units than
planned is a short pick and the rest is rerouted; RejectShipment: everything is rerouted), so the
3PL gets the same checks, node access and idempotency as a WMS calling the RPCs. Each report's
idempotency key is its order and shipment (`3pl:<order>/<shipment>`): the same report sent
again answers as the first did, and a different report of the same parcel is refused as a
reused key. A manifest is checked whole before any report of it is sent.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from allocation_engine.engine.limits import MAX_UNITS
from allocation_engine.errors import InvalidInput, ProblemCollector
from allocation_engine.orders.commands import REJECT_REASONS
from allocation_engine.orders.model import ShipmentItem
from allocation_engine.service.feeds.table import FileProblems, read_rows

STATUSES = ("shipped", "rejected")
MANIFEST_COLUMNS = ("order_id", "shipment_id", "sku", "quantity", "carrier", "tracking")


@dataclass(frozen=True)
class ShipmentReport:
    """One parcel as the 3PL reports it."""

    order_id: str
    shipment_id: str
    status: str  # shipped | rejected
    lines: tuple[ShipmentItem, ...] = ()  # shipped: the units that left (empty: as planned)
    carrier: str = ""
    tracking: str = ""
    reason: str = ""  # rejected: no_stock | no_capacity | damaged | other
    note: str = ""

    @property
    def idempotency_key(self) -> str:
        return f"3pl:{self.order_id}/{self.shipment_id}"


def check_report(report: ShipmentReport) -> None:
    """What the flow cannot tell from its own requests: a known status, a reason a rejection
    must carry, lines only on a shipped parcel and no sku twice (fields named as the JSON)."""
    problems = ProblemCollector()
    if report.status not in STATUSES:
        problems.add("status", report.status, f"must be one of {list(STATUSES)}")
    if report.status == "rejected":
        if report.reason not in REJECT_REASONS:
            problems.add("reason", report.reason, f"must be one of {list(REJECT_REASONS)}")
        if report.lines:
            problems.add("lines", len(report.lines), "a rejected parcel ships no lines")
    skus = [line.sku for line in report.lines]
    for i, sku in enumerate(skus):
        if sku in skus[:i]:
            problems.add(f"lines[{i}].sku", sku, "repeats an earlier line")
    problems.raise_if_any()


def manifest_reports(path: Path) -> list[ShipmentReport]:
    """The shipped parcels of a manifest (one row per sku of a parcel), checked whole: a bad
    row refuses the file naming its line and field, and the rows of one parcel must agree on
    its carrier and tracking number."""
    problems = FileProblems()
    parcels: dict[tuple[str, str], tuple[int, list[ShipmentItem], str, str]] = {}
    for line, row in read_rows(path, hashlib.sha256(), MANIFEST_COLUMNS, (), problems):
        order_id = problems.ident(line, "order_id", row["order_id"])
        shipment_id = problems.ident(line, "shipment_id", row["shipment_id"])
        sku = problems.ident(line, "sku", row["sku"])
        quantity = problems.integer(line, "quantity", row["quantity"], 0, MAX_UNITS)
        carrier = problems.ident(line, "carrier", row["carrier"])
        tracking = problems.ident(line, "tracking", row["tracking"])
        if problems.full:
            break
        if None in (order_id, shipment_id, sku, quantity, carrier, tracking):
            continue
        assert order_id and shipment_id and sku and quantity is not None and carrier and tracking
        first, lines, known_carrier, known_tracking = parcels.setdefault(
            (order_id, shipment_id), (line, [], carrier, tracking)
        )
        for column, given, known in (
            ("carrier", carrier, known_carrier),
            ("tracking", tracking, known_tracking),
        ):
            if given != known:
                problems.at(line, column, given, f"differs from line {first} of {shipment_id}")
        if any(item.sku == sku for item in lines):
            problems.at(line, "sku", sku, f"repeats an earlier row of {shipment_id}")
        lines.append(ShipmentItem(sku, quantity))
    problems.raise_if_any()
    if not parcels:
        raise InvalidInput.one("file", path.name, "holds no rows of a manifest")
    return [
        ShipmentReport(order_id, shipment_id, "shipped", tuple(lines), carrier, tracking)
        for (order_id, shipment_id), (_, lines, carrier, tracking) in parcels.items()
    ]
