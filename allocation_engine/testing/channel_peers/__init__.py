"""Local peers that speak each sales platform's real wire format, on a free port: the only
stand-in the tests use, since Shopify, Amazon and the rest cannot be reached from here.

Every peer offers the same surface (`PlatformPeer`), so one end-to-end test runs every platform:
configure a channel with the peer's `settings()`, let the platform "take" its sample order
(`new_order`: a signed webhook to our HTTP edge, or an order waiting to be polled), run the
order through allocation and shipping, and read back what the platform was told
(`confirmations`).
"""

from __future__ import annotations

from typing import Any, Protocol, Self


class PlatformPeer(Protocol):
    kind: str

    @property
    def url(self) -> str:
        """The base URL of the platform API this peer plays."""
        ...

    def start(self) -> Self: ...

    def stop(self) -> None: ...

    def secrets(self) -> dict[str, str]:
        """Credential role -> value, what the channel's environment variables would hold."""
        ...

    def options(self) -> dict[str, Any]:
        """The `[channel.options]` this peer's channel needs (account ids, a start date)."""
        ...

    def skus(self) -> dict[str, str]:
        """The sample's platform skus (or variant ids) -> skus of the demo network."""
        ...

    def new_order(self, edge_url: str, channel: str) -> str:
        """The platform takes its sample order: a webhook platform POSTs the signed sample to
        `{edge_url}/webhooks/{channel}`, a polled one lists it for the next poll. Returns the
        order's external id (the platform's order id)."""
        ...

    def confirmations(self, external_id: str) -> list[dict[str, Any]]:
        """The shipment confirmations the platform received for that order, each as
        {"carrier": ..., "tracking_number": ..., "lines": {platform sku: quantity}, "raw": the
        request body in the platform's own format}."""
        ...
