"""The audit log, in memory and as a Redis stream, held to one suite."""

from __future__ import annotations

import pytest
import redis

from allocation_engine.adapters.memory.audit import MemoryAudit
from allocation_engine.adapters.redis.audit import KEY, RedisAudit
from allocation_engine.errors import StoreUnavailable
from allocation_engine.ports.access import AuditEntry, AuditLog


@pytest.fixture(params=["memory", "redis"])
def audit(request: pytest.FixtureRequest) -> AuditLog:
    if request.param == "memory":
        return MemoryAudit(max_entries=50)
    return RedisAudit.from_url(request.getfixturevalue("redis_url"), max_entries=50)


def test_entries_come_back_oldest_first_as_written(audit: AuditLog) -> None:
    entries = [
        AuditEntry(1.5 + i, f"caller-{i}", "/allocation.v1.OrderService/CancelOrder", "OK", f"k{i}")
        for i in range(3)
    ]
    for entry in entries:
        audit.append(entry)
    assert audit.recent(2) == entries[1:]
    assert audit.recent() == entries
    assert audit.recent(0) == []


def test_the_trail_is_bounded(audit: AuditLog) -> None:
    for i in range(500):
        audit.append(AuditEntry(float(i), "c", "/m", "OK"))
    kept = audit.recent(10_000)
    assert 50 <= len(kept) < 500  # MAXLEN ~ trims whole stream nodes: about 50
    assert kept[-1].at == 499.0


def test_a_redis_that_cannot_be_reached_raises_instead_of_dropping() -> None:
    client = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    with pytest.raises(StoreUnavailable):
        RedisAudit(client).append(AuditEntry(0.0, "c", "/m", "OK"))


def test_the_stream_is_one_key(redis_url: str) -> None:
    RedisAudit.from_url(redis_url).append(AuditEntry(0.0, "c", "/m", "OK"))
    assert redis.Redis.from_url(redis_url).keys("*") == [KEY.encode()]
