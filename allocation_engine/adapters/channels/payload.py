"""Typed fields out of a platform's JSON, for the adapters that read order payloads.

Platform JSON is read defensively: an optional part may be absent or null, a required one may
be of the wrong type, and an order is refused with every unreadable field named at once
(`InvalidInput` with the field's dotted path and its value quoted), never with a KeyError or
TypeError from deep inside. `Reader` collects those problems for the adapters that read a whole
order through it (eBay, AliExpress); the small functions are the pieces the other adapters
share: a webhook's JSON body, an optional object, a value down a path, a person's name from
its two fields, a country code, a postal code, a count, a timestamp.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, TypeGuard

from allocation_engine.adapters.channels.money import minor_units
from allocation_engine.errors import InvalidInput, ProblemCollector


def json_body(body: bytes) -> Any:
    """A webhook's body as JSON; `InvalidInput` quoting its start when it is not JSON."""
    try:
        return json.loads(body)
    except ValueError:
        raise InvalidInput.one("body", body[:80], "is not JSON") from None


def json_field(body: bytes, *path: str) -> str:
    """The value at `path` in a JSON body as a string, "" when the body is not JSON or has
    nothing there (a delivery id, read whatever the body turns out to be)."""
    try:
        return str(dig(json.loads(body), *path) or "")
    except ValueError:
        return ""


def obj(value: object) -> Mapping[str, Any]:
    """`value` when it is a JSON object, else an empty one (an absent optional part)."""
    return value if isinstance(value, Mapping) else {}


def dig(value: Any, *path: str | int) -> Any:
    """The value at `path` inside nested objects and lists, None where any step is missing."""
    for step in path:
        if isinstance(step, int):
            value = value[step] if isinstance(value, list) and len(value) > step else None
        else:
            value = value.get(step) if isinstance(value, Mapping) else None
    return value


def full_name(person: Mapping[str, Any], first: str, last: str) -> str:
    """A person's name from the fields `first` and `last` (either may be absent), trimmed."""
    parts = (str(person.get(key) or "").strip() for key in (first, last))
    return " ".join(part for part in parts if part)


def country_code(value: object, field: str, problems: ProblemCollector) -> str:
    """`value` as an ISO 3166-1 alpha-2 code, upper-cased; "" and a problem named `field`
    when it is not a two-character string."""
    if isinstance(value, str) and len(value) == 2:
        return value.upper()
    problems.add(field, value, "expected an ISO 3166-1 alpha-2 code")
    return ""


def postal_code(value: object, field: str, problems: ProblemCollector) -> str:
    """`value` trimmed as a postal code; "" and a problem named `field` when it is not a
    non-empty string (a parcel cannot be routed, nor the ship-to geocoded, without one)."""
    if isinstance(value, str) and value.strip():
        return value.strip()
    problems.add(field, value, "expected a postal code")
    return ""


def is_whole(value: object, minimum: int = 1) -> TypeGuard[int]:
    """Whether `value` is a JSON whole number (not a bool) of at least `minimum`."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


def utc_time(text: str) -> datetime:
    """An ISO 8601 time (`Z`, an offset, or none, which is UTC) as an aware UTC datetime;
    ValueError when it is none."""
    moment = datetime.fromisoformat(text.strip())
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


class Reader:
    """Reads a platform payload field by field, collecting every problem (dotted path, value
    quoted) for one `InvalidInput` at the end."""

    def __init__(self) -> None:
        self.problems = ProblemCollector()

    def obj(self, value: object, path: str, required: bool = True) -> Mapping[str, Any]:
        if isinstance(value, Mapping):
            return value
        if value is not None or required:
            self.problems.add(path, value, "expected an object")
        return {}

    def items(self, value: object, path: str) -> list[Any]:
        if isinstance(value, list) and value:
            return value
        self.problems.add(path, value, "expected a non-empty list")
        return []

    def text(self, parent: Mapping[str, Any], key: str, path: str, required: bool = True) -> str:
        value = parent.get(key)
        if isinstance(value, str | int) and not isinstance(value, bool) and str(value).strip():
            return str(value).strip()
        if value is not None or required:
            self.problems.add(f"{path}.{key}", value, "expected a non-empty string")
        return ""

    def quantity(self, parent: Mapping[str, Any], key: str, path: str) -> int:
        value = parent.get(key)
        if is_whole(value):
            return value
        self.problems.add(f"{path}.{key}", value, "expected a positive whole number")
        return 1

    def money(self, amount: object, currency: str, path: str) -> int:
        try:
            return minor_units(amount, currency, path)  # type: ignore[arg-type]
        except InvalidInput as bad:
            self.problems.extend(bad.problems)
            return 0

    def country(self, parent: Mapping[str, Any], key: str, path: str) -> str:
        code = self.text(parent, key, path).upper()
        if code and not re.fullmatch(r"[A-Z]{2}", code):
            self.problems.add(f"{path}.{key}", parent.get(key), "expected an ISO 3166-1 code")
        return code

    def done(self) -> None:
        self.problems.raise_if_any()
