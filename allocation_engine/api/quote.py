"""Short, ASCII-only renderings of what a caller sent, for status messages and error details.

A status message and its details travel in the response trailers, which a client refuses past a
few kilobytes (8 KiB by default), and non-ASCII bytes are percent-encoded there (three bytes
each). So nothing of the caller's input goes back whole: `quote` shows at most `QUOTE_CHARS` of a
value with an ellipsis and its length, and `cut` bounds any other text.
"""

from __future__ import annotations

import reprlib

QUOTE_CHARS = 80
"""Most characters of a value a message quotes."""

_REPR = reprlib.Repr()
_REPR.maxlevel = 2
_REPR.maxstring = QUOTE_CHARS
_REPR.maxother = QUOTE_CHARS
_REPR.maxlong = 40
for _name in ("maxtuple", "maxlist", "maxarray", "maxdict", "maxset", "maxfrozenset", "maxdeque"):
    setattr(_REPR, _name, 4)


def quote(value: object) -> str:
    """`value` as a short ASCII literal: a long string is its first `QUOTE_CHARS` characters,
    "..." and its length (`'xxxx'... (1048576 chars)`)."""
    if isinstance(value, str | bytes):
        text = ascii(value[:QUOTE_CHARS])
        if len(value) <= QUOTE_CHARS and len(text) <= QUOTE_CHARS + 3:
            return text
        unit = "chars" if isinstance(value, str) else "bytes"
        return f"{text[: QUOTE_CHARS + 1]}... ({len(value)} {unit})"
    try:
        text = _REPR.repr(value)
    except Exception:  # a value whose repr fails says so rather than failing the answer
        text = f"<{type(value).__name__}>"
    return cut(text, QUOTE_CHARS + 20)


def cut(text: str, most: int) -> str:
    """`text` in ASCII (other characters escaped), at most `most` characters ("..." at the end
    when cut)."""
    safe = text.encode("ascii", "backslashreplace").decode("ascii")
    return safe if len(safe) <= most else safe[: most - 3] + "..."
