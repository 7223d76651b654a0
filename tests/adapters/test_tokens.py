"""The caller registry, in memory and in Redis, held to one suite; the raw token never reaches
Redis."""

from __future__ import annotations

import pytest
import redis

from allocation_engine.adapters.memory.tokens import MemoryCallers
from allocation_engine.adapters.redis.tokens import RedisCallers
from allocation_engine.errors import InvalidInput
from allocation_engine.ports.access import CallerRegistry
from allocation_engine.service.access import by_subjects, by_token, hash_token, register


@pytest.fixture(params=["memory", "redis"])
def registry(request: pytest.FixtureRequest) -> CallerRegistry:
    if request.param == "memory":
        return MemoryCallers()
    return RedisCallers.from_url(request.getfixturevalue("redis_url"))


def test_a_caller_is_found_by_its_token_and_subject_and_revoked(registry: CallerRegistry) -> None:
    shop = register(registry, name="shop-1", role="shop", channels=["web"], rate=5, burst=9)
    wms = register(
        registry, name="wms-1", role="wms", nodes=["N1"], cert_subject="wms-1", with_token=False
    )
    assert shop.token is not None and wms.token is None
    assert by_token(registry, shop.token) == shop.caller
    assert by_token(registry, shop.token + "x") is None
    assert by_subjects(registry, ["nobody", "wms-1"]) == wms.caller
    assert [c.name for c in registry.callers()] == ["shop-1", "wms-1"]
    revoked = registry.revoke("shop-1")
    assert revoked is not None and revoked.revoked
    assert by_token(registry, shop.token) is None
    assert registry.revoke(wms.caller.id) is not None
    assert by_subjects(registry, ["wms-1"]) is None
    assert registry.revoke("ghost") is None
    assert [c.revoked for c in registry.callers()] == [True, True]


def test_a_name_or_subject_taken_is_refused_naming_the_field(registry: CallerRegistry) -> None:
    register(registry, name="erp", role="erp", cert_subject="erp.example")
    with pytest.raises(InvalidInput) as name:
        register(registry, name="erp", role="erp")
    assert name.value.problems[0].field == "name"
    with pytest.raises(InvalidInput) as subject:
        register(registry, name="erp-2", role="erp", cert_subject="erp.example")
    assert subject.value.problems[0].field == "cert_subject"
    assert [c.name for c in registry.callers()] == ["erp"]


def test_redis_holds_the_hash_of_the_token_never_the_token(redis_url: str) -> None:
    issued = register(RedisCallers.from_url(redis_url), name="shop-1", role="shop", channels=["w"])
    assert issued.token is not None
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter("*"))
    assert keys and all(k.startswith(b"{auth}:") for k in keys)
    dumped = b" ".join(
        [*keys, *(client.get(k) or b"" for k in keys if client.type(k) == b"string")]
    )
    assert issued.token.encode() not in dumped
    assert hash_token(issued.token).encode() in dumped
