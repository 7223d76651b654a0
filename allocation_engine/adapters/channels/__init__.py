"""One module per sales platform, each speaking that platform's real wire format.

Every platform module offers `connect(settings, secrets) -> Connection` (the roles its platform
has, see `ports.channels`) and names what it needs: `CREDENTIALS`, the secrets it reads (role
names, each given in `[channel.credentials]` as an environment variable name), and `OPTIONS`,
the platform-specific settings it reads from `[channel.options]` with whether each is required.
`app.channels.PLATFORMS` maps each kind to its module, and `app.channels` is the only caller.

Beside the platform modules stand the pieces several of them share, so a platform module
imports these and never another platform's: `money` (amounts to minor units, a line total per
unit), `options` (a channel's secrets and options, every problem named), `payload` (typed
fields out of platform JSON), `queue_cursor` (the cursor over a queue of orders awaiting
shipment, eBay's and AliExpress') and `token_cache` (a bearer token kept until shortly before
it expires, Shopware's, Amazon's and eBay's).
"""

from __future__ import annotations

from dataclasses import dataclass

from allocation_engine.ports.channels import OrderImporter, ShipmentConfirmer, WebhookSource


@dataclass(frozen=True)
class Connection:
    """What one configured channel can do: take webhooks, be polled, take confirmations."""

    webhook: WebhookSource | None = None
    importer: OrderImporter | None = None
    confirmer: ShipmentConfirmer | None = None
