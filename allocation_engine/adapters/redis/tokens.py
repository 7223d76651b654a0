"""The caller registry in Redis: one JSON value per caller and an index key per name, token
hash and certificate subject, all tagged `{auth}` so they share one Cluster slot (a registration
is one script over them).

Keys: `{auth}:caller:<id>` (the caller as JSON, the token's SHA-256 only), `{auth}:name:<name>`,
`{auth}:token:<sha256>`, `{auth}:subject:<subject>` (each -> id), `{auth}:callers` (the set of
ids). The raw token is never written.
"""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from typing import Any

from allocation_engine.adapters.redis.connection import open_client
from allocation_engine.errors import FieldProblem, InvalidInput
from allocation_engine.ports.access import Caller

PREFIX = "{auth}:"

_ADD = """
-- KEYS: caller, name, token, subject, callers; ARGV: id, json, the key name of a blank
-- returns 0 when added, else the 1-based index of the first index key already taken
for i = 2, 4 do
  if KEYS[i] ~= ARGV[3] and redis.call('EXISTS', KEYS[i]) == 1 then return i end
end
for i = 2, 4 do
  if KEYS[i] ~= ARGV[3] then redis.call('SET', KEYS[i], ARGV[1]) end
end
redis.call('SET', KEYS[1], ARGV[2])
redis.call('SADD', KEYS[5], ARGV[1])
return 0
"""

_TAKEN = {2: "name", 3: "token", 4: "cert_subject"}


def _dump(caller: Caller) -> str:
    data = asdict(caller)
    data["scopes"] = sorted(caller.scopes)
    return json.dumps(data)


def _load(raw: bytes | str) -> Caller:
    data = json.loads(raw)
    data["scopes"] = frozenset(data["scopes"])
    data["channels"] = tuple(data["channels"])
    data["nodes"] = tuple(data["nodes"])
    return Caller(**data)


class RedisCallers:
    """`CallerRegistry` over a redis.Redis or redis.RedisCluster client."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._add = client.register_script(_ADD)

    @classmethod
    def from_url(cls, url: str) -> RedisCallers:
        return cls(open_client(url))

    def add(self, caller: Caller) -> None:
        keys = [
            f"{PREFIX}caller:{caller.id}",
            f"{PREFIX}name:{caller.name}",
            f"{PREFIX}token:{caller.token_hash}" if caller.token_hash else "",
            f"{PREFIX}subject:{caller.cert_subject}" if caller.cert_subject else "",
            f"{PREFIX}callers",
        ]
        # an empty key name would not hash to the {auth} slot in Cluster: tag the blanks too
        blank = f"{PREFIX}none"
        keys = [k or blank for k in keys]
        clash = int(self._add(keys=keys, args=[caller.id, _dump(caller), blank]))
        if clash:
            value = {"name": caller.name, "token": "<hidden>"}.get(
                _TAKEN[clash], caller.cert_subject
            )
            raise InvalidInput([FieldProblem(_TAKEN[clash], value, "is taken")])

    def _by_index(self, key: str) -> Caller | None:
        caller_id = self._client.get(key)
        if caller_id is None:
            return None
        raw = self._client.get(f"{PREFIX}caller:{text_of(caller_id)}")
        return None if raw is None else _load(raw)

    def by_token_hash(self, token_hash: str) -> Caller | None:
        return self._by_index(f"{PREFIX}token:{token_hash}") if token_hash else None

    def by_subject(self, subject: str) -> Caller | None:
        return self._by_index(f"{PREFIX}subject:{subject}") if subject else None

    def revoke(self, name_or_id: str) -> Caller | None:
        raw = self._client.get(f"{PREFIX}caller:{name_or_id}")
        caller = _load(raw) if raw is not None else self._by_index(f"{PREFIX}name:{name_or_id}")
        if caller is None:
            return None
        revoked = replace(caller, revoked=True)
        self._client.set(f"{PREFIX}caller:{caller.id}", _dump(revoked))
        return revoked

    def callers(self) -> list[Caller]:
        ids = sorted(text_of(i) for i in self._client.smembers(f"{PREFIX}callers"))
        found = [self._client.get(f"{PREFIX}caller:{i}") for i in ids]
        return sorted((_load(raw) for raw in found if raw is not None), key=lambda c: c.name)


def text_of(value: bytes | str) -> str:
    """A reply as text (clients opened by `open_client` decode; a raw client passed in may not)."""
    return value.decode() if isinstance(value, bytes) else value
