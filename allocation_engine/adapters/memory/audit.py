"""The in-memory audit log: the newest `max_entries` entries (lost on restart)."""

from __future__ import annotations

import threading
from collections import deque

from allocation_engine.ports.access import AuditEntry


class MemoryAudit:
    """`AuditLog` in a bounded deque."""

    def __init__(self, max_entries: int = 100_000) -> None:
        self._lock = threading.Lock()
        self._entries: deque[AuditEntry] = deque(maxlen=max_entries)

    def append(self, entry: AuditEntry) -> None:
        with self._lock:
            self._entries.append(entry)

    def recent(self, limit: int = 100) -> list[AuditEntry]:
        with self._lock:
            return list(self._entries)[-limit:] if limit > 0 else []
