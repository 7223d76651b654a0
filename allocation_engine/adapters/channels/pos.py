"""POS systems and apps: channels that call us, so they need no adapter of their own.

A till posts its sales to `POST /v1/channels/<channel>/sales` (the store's on-hand goes down at
once: the goods left with the customer, there is nothing to source), and a click & collect or
ship-from-store order taken at the till or in an app goes through the same `PlaceOrder` as
every other (gRPC, or `POST /v1/orders`) under the channel's name, so the channel's workflow,
node types and sku table apply. Both authenticate with an API token bound to the channel (and,
for a till, to its store node).
"""

from __future__ import annotations

from collections.abc import Mapping

from allocation_engine.adapters.channels import Connection
from allocation_engine.adapters.http_client import RetryPolicy
from allocation_engine.ports.channels import ChannelSettings

CREDENTIALS: tuple[str, ...] = ()
OPTIONS: dict[str, bool] = {}
NEEDS_BASE_URL = False


def connect(
    settings: ChannelSettings, secrets: Mapping[str, str], *, retry: RetryPolicy | None = None
) -> Connection:
    """Nothing to connect: the POS or app calls us."""
    return Connection()
