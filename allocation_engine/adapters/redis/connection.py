"""How the Redis stores open and guard their connection.

`open_client(url)` is the one place a Redis client is built: `redis://`, `rediss://` and
`unix://` give a plain `redis.Redis`; `redis+cluster://host:port[,host:port...]` (and
`rediss+cluster://`, with TLS) give a `redis.cluster.RedisCluster` seeded with those nodes, which
the stores recognise and switch to their Cluster layout for. `guarded` turns a lost Redis into
`StoreUnavailable`: the edge maps it to UNAVAILABLE, so a caller learns the store is down (and may
retry elsewhere) instead of seeing an internal error.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar
from urllib.parse import unquote, urlsplit

import redis
from redis.cluster import ClusterNode, RedisCluster

from allocation_engine.errors import StoreUnavailable

CLUSTER_SCHEMES = {"redis+cluster": False, "rediss+cluster": True}  # scheme -> TLS
PLAIN_SCHEMES = ("redis", "rediss", "unix")

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


def open_client(
    url: str, *, socket_timeout: float = 5.0, socket_connect_timeout: float = 2.0
) -> redis.Redis | RedisCluster:
    """A client for `url`, decoding replies to text, with these timeouts.

    A Cluster URL names one or more seed nodes (`redis+cluster://h1:7000,h2:7001`); the client
    learns the rest of the cluster from them. User and password in the URL are used for every
    node. Raises ValueError naming the URL when the scheme or a node is not understood."""
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    options: dict[str, Any] = {
        "decode_responses": True,
        "socket_timeout": socket_timeout,
        "socket_connect_timeout": socket_connect_timeout,
    }
    if scheme in PLAIN_SCHEMES:
        return redis.Redis.from_url(url, **options)
    if scheme not in CLUSTER_SCHEMES:
        raise ValueError(
            f"redis URL {url!r}: scheme must be one of "
            f"{', '.join((*PLAIN_SCHEMES, *CLUSTER_SCHEMES))}"
        )
    rest = url.split("://", 1)[1]
    auth, _, hosts = rest.rpartition("@")
    hosts = hosts.split("/", 1)[0].split("?", 1)[0]
    nodes = [_node(url, part) for part in hosts.split(",") if part]
    if not nodes:
        raise ValueError(f"redis URL {url!r}: names no cluster node (host:port[,host:port...])")
    if auth:
        user, _, password = auth.partition(":")
        options["username"] = unquote(user) or None
        options["password"] = unquote(password) or None
    return RedisCluster(startup_nodes=nodes, ssl=CLUSTER_SCHEMES[scheme], **options)


def _node(url: str, part: str) -> ClusterNode:
    """One `host:port` of a Cluster URL (`[v6]:port` too)."""
    try:
        parsed = urlsplit(f"//{part}")
        host, port = parsed.hostname, parsed.port
    except ValueError:
        host = port = None
    if not host or port is None:
        raise ValueError(f"redis URL {url!r}: {part!r} is not host:port")
    return ClusterNode(host, port)  # type: ignore[no-untyped-call]
