"""One fingerprint for idempotency: a digest of a request's canonical encoding.

A key seen before is answered from what it did the first time only if the request is the same;
the fingerprint stored with the key is how a later call tells. It must therefore stay the same
for the same request across releases, which `repr` of a dataclass does not promise: a new field
(even one with a default) shows up in it. The canonical encoding is sorted-key JSON in which

- a dataclass becomes its class name (`@`) and its fields, leaving out every field equal to its
  default, so a field added later with a default leaves old requests' fingerprints alone;
- an enum becomes its value, a tuple, list or (sorted) set a list, a mapping an object with
  string keys, bytes their hex digits, a whole float an int (2.0 == 2); str, int, float, bool
  and None stay as they are.

Anything else is a TypeError: a fingerprint must not depend on how an object happens to print.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from enum import Enum
from typing import Any


def fingerprint(request: object) -> str:
    """The digest (32 hex digits) of `request`'s canonical encoding."""
    return hashlib.sha256(canonical_json(request).encode()).hexdigest()[:32]


def same_request(stored: str, request: object) -> bool:
    """Whether `stored` is the fingerprint of `request`, as this release computes it or as
    releases before the canonical encoding did (a digest of `repr`), so a retry of a request
    whose key was stored before the upgrade is still recognised as the same request."""
    return stored in (fingerprint(request), _repr_fingerprint(request))


def canonical_json(value: object) -> str:
    """The canonical encoding of `value` (see the module docstring) as compact JSON text."""
    return json.dumps(
        _plain(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def _plain(value: object) -> Any:
    """`value` as JSON data: dataclasses as objects without their defaulted fields."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out: dict[str, Any] = {"@": type(value).__name__}
        for f in dataclasses.fields(value):
            v = getattr(value, f.name)
            if not _is_default(f, v):
                out[f.name] = _plain(v)
        return out
    if isinstance(value, Enum):
        return _plain(value.value)
    if isinstance(value, float) and value.is_integer():
        return int(value)  # 2.0 == 2, so both encode alike
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, frozenset | set):
        return sorted((_plain(v) for v in value), key=canonical_json)
    if isinstance(value, Mapping):
        return {_key(k): _plain(v) for k, v in value.items()}
    raise TypeError(f"no canonical encoding for {type(value).__name__}: {value!r}")


def _key(key: object) -> str:
    if isinstance(key, Enum):
        key = key.value
    if not isinstance(key, str):
        raise TypeError(f"mapping keys must be strings to fingerprint, not {key!r}")
    return key


def _is_default(f: dataclasses.Field[Any], value: object) -> bool:
    if f.default is not dataclasses.MISSING:
        default = f.default
    elif f.default_factory is not dataclasses.MISSING:
        default = f.default_factory()
    else:
        return False
    # True == 1, but a flag is not a count
    return value == default and isinstance(value, bool) == isinstance(default, bool)


def _repr_fingerprint(request: object) -> str:
    """The fingerprint releases before the canonical encoding stored; read, never written."""
    return hashlib.sha256(repr(request).encode()).hexdigest()[:32]
