"""Expiry of reservations whose time is up: their holds stop counting and are given back.

Node holds stop counting by themselves the moment they expire (every store operation at a node
drops its expired holds first). What remains is bookkeeping: mark the reservation EXPIRED and give
back its holds everywhere. Any server process may do it, as often as it likes: the state change
is a compare-and-set and giving back a hold twice changes nothing.
"""

from __future__ import annotations

from dataclasses import replace

from allocation_engine.ports.inventory import (
    EXPIRING_STATES,
    InventoryStore,
    ReservationRecord,
    ReservationState,
)


def is_overdue(record: ReservationRecord, now: float) -> bool:
    return record.state in EXPIRING_STATES and record.expires_at <= now


def expire(store: InventoryStore, record: ReservationRecord, now: float) -> ReservationRecord:
    """Expires `record` if it is overdue; returns the record as it now stands."""
    if not is_overdue(record, now):
        return record
    expired = replace(record, state=ReservationState.EXPIRED)
    if store.replace_reservation(expired, record.state, record.attempt):
        store.release(list(record.holds), record.id)
        return expired
    return store.get_reservation(record.id) or record


def expire_due(store: InventoryStore, now: float, limit: int = 200) -> int:
    """Expires up to `limit` overdue reservations; returns how many it expired."""
    done = 0
    for rid in store.due_reservations(now, limit):
        record = store.get_reservation(rid)
        if record is not None and is_overdue(record, now):
            done += expire(store, record, now).state is ReservationState.EXPIRED
    return done
