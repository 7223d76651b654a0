"""The stock port of the order workflow: hold an order's stock, ship it node by node, give it
back, restock returns. `service/orders/stock.py` implements it over the reservation services.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from allocation_engine.engine.order import Order
from allocation_engine.orders.model import ShipmentItem


@dataclass(frozen=True)
class Awaited:
    """What a parcel's hold still waits for: the latest expected day of the incoming lots it
    holds units of ("" = nothing: every unit is on the shelf), and whether one of those lots
    was cut below what is held of it."""

    ready_on: str = ""
    cut: bool = False


@dataclass(frozen=True)
class StockHold:
    """Stock held for a whole order until it ships: one parcel per node, as (node id, units,
    the ISO day it may leave when some of its units come from incoming supply, else "")."""

    reservation_id: str
    shipments: tuple[tuple[str, tuple[ShipmentItem, ...], str], ...]


class Stock(Protocol):
    """The inventory as the workflow uses it; every call is idempotent on its key."""

    def reserve(self, order: Order, idempotency_key: str) -> StockHold:
        """Allocates and holds the order's stock with no expiry; InsufficientStock when short,
        HoldLapsed when the reservation this key names already ended (hold under a new key)."""
        ...

    def release(self, reservation_id: str, idempotency_key: str) -> None: ...

    def abandon(self, hold_key: str, idempotency_key: str) -> None:
        """Gives back whatever `reserve(..., hold_key)` may have held although the order never
        recorded it (the call died between holding and storing); nothing if it held nothing."""
        ...

    def ship(self, reservation_id: str, node_id: str, last: bool) -> None:
        """The parcel from `node_id` left: its held units leave on_hand and reserved. `last`
        says every parcel of the reservation has now left."""
        ...

    def give_back(self, reservation_id: str, node_id: str, write_off: bool) -> None:
        """The parcel from `node_id` will not leave: its held units are written off at the node
        (`write_off`: they are not on its shelf, or not sellable) or given back to its
        availability. Repeating it changes nothing."""
        ...

    def awaiting(self, reservation_id: str, node_id: str) -> Awaited:
        """What the reservation's hold at `node_id` still waits for (see `Awaited`)."""
        ...

    def shipment_limit(self, order: Order) -> int | None:
        """The most parcels the published rules allow this order (1 under ship complete)."""
        ...

    def restock(self, node_id: str, sku: str, quantity: int, idempotency_key: str) -> None:
        """Returned units go back on the shelf at `node_id`."""
        ...

    def has_node(self, node_id: str) -> bool: ...
