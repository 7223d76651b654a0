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
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from allocation_engine.engine.network import NodeType
from allocation_engine.errors import InvalidInput, KeyReused, NotFound, PeerUnavailable
from allocation_engine.orders.commands import PlaceOrder
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
        with _readable("body", body, InvalidInput):
            delivery = source.delivery_id(lowered, body)
        receipt = f"webhook:{channel}:{delivery}"
        if delivery and self._receipts.delivered(receipt):
            return Received(duplicate=True)
        with _readable("body", body, InvalidInput):
            orders = source.orders(lowered, body)
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
            with _readable(channel, b"", PeerUnavailable):
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
        """Takes a POS sale's units off the store's on-hand at once, once per sale id; only
        a POS channel sells, and only from a store."""
        settings = self.settings(channel)
        if settings.kind != "pos":
            raise InvalidInput.one("channel", channel, f"is a {settings.kind} channel, not a POS")
        for field, text in (("sale_id", sale.sale_id), ("store_id", sale.store_id)):
            _unicode(field, text)
        store = next((n for n in self.inventory.nodes().nodes if n.id == sale.store_id), None)
        if store is None or store.type is not NodeType.STORE:
            raise InvalidInput.one("store_id", sale.store_id, "is not a store node")
        adjustments = []
        for i, line in enumerate(sale.lines):
            _unicode(f"lines[{i}].sku", line.sku)
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
        """Maps and places one platform order; what cannot be mapped or placed is
        `InvalidInput` named under the order (`order[1042].lines[0].sku`)."""
        try:
            command = place_command(settings, order, self._centroids)
            try:
                return self.flow.place(command)
            except KeyReused:
                return self._kept(settings, command)
        except InvalidInput as bad:
            log.error(
                "channel %s: order %s cannot be placed: %s", settings.name, order.external_id, bad
            )
            raise bad.under(f"order[{order.external_id[:40]}].") from None

    def _kept(self, settings: ChannelSettings, command: PlaceOrder) -> Placed:
        """The platform changed the order after we took it (an edited e-mail, a quantity): it
        is the same order, placed once; the change is for an operator, not a reason to stop
        the channel on every redelivery or poll."""
        found = self.flow.store.find_external(command.channel, command.external_id)
        if found is None:
            raise KeyReused("external_order_id", f"{command.channel}/{command.external_id}")
        log.warning(
            "channel %s: order %s changed at the platform after it was placed as %s; kept",
            settings.name,
            command.external_id,
            found,
        )
        return Placed(self.flow.store.load(found), created=False)


@contextmanager
def _readable(field: str, body: bytes, error: type[Exception]) -> Iterator[None]:
    """An adapter that meets a payload or an answer of a shape it does not expect (a list
    where an object goes, JSON nested past the parser's stack) raises a typed error instead:
    `InvalidInput` for a delivery (the platform's retry cannot help until it is fixed),
    `PeerUnavailable` for a platform's API answer (it may answer properly next time)."""
    try:
        yield
    except (TypeError, ValueError, KeyError, AttributeError, IndexError, RecursionError) as bad:
        detail = f"cannot be read ({type(bad).__name__}: {str(bad)[:80]})"
        if error is InvalidInput:
            raise InvalidInput.one(field, body[:40], detail) from None
        raise PeerUnavailable(f"channel {field}: the platform's answer {detail}") from None


def _unicode(field: str, text: str) -> None:
    """`InvalidInput` for text no store can write (a lone surrogate a JSON body can carry)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput.one(field, text, "is not valid Unicode text") from None
