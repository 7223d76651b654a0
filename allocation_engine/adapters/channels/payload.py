"""Typed fields out of a platform's JSON, for the adapters that read order payloads.

Platform JSON is read defensively: an optional part may be absent or null, a required one may
be of the wrong type, and an order is refused with every unreadable field named at once
(`InvalidInput` with the field's dotted path and its value quoted), never with a KeyError or
TypeError from deep inside. `Reader` collects those problems for the adapters that read a whole
order through it (eBay, AliExpress); the small functions are the pieces the other adapters
share: a webhook's JSON body, an optional object, a value down a path, a person's name from
its two fields, a country code, a postal code, a count, a timestamp, and a platform API's
answer (`api_json`, `api_object`, `api_list`: `PeerUnavailable` naming what could not be read
when the platform answers an HTML page, `[]` or `null` where an object belongs). A string that
cannot be written as UTF-8 (a lone surrogate, which the store could not write) is refused with
`InvalidInput` naming its field, in a webhook's body and an API answer alike.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, TypeGuard

import httpx

from allocation_engine.adapters.channels.money import minor_units
from allocation_engine.errors import InvalidInput, PeerUnavailable, ProblemCollector


def unencodable(value: Any) -> str | None:
    """The dotted path of the first string (a key or a value) in parsed JSON that cannot be
    written as UTF-8 (a lone surrogate such as "\\ud800"), None when there is none."""
    stack: list[tuple[str, Any]] = [("", value)]
    while stack:
        path, node = stack.pop()
        if isinstance(node, str):
            if not _utf8(node):
                return path
        elif isinstance(node, Mapping):
            for key, child in node.items():
                where = f"{path}.{key}" if path else str(key)
                if isinstance(key, str) and not _utf8(key):
                    return path or "body"
                stack.append((where, child))
        elif isinstance(node, list):
            stack.extend((f"{path}[{i}]", child) for i, child in enumerate(node))
    return None


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def utf8_text(value: str, field: str) -> str:
    """`value` when it can be written as UTF-8; `InvalidInput` naming `field` when not."""
    if not _utf8(value):
        raise InvalidInput.one(field, value, "is not valid UTF-8 text (a lone surrogate)")
    return value


def json_body(body: bytes) -> Any:
    """A webhook's body as JSON; `InvalidInput` quoting its start when it is not JSON (or
    nests too deep to read), naming the field of a string that is not valid UTF-8."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        raise InvalidInput.one("body", body[:80], "is not JSON") from None
    _refuse_unencodable(data)
    return data


def _refuse_unencodable(data: Any) -> None:
    bad = unencodable(data)
    if bad is not None:
        raise InvalidInput.one(bad or "body", dig(data, *_steps(bad)), "is not valid UTF-8 text")


def api_json(response: httpx.Response, what: str) -> Any:
    """A platform API's answer as JSON; `PeerUnavailable` naming `what` when the platform
    answered something else (an HTML error page with 200, a truncated body: the platform
    misbehaves, a later try may read it), `InvalidInput` naming the field of a string that is
    not valid UTF-8 (a lone surrogate: no store could write it)."""
    try:
        data = json.loads(response.content) if response.content else None
    except (ValueError, RecursionError):
        raise PeerUnavailable(f"{response.request.url}: {what} is not JSON") from None
    _refuse_unencodable(data)
    return data


def api_object(response: httpx.Response, what: str) -> Mapping[str, Any]:
    """`api_json` that must be a JSON object; `PeerUnavailable` naming `what` when not."""
    data = api_json(response, what)
    if not isinstance(data, Mapping):
        raise PeerUnavailable(
            f"{response.request.url}: {what} is {type(data).__name__}, not an object"
        )
    return data


def api_list(value: object, where: str, what: str) -> list[Any]:
    """`value` when it is a JSON list, [] when absent; `PeerUnavailable` naming `what` for
    anything else."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise PeerUnavailable(f"{where}: {what} is {type(value).__name__}, not a list")
    return value


def _steps(path: str) -> list[str | int]:
    steps: list[str | int] = []
    for part in re.findall(r"[^.\[\]]+|\[\d+\]", path):
        steps.append(int(part[1:-1]) if part.startswith("[") else part)
    return steps


def json_field(body: bytes, *path: str) -> str:
    """The value at `path` in a JSON body as a string, "" when the body is not JSON (or nests
    too deep to read) or has nothing there (a delivery id, read whatever the body is)."""
    try:
        value = str(dig(json.loads(body), *path) or "")
    except (ValueError, RecursionError):
        return ""
    return value if _utf8(value) else ""


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


def is_seconds(value: object) -> TypeGuard[int | float]:
    """Whether `value` is a finite, non-negative JSON number of seconds (not a bool)."""
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and 0 <= value < 10**9  # an expires_in beyond 30 years is no lifetime
    )


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
        if isinstance(value, str) and not _utf8(value):
            self.problems.add(f"{path}.{key}", value, "is not valid UTF-8 text")
            return ""
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
