"""TODO docstring."""

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
    return ipb.SkuAvailability(
        sku=sku,
        on_hand=sum(lv.on_hand for lv in levels),
        reserved=sum(lv.reserved for lv in levels),
        safety_stock=sum(lv.safety_stock for lv in levels),
        available=sum(lv.available for lv in levels),
        positions=[level_to_proto(lv) for lv in levels],
    )


def snapshot_line_to_proto(line: SnapshotLine) -> ipb.SnapshotPosition:
    message = ipb.SnapshotPosition(node_id=line.node_id, sku=line.sku, on_hand=line.on_hand)
    if line.safety_stock is not None:
        message.safety_stock = line.safety_stock
    return message


def snapshot_line_from_proto(message: ipb.SnapshotPosition) -> SnapshotLine:
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
