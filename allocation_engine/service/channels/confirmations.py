"""Shipment confirmations back to the platform an order came from, sent by the outbox.

When a parcel of a channel's order leaves its node (`shipment.shipped`), the platform is told in
its own format (a Shopify fulfillment, an Amazon shipment confirmation, ...) with the carrier,
the tracking number and the lines by the platform's skus. The outbox sends it at least once
under the key `confirm:<shipment id>`; each confirmer is idempotent on the shipment id, so the
repeat a crash can cause leaves one confirmation at the platform.
"""

from __future__ import annotations

from collections.abc import Mapping

from allocation_engine.orders.model import Event
from allocation_engine.ports.channels import ParcelShipped, ShipmentConfirmer, ShippedLine
from allocation_engine.service.channels.config import Channels
from allocation_engine.service.channels.mapping import platform_skus


class Confirmations:
    """Which confirmer tells which channel, and the parcel a `shipment.shipped` event amounts
    to."""

    def __init__(self, channels: Channels, confirmers: Mapping[str, ShipmentConfirmer]) -> None:
        self._confirmers = dict(confirmers)
        self._skus = {c.name: platform_skus(c) for c in channels}
        self.channels = frozenset(self._confirmers)

    def send(self, event: Event) -> None:
        """Tells the platform of the event's channel that the parcel left."""
        d = event.data
        skus = self._skus.get(d["channel"], {})
        self._confirmers[d["channel"]].confirm(
            ParcelShipped(
                channel=d["channel"],
                order_id=event.order_id,
                external_id=d["external_id"],
                shipment_id=d["shipment_id"],
                node_id=d["node_id"],
                carrier=d["carrier"],
                tracking_number=d["tracking_number"],
                lines=tuple(
                    ShippedLine(skus.get(x["sku"], x["sku"]), x["quantity"]) for x in d["lines"]
                ),
                shipped_at=event.at,
            )
        )
