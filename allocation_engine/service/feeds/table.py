"""Reading a feed file: a CSV table streamed row by row, hashed as it is read, every bad value
named by its line and column.

A feed file comes from another system (an ERP export, a 3PL manifest), so nothing about it is
trusted: a UTF-8 byte order mark is dropped, CRLF and LF lines both read, a byte sequence that is
not UTF-8, a NUL byte, a line longer than `MAX_LINE_BYTES` or a row with more or fewer fields than
the header refuses the file with the line it is on. Rows are read lazily (a file of millions of
rows never sits in memory) and every byte read goes into the caller's SHA-256, the file's
idempotency key. Problems are collected up to `MAX_PROBLEMS`, so one report lists what to fix.
"""

from __future__ import annotations

import codecs
import csv
import datetime
import hashlib
import json
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

from allocation_engine.engine.limits import MAX_ID_CHARS, MAX_TEXT_CHARS
from allocation_engine.errors import FieldProblem, InvalidInput, ProblemCollector

MAX_LINE_BYTES = 64 * 1024
"""Longest line a feed file may hold (a position is a few dozen bytes)."""

MAX_PROBLEMS = 100
"""Most problems collected from one file before reading stops."""

QUOTE_CHARS = 80
"""Most characters of a bad value an error quotes."""

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_INTEGER = re.compile(r"[+-]?[0-9]+")
_MAX_DIGITS = 19  # past this a number is out of every range, and int() is not asked to parse it


def describe(problem: FieldProblem) -> str:
    """One problem as a person reads it: `line 7, field on_hand: "-3" must be an integer >= 0`."""
    value = problem.value
    if isinstance(value, str):
        shown = json.dumps(value[:QUOTE_CHARS]) + ("..." if len(value) > QUOTE_CHARS else "")
    else:
        shown = json.dumps(value)
    return f"{problem.field}: {shown} {problem.problem}"


def explain(refused: InvalidInput) -> str:
    """Every problem of a refused file, one per line."""
    return "\n".join(describe(p) for p in refused.problems)


def where(line: int, column: str | None = None) -> str:
    """The field name a problem carries: `line 7, field on_hand` (or `line 7`)."""
    return f"line {line}" if column is None else f"line {line}, field {column}"


class FileProblems(ProblemCollector):
    """The problems of one file, each at a line and a column, with the readers of typed values.
    Each reader returns None (and notes a problem) when the text does not hold its type."""

    @property
    def full(self) -> bool:
        return len(self.problems) >= MAX_PROBLEMS

    def at(self, line: int, column: str | None, value: object, problem: str) -> None:
        self.add(where(line, column), value, problem)

    def ident(self, line: int, column: str, text: str) -> str | None:
        """A required id: 1..MAX_ID_CHARS characters, no control characters."""
        text = text.strip()
        if not text:
            self.at(line, column, text, "is required")
        elif len(text) > MAX_ID_CHARS or _CONTROL.search(text):
            self.at(
                line,
                column,
                text,
                f"must be at most {MAX_ID_CHARS} characters without control characters",
            )
        else:
            return text
        return None

    def text(self, line: int, column: str, text: str) -> str | None:
        """A required free text: 1..MAX_TEXT_CHARS characters, no control characters."""
        text = text.strip()
        if not text:
            self.at(line, column, text, "is required")
        elif len(text) > MAX_TEXT_CHARS or _CONTROL.search(text):
            self.at(
                line,
                column,
                text,
                f"must be at most {MAX_TEXT_CHARS} characters without control characters",
            )
        else:
            return text
        return None

    def integer(self, line: int, column: str, text: str, low: int, high: int) -> int | None:
        """A whole number within low..high; the problem says which bound it broke."""
        text = text.strip()
        digits = text.lstrip("+-")
        if not _INTEGER.fullmatch(text):
            self.at(line, column, text, "must be an integer")
            return None
        number = (
            int(text) if len(digits) <= _MAX_DIGITS else (high + 1 if text[0] != "-" else low - 1)
        )
        if number < low:
            self.at(line, column, text, f"must be an integer >= {low}")
        elif number > high:
            self.at(line, column, text, f"must be an integer <= {high}")
        else:
            return number
        return None

    def date(self, line: int, column: str, text: str) -> datetime.date | None:
        """A calendar date written YYYY-MM-DD."""
        text = text.strip()
        try:
            if len(text) == 10:
                return datetime.date.fromisoformat(text)
        except ValueError:
            pass
        self.at(line, column, text, "must be a date written YYYY-MM-DD")
        return None


def header_of(path: Path) -> tuple[str, ...]:
    """The column names of a feed file (lower case, trimmed), to tell which kind of feed it is."""
    for _, fields in _records(path, hashlib.sha256()):
        return tuple(f.strip().lower() for f in fields)
    raise InvalidInput.one("file", path.name, "is empty: a header line is required")


def read_rows(
    path: Path,
    digest: hashlib._Hash,
    required: Sequence[str],
    optional: Sequence[str] = (),
    problems: FileProblems | None = None,
) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, column -> text) of every row after the header, lazily; blank lines are
    skipped. A header naming a column outside `required` + `optional`, missing a required one,
    or a row of another width refuses the file at once (`problems` collects row widths)."""
    records = _records(path, digest)
    first = next(records, None)
    if first is None:
        raise InvalidInput.one("file", path.name, "is empty: a header line is required")
    header = [f.strip().lower() for f in first[1]]
    missing = [c for c in required if c not in header]
    unknown = [c for c in header if c not in required and c not in optional]
    if missing or unknown or len(set(header)) != len(header):
        expected = ",".join(required) + "".join(f"[,{c}]" for c in optional)
        raise InvalidInput.one(where(1, "header"), ",".join(header), f"must be {expected}")
    for line, fields in records:
        if not any(f.strip() for f in fields):
            continue
        if len(fields) != len(header):
            note = problems if problems is not None else FileProblems()
            note.at(
                line, None, ",".join(fields), f"has {len(fields)} fields, the header {len(header)}"
            )
            if problems is None:
                note.raise_if_any()
            continue
        yield line, dict(zip(header, fields, strict=True))


def _records(path: Path, digest: hashlib._Hash) -> Iterator[tuple[int, list[str]]]:
    """The CSV records of a file with the line each ends on; bytes go into `digest`."""
    with path.open("rb") as handle:
        number = 0

        def lines() -> Iterator[str]:
            nonlocal number
            while raw := handle.readline(MAX_LINE_BYTES + 1):
                number += 1
                digest.update(raw)
                if len(raw) > MAX_LINE_BYTES:
                    raise InvalidInput.one(
                        where(number), f"{len(raw)}+ bytes", f"is longer than {MAX_LINE_BYTES}"
                    )
                if number == 1 and raw.startswith(codecs.BOM_UTF8):
                    raw = raw[len(codecs.BOM_UTF8) :]
                try:
                    yield raw.decode("utf-8")
                except UnicodeDecodeError as error:
                    raise InvalidInput.one(
                        where(number), raw[error.start : error.start + 8].hex(), "is not UTF-8"
                    ) from None

        reader = csv.reader(lines(), strict=True)
        try:
            for fields in reader:
                yield number, fields
        except csv.Error as error:
            raise InvalidInput.one(where(number), "", f"is not valid CSV: {error}") from None
