"""The audit log in Redis: one stream, `audit:{audit}`, trimmed to about `max_entries` (XADD
MAXLEN ~). One key is one Cluster slot, so the whole trail lives on one shard, which is fine for
a trail of writes."""

from __future__ import annotations

from typing import Any

import redis

from allocation_engine.adapters.redis.connection import open_client
from allocation_engine.adapters.redis.tokens import text_of
from allocation_engine.errors import StoreUnavailable
from allocation_engine.ports.access import AuditEntry

KEY = "audit:{audit}"


class RedisAudit:
    """`AuditLog` over a redis.Redis or redis.RedisCluster client."""

    def __init__(self, client: Any, max_entries: int = 1_000_000) -> None:
        self._client = client
        self._max = max_entries

    @classmethod
    def from_url(cls, url: str, max_entries: int = 1_000_000) -> RedisAudit:
        return cls(open_client(url), max_entries)

    def append(self, entry: AuditEntry) -> None:
        fields = {
            "at": repr(entry.at),
            "caller": entry.caller,
            "method": entry.method,
            "code": entry.code,
            "idempotency_key": entry.idempotency_key,
            "detail": entry.detail,
        }
        try:
            self._client.xadd(KEY, fields, maxlen=self._max, approximate=True)
        except redis.RedisError as failed:
            raise StoreUnavailable(f"audit log: {failed}") from failed

    def recent(self, limit: int = 100) -> list[AuditEntry]:
        rows = self._client.xrevrange(KEY, count=limit) if limit > 0 else []
        entries = []
        for _, raw in reversed(rows):
            data = {text_of(k): text_of(v) for k, v in raw.items()}
            entries.append(
                AuditEntry(
                    at=float(data["at"]),
                    caller=data["caller"],
                    method=data["method"],
                    code=data["code"],
                    idempotency_key=data["idempotency_key"],
                    detail=data["detail"],
                )
            )
        return entries
