"""The outbox dispatcher: sends what the event log asks for, at least once, never twice.

The workflow never sends anything itself. It appends events in the same atomic write as the
state change, and this dispatcher reads them from the log: a `NOTIFICATION_REQUESTED` event
becomes an e-mail, a `SHIPMENT_RELEASED` event a pick list for the node's WMS, and a
`SHIPMENT_SHIPPED` event of a connected sales channel's order the platform's shipment
confirmation (`service.channels.confirmations`). With a CRM configured, every event is also
told to the CRM (`service.feeds.crm`), a second delivery of its own with its own key.

Why nothing is lost: an event is acknowledged only after its receiver accepted it. A dispatcher
that dies (or whose receiver fails) leaves its events unacknowledged, and the outbox hands them
out again after the lease (to this or another dispatcher).

Why nothing is sent twice: each delivery has a key from the event (`mail:<order>/<seq>`,
`wms:<shipment id>`, `crm:<order>/<seq>`), checked before sending and marked right after the
receiver accepted it; an event is acknowledged once each of its deliveries is done with.
Only a crash in the instant between the receiver's "accepted" and the mark can repeat a send, and
then the receivers are idempotent: the e-mail carries the same Message-ID, the pick list the same
file name or Idempotency-Key.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Collection
from typing import Any

from allocation_engine.errors import InvalidInput, PeerRefused
from allocation_engine.orders.events import EventType
from allocation_engine.orders.model import Address, Event
from allocation_engine.ports.fulfilment import PickLine, PickList, Wms
from allocation_engine.ports.notifications import Notification, Notifier, Undeliverable
from allocation_engine.ports.orders import Outbox
from allocation_engine.service.channels.confirmations import Confirmations
from allocation_engine.service.feeds.crm import CrmEvents, crm_key

log = logging.getLogger("allocation_engine.outbox")

FINAL_STATUSES = frozenset({400, 404, 410, 422})
"""A receiver's refusals no retry can fix (the request itself is wrong, or its object is gone):
recorded as failed. Any other refusal (401/403 after a token was rotated, 409, 423) is retried
after the lease, and logged each time, since an operator can fix its cause."""


def notification_from(event: Event) -> Notification:
    d = event.data
    return Notification(d["key"], d["to"], d["name"], d["language"], d["template"], d["context"])


def pick_list_from(event: Event) -> PickList:
    d: dict[str, Any] = dict(event.data)
    return PickList(
        shipment_id=d["shipment_id"],
        order_id=d["order_id"],
        external_order_id=d["external_order_id"],
        node_id=d["node_id"],
        lines=tuple(PickLine(x["sku"], x["quantity"], x["name"]) for x in d["lines"]),
        ship_to=Address(**d["ship_to"]),
        delivery_mode=d["delivery_mode"],
        created_at=event.at,
    )


def delivery_status(outbox: Outbox, event: Event, confirmed: Collection[str] = ()) -> str:
    """ "sent", "failed" (undeliverable) or "pending" for an event that sends something; ""
    for one that does not (`confirmed`: the channels whose platforms hear of shipments)."""
    key = delivery_key(event, confirmed)
    if key is None:
        return ""
    if outbox.delivered(key):
        return "sent"
    return "failed" if outbox.delivered(f"failed:{key}") else "pending"


def delivery_key(event: Event, confirmed: Collection[str] = ()) -> str | None:
    """The idempotency key of what `event` sends, or None when it sends nothing; a shipped
    parcel sends a confirmation when its order's channel is one of `confirmed`."""
    if event.type is EventType.NOTIFICATION_REQUESTED:
        return f"mail:{event.data['key']}"
    if event.type is EventType.SHIPMENT_RELEASED:
        return f"wms:{event.data['shipment_id']}"
    if event.type is EventType.SHIPMENT_SHIPPED and event.data.get("channel") in confirmed:
        return f"confirm:{event.data['shipment_id']}"
    return None


class Dispatcher:
    def __init__(
        self,
        outbox: Outbox,
        notifier: Notifier,
        wms: Wms,
        consumer: str = "dispatcher",
        confirmations: Confirmations | None = None,
        crm: CrmEvents | None = None,
    ) -> None:
        self.outbox, self.notifier, self.wms, self.consumer = outbox, notifier, wms, consumer
        self.confirmations = confirmations
        self.crm = crm

    def run_once(self, wait_seconds: float = 1.0, batch: int = 20) -> int:
        """Delivers one batch; returns how many events were acknowledged."""
        done = 0
        for delivery in self.outbox.claim(self.consumer, batch, wait_seconds):
            event = delivery.event
            settled = self._settle(event, self._key(event), self.deliver)
            if self.crm is not None:
                settled = self._settle(event, crm_key(event), self.tell_crm) and settled
            if settled:
                self.outbox.ack(delivery.entry_id)
                done += 1
        return done

    def _settle(self, event: Event, key: str | None, send: Callable[[Event], None]) -> bool:
        """Runs one delivery of `event`: True when it is done with (sent, or refused for good
        and recorded as failed under `key`), False when it is to be tried again later."""
        try:
            send(event)
        except (Undeliverable, PeerRefused, InvalidInput) as never:
            if isinstance(never, PeerRefused) and never.status not in FINAL_STATUSES:
                log.error("%s (%s) refused, retried later: %s", event.id, event.type, never)
                return False  # a rotated token, a lock: an operator can fix it, so try again
            log.error("%s (%s) cannot be delivered: %s", event.id, event.type, never)
            self.outbox.mark_delivered(f"failed:{key}")
        except Exception:  # the receiver failed: keep the event for a later attempt
            log.exception("delivery of %s (%s) failed", event.id, event.type)
            return False
        return True

    def tell_crm(self, event: Event) -> None:
        """Sends the event to the CRM, unless its receipt says it went out already."""
        key = crm_key(event)
        if self.crm is None or self.outbox.delivered(key):
            return
        self.crm.send(event)
        self.outbox.mark_delivered(key)

    def deliver(self, event: Event) -> None:
        """Sends what `event` asks for, unless its receipt says it went out already."""
        key = self._key(event)
        if key is None or self.outbox.delivered(key):
            return
        if event.type is EventType.NOTIFICATION_REQUESTED:
            self.notifier.send(notification_from(event))
        elif event.type is EventType.SHIPMENT_RELEASED:
            self.wms.release(pick_list_from(event))
        else:
            assert self.confirmations is not None  # a confirm: key needs a confirmed channel
            self.confirmations.send(event)
        self.outbox.mark_delivered(key)

    def _key(self, event: Event) -> str | None:
        confirmed = self.confirmations.channels if self.confirmations is not None else ()
        return delivery_key(event, confirmed)


class DispatcherThread(threading.Thread):
    """Runs a dispatcher until `stop()`; backs off while the store or a receiver is down."""

    def __init__(self, dispatcher: Dispatcher, wait_seconds: float = 0.5) -> None:
        super().__init__(name=f"outbox-{dispatcher.consumer}", daemon=True)
        self.dispatcher = dispatcher
        self._wait = wait_seconds
        self._stopping = threading.Event()

    def run(self) -> None:
        backoff = self._wait
        while not self._stopping.is_set():
            try:
                self.dispatcher.run_once(self._wait)
                backoff = self._wait
            except Exception:
                log.exception("outbox dispatcher: store unavailable, retrying")
                self._stopping.wait(backoff)
                backoff = min(backoff * 2, 30.0)

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        self.join(timeout)
