"""The notification port: e-mails to customers, sent by the outbox, never by the workflow.

`Undeliverable` tells the outbox that no retry can help (a refused address), so it records the
e-mail as failed instead of handing it out again forever.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class Notification:
    """One e-mail to a customer. `key` is unique per e-mail and stable across retries (it
    becomes the Message-ID), so a receiver can drop a second copy."""

    key: str
    to: str
    name: str
    language: str
    template: str
    context: Mapping[str, Any] = field(default_factory=dict)


class Notifier(Protocol):
    def send(self, notification: Notification) -> None:
        """Sends the e-mail; `Undeliverable` when no retry could ever send it."""
        ...


class Undeliverable(Exception):
    """A message no retry can deliver (its template cannot render it, say). The outbox records
    it as failed instead of retrying it forever; any other error is retried."""
