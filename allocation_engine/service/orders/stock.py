"""The workflow's `Stock` port over the inventory services of the allocation service.

An order's stock is held by one reservation: reserved (planned and held at every node) and at
once committed, so it never expires while the order waits for the warehouse. Each parcel that
leaves fulfils its node's hold (on_hand and reserved go down together); the last one marks the
whole reservation FULFILLED. A parcel its node rejects gives its hold back, or writes it off (the
held units leave on_hand: they were not there); a reroute holds the rest under a reservation of
its own. Returned units go back with an inventory adjustment. Every call is
keyed, so the workflow may repeat it after a crash or a lost race without effect; the keys'
fingerprints are the canonical ones of `orders.fingerprint`, like the order commands' own.
"""

from __future__ import annotations

from contextlib import suppress
from datetime import timedelta

from allocation_engine.engine import Order
from allocation_engine.errors import HoldLapsed, IllegalState, NotFound
from allocation_engine.orders.fingerprint import fingerprint
from allocation_engine.orders.model import ShipmentItem
from allocation_engine.ports.inventory import RELEASED_STATES, Adjustment
from allocation_engine.ports.stock import Awaited, StockHold
from allocation_engine.service import Services
from allocation_engine.service.reservations import reservation_id as reservation_id_for


class InventoryStock:
    """`Stock` for the order workflow, through the reservation and inventory use cases."""

    def __init__(self, services: Services) -> None:
        self._services = services

    def reserve(self, order: Order, idempotency_key: str) -> StockHold:
        reservations = self._services.reservations
        fp = fingerprint(order)
        held = reservations.reserve(idempotency_key, fp, order)
        if held.state in RELEASED_STATES:
            raise HoldLapsed(held.id)
        try:
            committed = reservations.commit(held.id, f"{idempotency_key}:commit", fp)
        except IllegalState:
            if reservations.get(held.id).state in RELEASED_STATES:  # it expired meanwhile
                raise HoldLapsed(held.id) from None
            raise
        assert committed.plan is not None  # a held reservation always carries its plan
        today = self._services.planner.today()
        return StockHold(
            committed.id,
            tuple(
                (
                    s.node_id,
                    tuple(ShipmentItem(x.sku, x.quantity) for x in s.lines),
                    (today + timedelta(days=s.ship_day)).isoformat() if s.lots else "",
                )
                for s in committed.plan.shipments
            ),
        )

    def release(self, reservation_id: str, idempotency_key: str) -> None:
        self._services.reservations.release(
            reservation_id, idempotency_key, fingerprint(reservation_id)
        )

    def abandon(self, hold_key: str, idempotency_key: str) -> None:
        with suppress(NotFound):  # the call that died held nothing
            self.release(reservation_id_for(hold_key), idempotency_key)

    def ship(self, reservation_id: str, node_id: str, last: bool) -> None:
        if last:
            self._services.reservations.fulfil(reservation_id)
        else:
            self._services.reservations.fulfil_node(reservation_id, node_id)

    def give_back(self, reservation_id: str, node_id: str, write_off: bool) -> None:
        reservations = self._services.reservations
        if write_off:
            reservations.fulfil_node(reservation_id, node_id)
        else:
            reservations.release_node(reservation_id, node_id)

    def awaiting(self, reservation_id: str, node_id: str) -> Awaited:
        store = self._services.store
        holds = store.node_holds(node_id)
        hold = next((h for h in holds if h.reservation_id == reservation_id), None)
        if hold is None or not any(hold.lots.values()):
            return Awaited()
        lots = {lot.id: lot for lot in store.list_supply(node_id=node_id) if lot.id in hold.lots}
        if not lots:
            return Awaited()
        today = self._services.planner.today()  # an overdue lot is due today, as planned
        return Awaited(
            max(today, *(lot.expected for lot in lots.values())).isoformat(),
            any(lot.units < lot.held for lot in lots.values()),
        )

    def shipment_limit(self, order: Order) -> int | None:
        return self._services.planner.rules().rules.shipment_limit

    def restock(self, node_id: str, sku: str, quantity: int, idempotency_key: str) -> None:
        adjustment = Adjustment(node_id, sku, quantity)
        self._services.inventory.adjust(idempotency_key, fingerprint(adjustment), [adjustment])

    def has_node(self, node_id: str) -> bool:
        return node_id in self._services.planner.network().index
