"""Wiring for access control: the caller registry and audit log a Redis URL names (the CLI's
`tokens` commands and the server use the same ones)."""

from __future__ import annotations

from allocation_engine.adapters.memory.audit import MemoryAudit
from allocation_engine.adapters.memory.tokens import MemoryCallers
from allocation_engine.adapters.redis.audit import RedisAudit
from allocation_engine.adapters.redis.tokens import RedisCallers
from allocation_engine.ports.access import AuditLog, CallerRegistry


def open_registry(redis_url: str | None) -> CallerRegistry:
    """The callers in Redis at `redis_url`, or a fresh in-memory registry without one."""
    return RedisCallers.from_url(redis_url) if redis_url else MemoryCallers()


def open_audit(redis_url: str | None) -> AuditLog:
    """The audit stream in Redis at `redis_url`, or an in-memory log without one."""
    return RedisAudit.from_url(redis_url) if redis_url else MemoryAudit()
