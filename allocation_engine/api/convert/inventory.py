"""Protobuf <-> domain for `inventory.proto`: snapshot positions, adjustments, availability,
incoming supply lots and available-to-promise steps.

What the ERP/WMS feeds in (snapshot chunks, adjustments) is read into the store port's records;
what goes out (availability per sku, adjusted positions, clamped deltas) is written from them.
Positions themselves are `common.proto` messages (`common.level_to_proto`). Readers do no
validation: `service.inventory` checks the values and names them (`positions[4].on_hand`), and the
servicer adds where the chunk sits in the stream (`chunks[1].`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date

from allocation_engine.api.convert.common import level_to_proto
from allocation_engine.errors import ProblemCollector
from allocation_engine.ports.inventory import (
    Adjustment,
    Level,
    ReceiveOutcome,
    ReviseOutcome,
    SnapshotLine,
    SupplyKind,
    SupplyLot,
)
from allocation_engine.proto.allocation.v1 import inventory_pb2 as ipb


def availability_to_proto(sku: str, levels: Sequence[Level]) -> ipb.SkuAvailability:
    """One sku's totals over `levels` with the per-node positions."""
    return ipb.SkuAvailability(
        sku=sku,
        on_hand=sum(lv.on_hand for lv in levels),
        reserved=sum(lv.reserved for lv in levels),
        safety_stock=sum(lv.safety_stock for lv in levels),
        available=sum(lv.available for lv in levels),
        positions=[level_to_proto(lv) for lv in levels],
    )


def snapshot_line_from_proto(message: ipb.SnapshotPosition) -> SnapshotLine:
    """One snapshot position; an unset `safety_stock` is None (keep the current one)."""
    safety = message.safety_stock if message.HasField("safety_stock") else None
    return SnapshotLine(message.node_id, message.sku, message.on_hand, safety)


def adjustment_to_proto(adjustment: Adjustment) -> ipb.Adjustment:
    message = ipb.Adjustment(
        node_id=adjustment.node_id, sku=adjustment.sku, on_hand_delta=adjustment.on_hand_delta
    )
    if adjustment.safety_stock is not None:
        message.safety_stock = adjustment.safety_stock
    return message


def adjustment_from_proto(message: ipb.Adjustment) -> Adjustment:
    safety = message.safety_stock if message.HasField("safety_stock") else None
    return Adjustment(message.node_id, message.sku, message.on_hand_delta, safety)


_KINDS = {
    ipb.SUPPLY_KIND_PO: SupplyKind.PO,
    ipb.SUPPLY_KIND_TRANSFER: SupplyKind.TRANSFER,
}
_KIND_NUMBERS = {kind: number for number, kind in _KINDS.items()}


def read_date(problems: ProblemCollector, field: str, text: str) -> date | None:
    """An ISO "YYYY-MM-DD" date, or a problem naming `field` (None then)."""
    try:
        if len(text) == len("YYYY-MM-DD"):
            return date.fromisoformat(text)
    except ValueError:
        pass
    problems.add(field, text, 'must be a date "YYYY-MM-DD"')
    return None


def supply_lots_from_proto(messages: Sequence[ipb.SupplyLot]) -> list[SupplyLot]:
    """Lots as given (`held` is the store's own and is not read); a bad date names its lot."""
    problems = ProblemCollector()
    lots = []
    for i, m in enumerate(messages):
        expected = read_date(problems, f"lots[{i}].expected", m.expected)
        if expected is not None:
            lots.append(SupplyLot(m.id, m.node_id, m.sku, m.units, expected, _KINDS[m.kind]))
    problems.raise_if_any()
    return lots


def supply_lot_to_proto(lot: SupplyLot) -> ipb.SupplyLot:
    return ipb.SupplyLot(
        id=lot.id,
        node_id=lot.node_id,
        sku=lot.sku,
        units=lot.units,
        expected=lot.expected.isoformat(),
        kind=_KIND_NUMBERS[lot.kind],
        held=lot.held,
    )


def received_to_proto(outcome: ReceiveOutcome) -> ipb.ReceiveSupplyResponse:
    message = ipb.ReceiveSupplyResponse(
        position=level_to_proto(outcome.level),
        reservation_ids=outcome.reservations,
        on_shelf=outcome.on_shelf,
    )
    if outcome.lot is not None:
        message.lot.CopyFrom(supply_lot_to_proto(outcome.lot))
    return message


def revised_to_proto(outcome: ReviseOutcome) -> ipb.ReviseSupplyResponse:
    return ipb.ReviseSupplyResponse(
        lot=supply_lot_to_proto(outcome.lot), broken_reservation_ids=outcome.broken
    )


def revision_from_proto(message: ipb.ReviseSupplyRequest) -> tuple[int | None, date | None]:
    """The new units and date of a revision (None = keep)."""
    problems = ProblemCollector()
    expected = read_date(problems, "expected", message.expected) if message.expected else None
    problems.raise_if_any()
    return (message.units if message.HasField("units") else None), expected


def promise_to_proto(
    sku: str, by_node: Mapping[str, Sequence[tuple[date, int]]]
) -> ipb.GetAvailableToPromiseResponse:
    return ipb.GetAvailableToPromiseResponse(
        sku=sku,
        nodes=[
            ipb.NodePromise(
                node_id=node_id,
                steps=[ipb.PromiseStep(date=d.isoformat(), units=u) for d, u in steps],
            )
            for node_id, steps in by_node.items()
        ],
    )
