"""Supply news for orders: the orders whose reservations a receipt or a revision of incoming
supply touched are told at once (`SupplyChanged`), so a backordered parcel leaves as soon as its
units are on the shelf, in promise order, and a late or cut supply re-promises or reroutes it.

Registered as a `service.supply.SupplyListener`: it runs before the receipt's call answers.
"""

from __future__ import annotations

from collections.abc import Sequence

from allocation_engine.errors import NotFound
from allocation_engine.orders.commands import SupplyChanged
from allocation_engine.service.orders.flow import OrderFlow
from allocation_engine.service.reservations import Reservations


class SupplyNews:
    """Tells each order holding one of the reservations (in the order given: promise order)."""

    def __init__(self, flow: OrderFlow, reservations: Reservations) -> None:
        self._flow = flow
        self._reservations = reservations

    def __call__(self, reservation_ids: Sequence[str], key: str, broken: bool) -> None:
        for rid in reservation_ids:
            try:
                order_id = order_of(self._reservations.get(rid).order_id)
                self._flow.supply_changed(SupplyChanged(order_id, rid, f"{key}:{rid}", broken))
            except NotFound as missing:
                if missing.field not in ("order_id", "reservation_id"):
                    raise
                # a reservation no order holds (a shop calling Reserve itself), or one gone


def order_of(engine_order_id: str) -> str:
    """The order an allocation was for: a reroute allocates `<order>~R<n>`."""
    return engine_order_id.split("~R", 1)[0]
