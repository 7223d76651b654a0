"""The cursor of a poll over a platform's queue of orders awaiting shipment (eBay, AliExpress).

Those platforms list the orders that are ready to ship now, in no documented order, and an order
can become ready after orders created later (a payment that clears late), so a creation-time
cursor could pass it for good. The cursor is the queue itself instead: the page reached in the
current pass over it, the ids already imported that were still listed at the last pass, and
the ids listed so far in this pass. An imported id is forgotten only once two whole passes in a
row have not listed it (it was shipped or cancelled), so an order that a page shift hid from one
pass is not imported again, and orders sharing a creation time are neither skipped nor doubled.
The adapter lists a page and says which of its ids are ready; `QueueCursor.import_page` reads
each new ready one and moves the cursor past the page.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass

from allocation_engine.errors import InvalidInput
from allocation_engine.ports.channels import ChannelOrder, ImportPage


@dataclass(frozen=True)
class QueueCursor:
    """Where a poll over a platform's queue of orders awaiting shipment stands.

    `page` is the next page of the current pass (0 = first); `imported` the ids already
    imported that were open at the last look; `listed` the ids listed so far in this pass;
    `absent` the imported ids that the last whole pass did not list. At the end of a pass an
    imported id missing from it twice in a row is forgotten (it left the queue), so the cursor
    stays as small as the queue."""

    page: int = 0
    imported: frozenset[str] = frozenset()
    listed: frozenset[str] = frozenset()
    absent: frozenset[str] = frozenset()

    @classmethod
    def decode(cls, cursor: str) -> QueueCursor:
        """The cursor `encode` wrote; "" is the start. `InvalidInput` for anything else."""
        if not cursor:
            return cls()
        try:
            data = json.loads(cursor)
            return cls(
                page=int(data["page"]),
                imported=frozenset(str(i) for i in data["imported"]),
                listed=frozenset(str(i) for i in data["listed"]),
                absent=frozenset(str(i) for i in data["absent"]),
            )
        except (ValueError, TypeError, KeyError):
            raise InvalidInput.one("cursor", cursor, "not a cursor of this adapter") from None

    def encode(self) -> str:
        return json.dumps(
            {
                "page": self.page,
                "imported": sorted(self.imported),
                "listed": sorted(self.listed),
                "absent": sorted(self.absent),
            },
            separators=(",", ":"),
        )

    def after(self, listed: Iterable[str], imported: Iterable[str], last: bool) -> QueueCursor:
        """The cursor past one page that listed `listed` and imported `imported`; `last` when
        it was the last page of the pass."""
        seen = self.listed | frozenset(listed)
        kept = self.imported | frozenset(imported)
        if not last:
            return QueueCursor(self.page + 1, kept, seen, self.absent)
        missing = kept - seen
        gone = missing & self.absent
        return QueueCursor(0, kept - gone, frozenset(), missing - gone)

    def import_page(
        self,
        listed: Sequence[str],
        ready: Collection[str],
        read: Callable[[str], ChannelOrder],
        last: bool,
    ) -> ImportPage:
        """One listed page of the pass: every id of `listed` that is in `ready` and was not
        imported before, read once through `read` (its problems named under `<id>:`), and the
        cursor past the page; `last` when it was the last page of the pass."""
        imported: list[str] = []
        orders: list[ChannelOrder] = []
        for order_id in listed:
            if order_id in imported or order_id in self.imported or order_id not in ready:
                continue
            try:
                orders.append(read(order_id))
            except InvalidInput as bad:
                raise bad.under(f"{order_id}:") from None
            imported.append(order_id)
        following = self.after(listed, imported, last)
        return ImportPage(tuple(orders), following.encode(), more=not last)
