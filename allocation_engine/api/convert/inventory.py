"""Protobuf <-> domain for `inventory.proto`: snapshot positions, adjustments, availability.

What the ERP/WMS feeds in (snapshot chunks, adjustments) is read into the store port's records;
what goes out (availability per sku, adjusted positions, clamped deltas) is written from them.
Positions themselves are `common.proto` messages (`common.level_to_proto`). Readers do no
validation: `service.inventory` checks the values and names them (`positions[4].on_hand`), and the
servicer adds where the chunk sits in the stream (`chunks[1].`).
"""

from __future__ import annotations

from collections.abc import Sequence

from allocation_engine.api.convert.common import level_to_proto
from allocation_engine.ports.inventory import (
    Adjustment,
    Level,
    SnapshotLine,
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
