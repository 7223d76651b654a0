"""Wrong-shaped platform JSON for the adapters' fuzz-style tests: every field of a sample
answer or payload replaced, one at a time, by each of a handful of values of the wrong type,
and the only errors allowed out are the typed ones (`InvalidInput`, `PeerUnavailable`,
`PeerRefused`), never a TypeError, KeyError, AttributeError or ValueError from inside."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Iterator
from typing import Any

from allocation_engine.errors import InvalidInput, PeerRefused, PeerUnavailable
from allocation_engine.testing.http_peer import Answer, HttpPeer, PeerRequest

WRONG: tuple[Any, ...] = (None, 5, True, [], {}, "x", "\ud800")
"""The values each field is replaced with: null, a number, a bool, a list, an object, a
string, and a string that is no UTF-8 text (a lone surrogate)."""

TYPED = (InvalidInput, PeerUnavailable, PeerRefused)

Path = tuple[str | int, ...]


def paths(value: Any, at: Path = ()) -> Iterator[Path]:
    """Every place in `value`: itself, then each key of its objects and index of its lists."""
    yield at
    if isinstance(value, dict):
        for key, child in value.items():
            yield from paths(child, (*at, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from paths(child, (*at, index))


def replaced(value: Any, at: Path, new: Any) -> Any:
    """A deep copy of `value` with the place `at` holding `new`."""
    if not at:
        return copy.deepcopy(new)
    doc = copy.deepcopy(value)
    node = doc
    for step in at[:-1]:
        node = node[step]
    node[at[-1]] = copy.deepcopy(new)
    return doc


def untyped_errors(sample: Any, read: Callable[[Any], object]) -> list[str]:
    """`read` fed `sample` with each place replaced by each `WRONG` value; every error that
    came out untyped, as "<place> = <value>: <error>" (empty when there were none)."""
    found = []
    for at in paths(sample):
        for wrong in WRONG:
            try:
                read(replaced(sample, at, wrong))
            except TYPED:
                pass
            except Exception as error:
                found.append(f"{at} = {wrong!r}: {type(error).__name__}: {error}")
    return found


class Rewrites:
    """Makes a peer answer chosen requests with a chosen body (200) instead of its own:
    `answer(path, body, form, method=..., status=...)`, `path` a regex on the request path and
    `form` one on its body; the peer still handles the request first (so a rewritten 503 is
    an answer lost after the platform acted). `last(path)` is the peer's own JSON answer to
    the latest request on `path`."""

    def __init__(self, peer: HttpPeer) -> None:
        self._dispatch = peer._dispatch
        self._rules: list[tuple[str, str, str, int, Any]] = []
        self._seen: list[tuple[PeerRequest, Any]] = []
        peer._dispatch = self._serve  # type: ignore[method-assign]

    def answer(
        self, path: str, body: Any, form: str = "", *, method: str = "", status: int = 200
    ) -> None:
        self._rules = [r for r in self._rules if r[:3] != (path, form, method)]
        self._rules.append((path, form, method, status, body))

    def clear(self) -> None:
        self._rules = []

    def last(self, path: str, form: str = "") -> Any:
        return next(
            body
            for request, body in reversed(self._seen)
            if re.search(path, request.path) and re.search(form, request.body.decode())
        )

    def _serve(self, request: PeerRequest) -> Answer:
        answer = self._dispatch(request)
        self._seen.append((request, answer[1]))
        for path, form, method, status, body in self._rules:
            if method and method != request.method:
                continue
            if re.search(path, request.path) and re.search(form, request.body.decode()):
                raw = body if isinstance(body, bytes) else json.dumps(body).encode()
                return status, raw
        return answer
