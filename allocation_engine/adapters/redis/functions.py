"""The one loader of Redis FUNCTION libraries, shared by the inventory and the order store.

Each store keeps its atomic operations as one FUNCTION library in a `.lua` file shipped in this
package (`inventory.lua`, `orders.lua`; the first line names the library: `#!lua name=...`).
`FunctionLibrary` loads it the first time it is needed, with FUNCTION LOAD REPLACE unless the
server already has exactly this code, and calls its functions, one or many per round trip.

Why a loader at all: a Redis FUNCTION lives in the server, not in the request. A Redis that
restarts without persistence, a failover to a replica that never got the library, or a FUNCTION
FLUSH forgets it, and every FCALL then answers "Function not found" without running anything.
So, as redis-py's `Script` does with NoScriptError, a call that answers so loads the library
again and is repeated ONCE; since the failed call did not run, repeating it is safe. Any other
error (a script error, a wrong argument) is raised as it is, and a call that still finds no
function after the reload raises too, instead of looping.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from importlib import resources
from typing import Any, NamedTuple

import redis
from redis.cluster import RedisCluster

_NAME = re.compile(r"^#!lua name=(\S+)")
_MISSING = "Function not found"  # what Redis answers an FCALL of a function it does not have


class Call(NamedTuple):
    """One FCALL: the function's name, its KEYS and its ARGV."""

    function: str
    keys: Sequence[str]
    args: Sequence[Any] = ()


def is_missing_function(error: BaseException) -> bool:
    """Whether `error` is Redis saying it has no such function (the library was lost)."""
    return isinstance(error, redis.ResponseError) and str(error).startswith(_MISSING)


class FunctionLibrary:
    """A FUNCTION library on one Redis client: loaded on first use, reloaded once when lost."""

    def __init__(self, client: redis.Redis | RedisCluster, code: str) -> None:
        match = _NAME.match(code)
        if match is None:
            raise ValueError(f"library code must start with '#!lua name=<name>', got {code[:40]!r}")
        self.name = match.group(1)
        self.code = code
        self._redis = client
        self._loaded = False
        self.loads = 0  # FUNCTION LOADs this object sent (for tests and operators)

    @classmethod
    def shipped(cls, client: redis.Redis | RedisCluster, filename: str) -> FunctionLibrary:
        """The library in `filename`, a `.lua` file shipped in this package."""
        return cls(client, resources.files(__package__).joinpath(filename).read_text())

    def load(self, *, force: bool = False) -> None:
        """Makes sure the server has this code: FUNCTION LOAD REPLACE unless it is there
        already (or always, with `force`, when a call just found the library gone)."""
        if self._loaded and not force:
            return
        # On Cluster, FUNCTION LOAD goes to every primary (redis-py routes it so) and a
        # replica gets it by replication; the one-node check below could not see all of them.
        if force or isinstance(self._redis, RedisCluster) or self._server_code() != self.code:
            self._redis.function_load(self.code, replace=True)
            self.loads += 1
        self._loaded = True

    def call(self, function: str, keys: Sequence[str], args: Sequence[Any] = ()) -> Any:
        """FCALL `function` with `keys` and `args`; returns its reply."""
        return self.call_many([Call(function, keys, args)])[0]

    def call_many(self, calls: Iterable[Call], pipeline: Any = None) -> list[Any]:
        """FCALLs `calls` in one round trip (not a transaction); returns their replies in order.

        `pipeline` may carry commands queued before the calls: they are sent first, in the same
        round trip, and their replies lead the list. Calls that find the library gone are
        repeated once after reloading it; the first other error is raised."""
        self.load()
        batch = list(calls)
        pipe = self._redis.pipeline(transaction=False) if pipeline is None else pipeline
        lead = len(pipe)
        for call in batch:
            pipe.fcall(call.function, len(call.keys), *call.keys, *call.args)
        replies: list[Any] = pipe.execute(raise_on_error=False)
        missing = [i for i, r in enumerate(replies[lead:]) if is_missing_function(r)]
        for reply in replies:
            if isinstance(reply, Exception) and not is_missing_function(reply):
                raise reply
        if missing:
            self.load(force=True)
            retry = self._redis.pipeline(transaction=False)
            for i in missing:
                call = batch[i]
                retry.fcall(call.function, len(call.keys), *call.keys, *call.args)
            for i, reply in zip(missing, retry.execute(raise_on_error=False), strict=True):
                if isinstance(reply, Exception):
                    raise reply
                replies[lead + i] = reply
        return replies

    def _server_code(self) -> str | None:
        """The code the server has under this library's name, or None."""
        for entry in self._redis.function_list(library=self.name, withcode=True) or ():
            fields = _fields(entry)
            if fields.get("library_name") == self.name:
                code = fields.get("library_code")
                return None if code is None else str(code)
        return None


def _fields(entry: Any) -> dict[str, Any]:
    """One FUNCTION LIST entry as a dict of text fields (RESP2 answers a flat list, RESP3 a map;
    a client without decode_responses answers bytes)."""
    pairs = entry.items() if isinstance(entry, dict) else zip(entry[::2], entry[1::2], strict=True)
    return {_text(k): _text(v) for k, v in pairs}


def _text(value: Any) -> Any:
    return value.decode() if isinstance(value, bytes) else value
