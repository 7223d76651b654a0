"""Orders in from every connected channel: webhooks pushed to us, importers we poll, POS sales.

Why nothing is placed twice: placing is idempotent on (channel, external order id) (see
`orders.placing`), so a webhook the platform delivers twice, a poll that repeats a page after a
crash, or two server processes taking the same delivery all end with one order. The platform's
delivery id is kept as a receipt after the orders were placed, so a known redelivery is answered
at once without fetching or placing anything.

Why nothing is lost: a webhook is answered 2xx only after its orders were placed (else the
platform delivers it again), and an importer's cursor moves only after every order of the page
was placed. An order that cannot be placed (a sku the mapping table lacks) stops the poll at that
order, named in the error, instead of being skipped: the next poll tries it again once the
table is fixed, and the orders behind it wait.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from allocation_engine.errors import InvalidInput, NotFound
from allocation_engine.orders.fingerprint import fingerprint
from allocation_engine.ports.channels import (
    ChannelCursors,
    ChannelOrder,
    ChannelSettings,
    OrderImporter,
    PostalCentroids,
    WebhookSource,
)
from allocation_engine.ports.inventory import Adjustment, AdjustOutcome
from allocation_engine.ports.orders import Outbox
from allocation_engine.service.channels.config import Channels
from allocation_engine.service.channels.mapping import our_sku, place_command
from allocation_engine.service.inventory import InventoryFeeds
from allocation_engine.service.orders.flow import OrderFlow
from allocation_engine.service.orders.placing import Placed

log = logging.getLogger("allocation_engine.channels")

MAX_PAGES_PER_POLL = 50
"""Pages one poll reads at most; the rest waits for the next poll (a backlog cannot hold a
poller thread for an hour)."""


@dataclass(frozen=True)
class Received:
    """What a webhook delivery or a poll placed: each order's id and whether it was new."""

    orders: tuple[Placed, ...] = ()
    duplicate: bool = False  # a delivery id seen before: nothing was read or placed


@dataclass(frozen=True)
class SaleLine:
    sku: str
    quantity: int


@dataclass(frozen=True)
class Sale:
    """A sale at a store's till: the goods left with the customer, so the store's stock goes
    down at once (it is not an order to source). `sale_id` is the POS's receipt number, unique
    per channel: the same sale sent again changes nothing."""

    sale_id: str
    store_id: str
    lines: tuple[SaleLine, ...]


class ChannelIntake:
    """The use cases of the HTTP edge's channel routes and of the importer threads."""

    def __init__(
        self,
        channels: Channels,
        flow: OrderFlow,
        inventory: InventoryFeeds,
        receipts: Outbox,
        cursors: ChannelCursors,
        centroids: PostalCentroids,
        webhooks: Mapping[str, WebhookSource],
        importers: Mapping[str, OrderImporter],
    ) -> None:
        self.channels, self.flow, self.inventory = channels, flow, inventory
        self._receipts, self._cursors, self._centroids = receipts, cursors, centroids
        self._webhooks, self._importers = webhooks, importers

    def settings(self, channel: str) -> ChannelSettings:
        settings = self.channels.get(channel)
        if settings is None:
            raise NotFound("channel", channel)
        return settings

    # --- pushed --------------------------------------------------------------------------

    def webhook(self, channel: str, headers: Mapping[str, str], body: bytes) -> Received:
        """Verifies a delivery (`BadSignature`), then places its orders. A delivery id seen
        before places nothing; an order that cannot be mapped is `InvalidInput` (nothing of
        that delivery is kept as received, so the platform's retry tries it again)."""
        settings = self.settings(channel)
        source = self._webhooks.get(channel)
        if source is None:
            raise NotFound("channel", f"{channel} (takes no webhooks: it is polled)")
        lowered = {k.lower(): v for k, v in headers.items()}
        source.verify(lowered, body)
        delivery = source.delivery_id(lowered, body)
        receipt = f"webhook:{channel}:{delivery}"
        if delivery and self._receipts.delivered(receipt):
            return Received(duplicate=True)
        try:
            orders = source.orders(lowered, body)
        except RecursionError:  # JSON nested past the parser's stack, even correctly signed
            raise InvalidInput.one("body", body[:40], "is nested too deeply") from None
        placed = tuple(self._place(settings, o) for o in orders)
        if delivery:
            self._receipts.mark_delivered(receipt)
        return Received(placed)

    # --- polled --------------------------------------------------------------------------

    def poll(self, channel: str) -> Received:
        """Reads the channel's new orders page by page from its stored cursor and places them,
        moving the cursor after each page; `PeerUnavailable` or `InvalidInput` from a page
        leave the cursor where the last placed page ended."""
        settings = self.settings(channel)
        importer = self._importers.get(channel)
        if importer is None:
            raise NotFound("channel", f"{channel} (is not polled: it sends webhooks)")
        placed: list[Placed] = []
        cursor = self._cursors.cursor(channel)
        for _ in range(MAX_PAGES_PER_POLL):
            page = importer.fetch(cursor)
            placed += [self._place(settings, order) for order in page.orders]
            if page.cursor != cursor:
                self._cursors.advance(channel, page.cursor)
                cursor = page.cursor
            if not page.more:
                break
        return Received(tuple(placed))

    def polled(self) -> Sequence[ChannelSettings]:
        """The channels an importer polls."""
        return [c for c in self.channels if c.name in self._importers]

    # --- the till --------------------------------------------------------------------------

    def sale(self, channel: str, sale: Sale) -> AdjustOutcome:
        """Takes a POS sale's units off the store's on-hand at once, once per sale id."""
        settings = self.settings(channel)
        adjustments = []
        for i, line in enumerate(sale.lines):
            sku = our_sku(settings, line.sku)
            if sku is None:
                raise InvalidInput.one(
                    f"lines[{i}].sku", line.sku, f"not in the sku table of channel {channel}"
                )
            if line.quantity <= 0:
                raise InvalidInput.one(f"lines[{i}].quantity", line.quantity, "must be >= 1")
            adjustments.append(Adjustment(sale.store_id, sku, -line.quantity))
        if not sale.sale_id.strip():
            raise InvalidInput.one("sale_id", sale.sale_id, "must be given")
        return self.inventory.adjust(
            f"pos:{channel}:{sale.sale_id}", fingerprint(sale), adjustments
        )

    def _place(self, settings: ChannelSettings, order: ChannelOrder) -> Placed:
        try:
            command = place_command(settings, order, self._centroids)
        except InvalidInput as bad:
            log.error(
                "channel %s: order %s cannot be placed: %s", settings.name, order.external_id, bad
            )
            raise bad.under(f"order[{order.external_id[:40]}].") from None
        return self.flow.place(command)
