"""Registration's validation, token hashing, the rate buckets and the resource checks."""

from __future__ import annotations

import pytest

from allocation_engine.adapters.clock import FakeClock
from allocation_engine.adapters.memory.tokens import MemoryCallers
from allocation_engine.errors import InvalidInput, NotFound
from allocation_engine.ports.access import Caller
from allocation_engine.service.access import (
    ROLES,
    SCOPES,
    AccessDenied,
    acting_as,
    check_channel,
    check_node,
    current_caller,
    hash_token,
    new_token,
    register,
)
from allocation_engine.service.ratelimit import RateLimits, TokenBuckets


def test_bad_registrations_name_every_field_and_value() -> None:
    with pytest.raises(InvalidInput) as bad:
        register(
            MemoryCallers(), name="no spaces", role="shop", scopes=["orders:fly"], rate=0, burst=0
        )
    problems = {(p.field, p.value) for p in bad.value.problems}
    assert problems == {
        ("name", "no spaces"),
        ("scope", "orders:fly"),
        ("channel", None),
        ("rate", 0),
        ("burst", 0),
    }
    with pytest.raises(InvalidInput, match="role='boss'"):
        register(MemoryCallers(), name="x", role="boss")
    with pytest.raises(InvalidInput, match="node"):
        register(MemoryCallers(), name="w", role="wms")


def test_roles_are_made_of_known_scopes_and_admin_has_all() -> None:
    assert all(scopes <= SCOPES for scopes in ROLES.values())
    assert ROLES["admin"] == SCOPES
    issued = register(MemoryCallers(), name="p", role="planner", scopes=["orders:read"])
    assert issued.caller.scopes == ROLES["planner"] | {"orders:read"}


def test_tokens_are_random_and_stored_as_their_sha256() -> None:
    first, second = new_token(), new_token()
    assert first != second and first.startswith("ae_") and len(first) >= 40
    assert len(hash_token(first)) == 64 and hash_token(first) != hash_token(second)


def _caller(**kw: object) -> Caller:
    return Caller(id="c1", name="c", scopes=frozenset(), **kw)  # type: ignore[arg-type]


def test_a_bucket_lets_the_burst_through_then_says_how_long_to_wait() -> None:
    clock = FakeClock()
    buckets = TokenBuckets(clock, RateLimits(rate=2.0, burst=3))
    caller = _caller()
    assert [buckets.take(caller) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.take(caller) == pytest.approx(0.5)
    clock.advance(0.5)
    assert buckets.take(caller) == 0.0
    own = _caller(rate=10.0, burst=1)
    assert TokenBuckets(clock).take(own) == 0.0
    with pytest.raises(InvalidInput, match="rate"):
        RateLimits(rate=0)


def test_resource_checks_bind_channels_and_nodes() -> None:
    shop, wms = _caller(channels=("web",)), _caller(nodes=("N1",))
    check_channel(shop, "web")
    check_channel(None, "any")
    check_channel(wms, "any")  # not bound to channels
    with pytest.raises(AccessDenied, match="channel='pos'"):
        check_channel(shop, "pos")
    check_node(wms, "N1")
    with pytest.raises(AccessDenied, match="node_id='N2'"):
        check_node(wms, "N2")
    assert current_caller() is None
    with acting_as(shop):
        assert current_caller() is shop
    assert current_caller() is None
    assert issubclass(NotFound, Exception)
