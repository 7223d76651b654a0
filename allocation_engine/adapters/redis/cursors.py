"""Importer cursors in Redis: one hash, a field per channel, so every server process on the
same Redis continues from where any of them stopped. One key, one hash slot: fine on a Cluster.
"""

from __future__ import annotations

from typing import Any

from allocation_engine.adapters.redis.connection import guarded, open_client

KEY = "channels:{cursors}"


class RedisCursors:
    """`ChannelCursors` over a redis.Redis or redis.RedisCluster client."""

    def __init__(self, client: Any) -> None:
        self._client = client

    @classmethod
    def from_url(cls, url: str) -> RedisCursors:
        return cls(open_client(url))

    @guarded
    def cursor(self, channel: str) -> str:
        return str(self._client.hget(KEY, channel) or "")

    @guarded
    def advance(self, channel: str, cursor: str) -> None:
        self._client.hset(KEY, channel, cursor)
