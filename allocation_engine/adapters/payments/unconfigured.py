"""The card provider of a server started without one (`serve` without `--card-url`)."""

from __future__ import annotations

from typing import Any

from allocation_engine.errors import ProviderUnavailable


class NoCardProvider:
    """Stands where no card provider is configured: every card call fails UNAVAILABLE with a
    message saying what to configure, and invoice orders work as ever."""

    def _missing(self, *args: object) -> Any:
        raise ProviderUnavailable("no card provider configured: start serve with --card-url")

    check = open = capture = refund = cancel = parse_webhook = _missing
