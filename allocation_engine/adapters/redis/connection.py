"""What both Redis stores do with their connection: a lost Redis becomes `StoreUnavailable`.

The edge maps `StoreUnavailable` to UNAVAILABLE, so a caller learns the store is down (and may
retry elsewhere) instead of seeing an internal error.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import redis

from allocation_engine.errors import StoreUnavailable

P = ParamSpec("P")
R = TypeVar("R")


def guarded(method: Callable[P, R]) -> Callable[P, R]:
    """Turns a lost connection into StoreUnavailable, which the edge answers UNAVAILABLE."""

    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(*args, **kwargs)
        except (redis.ConnectionError, redis.TimeoutError) as lost:
            raise StoreUnavailable(f"redis: {lost}") from lost

    return wrapper
