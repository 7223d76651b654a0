"""The CRM port: where order and customer events go so the CRM sees what happened to its
customers' orders.

The outbox hands each event to a `CrmSink` once under its delivery key (`crm:<order>/<seq>`);
the key travels with the message, so a receiver that sees the same key twice (the repeat a
crash between its "accepted" and our receipt can cause) keeps one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol


class CrmSink(Protocol):
    def send(self, key: str, message: Mapping[str, Any]) -> None:
        """Delivers one JSON message; raises PeerUnavailable (retried later) or PeerRefused."""
        ...
