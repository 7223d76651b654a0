"""A channel's secrets and `[channel.options]` as its adapter reads them when it connects.

The channel file's parser checks that every required option and credential is named; what they
hold is the adapter's to check: a start time that is ISO 8601, a page size that is a whole
number the platform accepts, a table of carrier codes. `OptionReader` reads each as the type the
adapter needs and collects every problem, named `options.<name>` (`credentials.<role>` for a
secret) with the value quoted, for one `InvalidInput` at `done()`: a channel with three
mistakes is told all three at once, before any call to the platform.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from allocation_engine.adapters.channels.payload import is_whole, utc_time
from allocation_engine.errors import ProblemCollector
from allocation_engine.ports.channels import ChannelSettings

UNREAD = datetime(1970, 1, 1, tzinfo=UTC)
"""What an unreadable time option reads as, only so the rest can be read; `done()` refuses."""


class OptionReader:
    """Reads one channel's secrets and options, collecting every problem."""

    def __init__(self, settings: ChannelSettings, secrets: Mapping[str, str]) -> None:
        self._options = settings.options
        self._given = secrets
        self.problems = ProblemCollector()

    def secrets(self, roles: Sequence[str], *, under: str = "") -> dict[str, str]:
        """The secret of each role, each missing one named `<under>credentials.<role>`."""
        for role in roles:
            if not self._given.get(role):
                self.problems.add(f"{under}credentials.{role}", "", "missing secret")
        return {role: self._given.get(role, "") for role in roles}

    def text(self, name: str, default: str = "", *, required: bool = False) -> str:
        """A string option; `default` when it is absent or empty."""
        value = str(self._options.get(name) or default)
        if required and not value:
            self.problems.add(f"options.{name}", self._options.get(name), "missing")
        return value

    def time(self, name: str) -> datetime:
        """A required timestamp option (ISO 8601; without an offset it is UTC), in UTC."""
        raw = self._options.get(name)
        try:
            return utc_time(str(raw))
        except ValueError:
            self.problems.add(f"options.{name}", raw, "expected an ISO 8601 time")
            return UNREAD

    def count(self, name: str, default: int, maximum: int | None = None) -> int:
        """A whole-number option of at least 1 (and at most `maximum`), `default` when absent."""
        raw = self._options.get(name, default)
        if is_whole(raw) and (maximum is None or raw <= maximum):
            return raw
        bounds = f"1..{maximum}" if maximum is not None else "of at least 1"
        self.problems.add(f"options.{name}", raw, f"expected a whole number {bounds}")
        return default

    def table(self, name: str) -> dict[str, str]:
        """A table option of names to names (`{}` when absent)."""
        raw = self._options.get(name, {})
        if isinstance(raw, Mapping):
            return {str(k): str(v) for k, v in raw.items()}
        self.problems.add(f"options.{name}", raw, "expected a table")
        return {}

    def done(self) -> None:
        """`InvalidInput` naming every problem found, if any."""
        self.problems.raise_if_any()
