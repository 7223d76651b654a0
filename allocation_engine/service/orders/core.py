"""What every order command shares: the ports, loading an order, and the change loop.

A command loads the order, makes its change on a `Draft` (state machines first, so an illegal
transition raises before anything moved), runs the workflow on until a step waits, and stores
order and events in one compare-and-set write (`FlowCore.change`). When another call wrote
first, the command runs again on the fresh order; calls to the outside world inside a command
carry idempotency keys derived from the stored order (`OrderRecord.key`: its id and nonce, and
the step), never from anything random or made up by the call, so a rerun, a racing call or a
process restarted after a crash repeats none of them.

A retry with an idempotency key already seen returns the order as it stands; the same key with
a different request is `KeyReused`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import suppress

from allocation_engine.errors import ConcurrentChange, InvalidInput, KeyReused, NotFound
from allocation_engine.orders.definition import Workflows
from allocation_engine.orders.draft import Draft
from allocation_engine.orders.fingerprint import fingerprint, same_request
from allocation_engine.orders.model import Customer, FlowStatus, OrderRecord
from allocation_engine.ports.clock import Clock
from allocation_engine.ports.orders import OrderStore, StaleVersion
from allocation_engine.service.orders.steps import Gateways, advance


class FlowCore:
    """The ports the order commands work through, and the one way they change an order."""

    def __init__(
        self,
        workflows: Workflows,
        store: OrderStore,
        gateways: Gateways,
        clock: Clock,
        *,
        retries: int = 8,
        channel_workflows: Mapping[str, str] | None = None,
    ) -> None:
        """`channel_workflows`: the workflow each sales channel's orders take (channels.toml),
        whatever the workflow file's conditions say."""
        self.workflows = workflows
        self.channel_workflows = dict(channel_workflows or {})
        self.store = store
        self.gateways = gateways
        self.clock = clock
        self.retries = retries  # rounds of the change loop before ConcurrentChange

    def change(
        self, order_id: str, key: str, request: object, apply: Callable[[Draft], None]
    ) -> OrderRecord:
        """Applies `apply` to the order and runs its workflow on, as one compare-and-set write
        remembered under `key`; `request` is what the key's fingerprint is taken of.

        A key already seen with the same request returns the order as it stands (nothing runs
        again); with another request it is `KeyReused`. A lost race reruns `apply` on the
        fresh order, at most `retries` times, then `ConcurrentChange`.
        """
        if not key:
            raise InvalidInput.one("idempotency_key", key, "is required")

        def seen(record: OrderRecord) -> bool:
            known = record.keys.get(key)
            if known is not None and not same_request(known, request):
                raise KeyReused("idempotency_key", key)
            return known is not None

        return self._write(order_id, seen, apply, key, fingerprint(request))

    def finish_placing(self, order_id: str) -> OrderRecord:
        """Opens the payment of an order stored by `place` but not opened yet, and runs its
        workflow up to the first wait, as one write; the order as it stands when it was opened
        already (or cancelled). `place` calls this right after storing the order, and again
        when the same order is placed again; ResumeOrder (any command, in fact) does the same
        through `advance`. Every outside call is keyed by the stored order, so the racer that
        loses the write, or a retry after a crash, repeats no payment and no hold."""

        def finished(record: OrderRecord) -> bool:
            return record.payment.opened or record.status is FlowStatus.CANCELLED

        return self._write(order_id, finished, lambda d: None, "", "")

    def _write(
        self,
        order_id: str,
        done: Callable[[OrderRecord], bool],
        apply: Callable[[Draft], None],
        key: str,
        fp: str,
    ) -> OrderRecord:
        """The change loop: unless `done` says the stored order needs nothing, `apply`, run the
        workflow on, compare-and-set; a lost race reruns on the fresh order.

        A round whose write lost may have held stock the winner knows nothing of; the rerun
        holds it again under the same key and keeps it, unless the winner cancelled the
        order or the rerun asked for another hold (a reroute of other units): then that hold is
        released here (`_release_lost`)."""
        lost: set[str] = set()  # reservations held by rounds whose write lost
        record: OrderRecord | None = None
        try:
            for _ in range(self.retries):
                record = self.store.load(order_id)
                if done(record):
                    break
                d = self.draft(record)
                apply(d)
                advance(self.gateways, d)
                try:
                    self.store.commit(d.change(key, fp))
                except StaleVersion:
                    lost |= d.record.reservations - record.reservations
                    continue
                record = d.record
                break
            else:
                raise ConcurrentChange(order_id)
        except Exception:
            if record is not None:
                with suppress(Exception):  # the command's own error is the answer
                    self._release_lost(lost, record)
            raise
        assert record is not None  # every round loads one
        self._release_lost(lost, record)
        return record

    def _release_lost(self, lost: set[str], record: OrderRecord) -> None:
        """Releases the holds rounds of this call took and lost that the stored order does not
        hold (a cancelled order never holds stock again, and its cancel released only the
        reservations it knew of)."""
        for reservation_id in sorted(lost - record.reservations):
            self.gateways.stock.release(reservation_id, record.key(f"release:{reservation_id}"))

    def draft(self, record: OrderRecord) -> Draft:
        """A change to `record`, made now, under its customer and workflow."""
        return Draft(
            record,
            self.customer_of(record),
            self.workflows.get(record.workflow),
            self.clock.now(),
        )

    def customer_of(self, record: OrderRecord) -> Customer:
        """The order's customer account (NotFound if the store lost it)."""
        customer = self.store.customer(record.customer_id)
        if customer is None:
            raise NotFound("customer_id", record.customer_id)
        return customer
