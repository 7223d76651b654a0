"""Importer cursors in a dict (`make run`, tests): lost on restart, like the in-memory orders."""

from __future__ import annotations

import threading


class MemoryCursors:
    """`ChannelCursors` in a dict, under one lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cursors: dict[str, str] = {}

    def cursor(self, channel: str) -> str:
        with self._lock:
            return self._cursors.get(channel, "")

    def advance(self, channel: str, cursor: str) -> None:
        with self._lock:
            self._cursors[channel] = cursor
