"""The in-memory caller registry (`make run`, tests): lost on restart."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import replace

from allocation_engine.errors import FieldProblem, InvalidInput
from allocation_engine.ports.access import Caller


class MemoryCallers:
    """`CallerRegistry` in a dict, under one lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_id: dict[str, Caller] = {}

    def add(self, caller: Caller) -> None:
        with self._lock:
            problems = taken(caller, self._by_id.values())
            if problems:
                raise InvalidInput(problems)
            self._by_id[caller.id] = caller

    def by_token_hash(self, token_hash: str) -> Caller | None:
        if not token_hash:
            return None
        with self._lock:
            return next((c for c in self._by_id.values() if c.token_hash == token_hash), None)

    def by_subject(self, subject: str) -> Caller | None:
        if not subject:
            return None
        with self._lock:
            return next((c for c in self._by_id.values() if c.cert_subject == subject), None)

    def revoke(self, name_or_id: str) -> Caller | None:
        with self._lock:
            for caller in self._by_id.values():
                if name_or_id in (caller.id, caller.name):
                    revoked = replace(caller, revoked=True)
                    self._by_id[caller.id] = revoked
                    return revoked
        return None

    def callers(self) -> list[Caller]:
        with self._lock:
            return sorted(self._by_id.values(), key=lambda c: c.name)


def taken(caller: Caller, others: Iterable[Caller]) -> list[FieldProblem]:
    """What of `caller` another registered caller already holds (name, token, subject)."""
    problems = []
    for other in others:
        if other.name == caller.name:
            problems.append(FieldProblem("name", caller.name, "is taken"))
        if caller.token_hash and other.token_hash == caller.token_hash:
            problems.append(FieldProblem("token", "<hidden>", "is taken"))
        if caller.cert_subject and other.cert_subject == caller.cert_subject:
            problems.append(FieldProblem("cert_subject", caller.cert_subject, "is taken"))
    return problems
