"""Ending reservations: release and expiry, in steps that a crash at any point cannot spoil.

Ending a reservation takes three steps, each atomic in the store and each safe to repeat:

1. compare-and-set the record from its open state to RELEASING, with `release_as` saying what it
   ends as (RELEASED or EXPIRED); from here on no commit, hold or takeover can win it back;
2. give back its holds at every node of its plan (giving back twice changes nothing);
3. compare-and-set RELEASING -> `release_as`.

A process killed between the steps leaves a RELEASING record whose holds may still count. The
stores schedule a RELEASING record as due at once, so the next planning read anywhere (which
sweeps when something is due), the periodic sweeper, a retried release, any read of the record
and `allocation-engine repair` all finish it with `finish`. The state change comes first (not the
holds) because a commit pinning the holds at the same moment must lose to the release: its own
compare-and-set then fails, and it gives back what it pinned.

Node holds also stop counting by themselves the moment they expire (every node operation drops
its expired holds first); expiry is the bookkeeping on top: any server process may sweep, as
often as it likes.
"""

from __future__ import annotations

from dataclasses import replace

from allocation_engine.ports.inventory import (
    EXPIRING_STATES,
    OPEN_STATES,
    InventoryStore,
    ReservationRecord,
    ReservationState,
)


def is_overdue(record: ReservationRecord, now: float) -> bool:
    return record.state in EXPIRING_STATES and record.expires_at <= now


def end(
    store: InventoryStore, record: ReservationRecord, final: ReservationState
) -> ReservationRecord | None:
    """Ends the open `record` as `final` (RELEASED or EXPIRED); returns the ended record, or
    None when the record changed under us (the caller reads it again). A RELEASING record is
    finished as it says, whatever `final` is."""
    if record.state is ReservationState.RELEASING:
        return finish(store, record)
    if record.state not in OPEN_STATES:
        return record
    releasing = replace(record, state=ReservationState.RELEASING, release_as=final)
    if not store.replace_reservation(releasing, record.state, record.attempt):
        return None
    return finish(store, releasing)


def finish(store: InventoryStore, record: ReservationRecord) -> ReservationRecord:
    """Finishes a RELEASING record: gives back its holds, then marks it as it ends. Repeating
    it (after a crash, or by two processes at once) is harmless."""
    if record.state is not ReservationState.RELEASING:
        return record
    store.release(list(record.holds), record.id, record.holds)
    final = record.release_as or ReservationState.RELEASED
    ended = replace(record, state=final, release_as=None)
    if store.replace_reservation(ended, ReservationState.RELEASING, record.attempt):
        return ended
    return store.get_reservation(record.id) or ended


def expire(store: InventoryStore, record: ReservationRecord, now: float) -> ReservationRecord:
    """Expires `record` if it is overdue (and finishes it if its release was cut short);
    returns the record as it now stands."""
    if record.state is ReservationState.RELEASING:
        return finish(store, record)
    if not is_overdue(record, now):
        return record
    ended = end(store, record, ReservationState.EXPIRED)
    if ended is not None:
        return ended
    current = store.get_reservation(record.id) or record
    return finish(store, current)


def expire_due(store: InventoryStore, now: float, limit: int = 200) -> int:
    """Expires up to `limit` overdue reservations and finishes releases cut short; returns how
    many it ended."""
    done = 0
    for rid in store.due_reservations(now, limit):
        record = store.get_reservation(rid)
        if record is None:
            continue
        if record.state is ReservationState.RELEASING or is_overdue(record, now):
            done += expire(store, record, now).state not in OPEN_STATES
    return done
