"""The fulfilment port: how a node's warehouse system (WMS, 3PL, store app) gets its pick list.

The outbox hands each released shipment to a `Wms` once; a receiver sees the same pick list (same
file name or Idempotency-Key) if a crash makes the outbox send it again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from allocation_engine.orders.model import Address


@dataclass(frozen=True)
class PickLine:
    sku: str
    quantity: int
    name: str = ""


@dataclass(frozen=True)
class PickList:
    """What one node picks and packs for one parcel."""

    shipment_id: str
    order_id: str
    external_order_id: str
    node_id: str
    lines: tuple[PickLine, ...]
    ship_to: Address
    delivery_mode: str
    created_at: float


class Wms(Protocol):
    def release(self, pick_list: PickList) -> None:
        """Hands the pick list to the node's WMS; sending one twice leaves one pick list."""
        ...
