"""`PostalCodeTable`: the `PostalCentroids` port over the postal-code centroids shipped in
`allocation_engine/data/postal_codes/<cc>.csv[.gz]` (GeoNames data, CC BY 4.0; see the data
README and `scripts/build_postal_codes.py`). Nothing is fetched at run time.

A country's table is read on its first lookup (under a lock, once) and kept. A code is first
normalised the way its country writes it (`normalise`), then looked up exactly; when the exact code
is not in the table, the answer is the centroid of all known codes sharing the
longest prefix of it that any known code has, of at least 2 characters (`10100` -> the codes
`101..`; the mean of their unit vectors, so right across the antimeridian too); else None.

Normalisation (upper-cased, spaces and hyphens dropped first; a code of more than 16 characters,
or with anything but ASCII letters and digits left, is refused):
- digit countries (DE, FR, IT, ES, PL, CZ, SE with 5 digits; AT, CH, BE, DK, LU with 4): the
  digits, optionally after the country's own prefix (`D-80331`, `A-1010`, `CH-8001`, `L-1111`);
  a 5-digit country's code given with 4 digits has lost its leading zero (a spreadsheet's doing)
  and is padded (`1067` -> `01067`);
- NL: `1234 AB` / `1234AB` / `1234` -> `1234` (the table is keyed on the 4 digits);
- US: `02134`, `02134-1234`, `021341234` -> `02134`; 3 or 4 digits are zero-padded to 5 (`2134` ->
  `02134`, `501` -> `00501`), as spreadsheets drop the zeros of New England and Puerto Rico;
- GB: the outward code: `SW1A 1AA` / `SW1A1AA` / `SW1A` -> `SW1A`.
The build script keys the tables with this same function, so table and lookup always agree.
"""

from __future__ import annotations

import csv
import gzip
import io
import math
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

MIN_PREFIX = 2
MAX_INPUT = 16
_SEPARATORS = re.compile(r"[\s\-]+")
_ALNUM = re.compile(r"[A-Z0-9]+")
_GB_OUTWARD = re.compile(r"[A-Z]{1,2}[0-9][A-Z0-9]?")
_GB_INWARD = re.compile(r"[0-9][A-Z]{2}")
_NL = re.compile(r"([0-9]{4})(?:[A-Z]{2})?")

# Digit-only countries: their length, and the prefixes written before the digits (the country
# code itself is always accepted; the one-letter ones are the old vehicle codes, `D-80331`).
_DIGIT_COUNTRIES: Mapping[str, tuple[int, tuple[str, ...]]] = {
    "DE": (5, ("D",)),
    "FR": (5, ("F",)),
    "IT": (5, ("I",)),
    "ES": (5, ("E",)),
    "PL": (5, ()),
    "CZ": (5, ()),
    "SE": (5, ("S",)),
    "AT": (4, ("A",)),
    "CH": (4, ()),
    "BE": (4, ("B",)),
    "DK": (4, ()),
    "LU": (4, ("L",)),
}
_COUNTRY_ALIASES: Mapping[str, str] = {"UK": "GB"}


def _compact(postal_code: str) -> str | None:
    """Upper-cased without spaces and hyphens; None when too long or not letters and digits."""
    if len(postal_code) > 4 * MAX_INPUT:
        return None
    code = _SEPARATORS.sub("", postal_code.strip().upper())
    if not code or len(code) > MAX_INPUT or not _ALNUM.fullmatch(code):
        return None
    return code


def _digits(country: str, length: int, prefixes: tuple[str, ...]) -> Callable[[str], str | None]:
    allowed = sorted({country, *prefixes}, key=len, reverse=True)

    def normalise(code: str) -> str | None:
        for prefix in allowed:
            if code.startswith(prefix) and code[len(prefix) :].isdigit():
                code = code[len(prefix) :]
                break
        if not code.isdigit():
            return None
        if len(code) == length - 1 and length == 5:
            code = "0" + code
        return code if len(code) == length else None

    return normalise


def _us(code: str) -> str | None:
    if code.startswith("US") and code[2:].isdigit():
        code = code[2:]
    if not code.isdigit():
        return None
    if len(code) in (3, 4):
        return code.zfill(5)
    if len(code) in (5, 9):
        return code[:5]
    return None


def _nl(code: str) -> str | None:
    if code.startswith("NL") and _NL.fullmatch(code[2:]):
        code = code[2:]
    match = _NL.fullmatch(code)
    return match.group(1) if match else None


def _gb(code: str) -> str | None:
    if len(code) >= 5 and _GB_INWARD.fullmatch(code[-3:]):
        code = code[:-3]
    return code if _GB_OUTWARD.fullmatch(code) else None


_NORMALISERS: dict[str, Callable[[str], str | None]] = {
    country: _digits(country, length, prefixes)
    for country, (length, prefixes) in _DIGIT_COUNTRIES.items()
}
_NORMALISERS.update({"US": _us, "NL": _nl, "GB": _gb})

COUNTRIES: frozenset[str] = frozenset(_NORMALISERS)


def country_key(country: str) -> str:
    """ISO 3166-1 alpha-2, upper-cased (`uk` -> `GB`)."""
    key = country.strip().upper()
    return _COUNTRY_ALIASES.get(key, key)


def normalise(country: str, postal_code: str) -> str | None:
    """The code as the country's table keys it, or None when it cannot be one of the country's
    codes (or the country has no rule)."""
    rule = _NORMALISERS.get(country_key(country))
    code = _compact(postal_code)
    if rule is None or code is None:
        return None
    return rule(code)


def _to_degrees(x: float, y: float, z: float) -> tuple[float, float]:
    lat = math.degrees(math.atan2(z, math.hypot(x, y)))
    lon = math.degrees(math.atan2(y, x))
    return round(lat, 5), round(lon, 5)


@dataclass(frozen=True)
class _Table:
    exact: Mapping[str, tuple[float, float]]
    prefixes: Mapping[str, tuple[float, float]]

    @classmethod
    def of(cls, rows: Iterable[tuple[str, float, float]]) -> _Table:
        exact: dict[str, tuple[float, float]] = {}
        for code, lat, lon in rows:
            exact[code] = (lat, lon)
        # Prefix centroids are means of unit vectors, not of degrees, so that a prefix holding
        # codes on both sides of the antimeridian (US 968..: Hawaii and Wake Island) is right.
        sums: dict[str, list[float]] = {}
        for code, (lat, lon) in exact.items():
            phi, lam = math.radians(lat), math.radians(lon)
            x, y, z = math.cos(phi) * math.cos(lam), math.cos(phi) * math.sin(lam), math.sin(phi)
            for end in range(MIN_PREFIX, len(code) + 1):
                acc = sums.setdefault(code[:end], [0.0, 0.0, 0.0])
                acc[0] += x
                acc[1] += y
                acc[2] += z
        prefixes = {prefix: _to_degrees(*acc) for prefix, acc in sums.items()}
        return cls(exact, prefixes)

    def locate(self, code: str) -> tuple[float, float] | None:
        found = self.exact.get(code)
        if found is not None:
            return found
        for end in range(len(code), MIN_PREFIX - 1, -1):
            found = self.prefixes.get(code[:end])
            if found is not None:
                return found
        return None


def _default_directory() -> Traversable:
    return resources.files("allocation_engine").joinpath("data", "postal_codes")


class PostalCodeTable:
    """Postal-code centroids from the shipped tables (or from `directory`, for tests): see the
    module docstring for the normalisation and the prefix fallback. Thread-safe."""

    def __init__(self, directory: Path | Traversable | None = None) -> None:
        self._directory = directory if directory is not None else _default_directory()
        self._tables: dict[str, _Table | None] = {}
        self._lock = threading.Lock()

    def locate(self, country: str, postal_code: str) -> tuple[float, float] | None:
        """(latitude, longitude) of the code's centroid, or of its longest known prefix's (at
        least 2 characters); None for an unknown country or a code that cannot be read."""
        cc = country_key(country)
        code = normalise(cc, postal_code)
        if code is None:
            return None
        table = self._table(cc)
        return table.locate(code) if table is not None else None

    def countries(self) -> frozenset[str]:
        """The countries with a rule and a shipped table."""
        return frozenset(cc for cc in COUNTRIES if self._file(cc) is not None)

    def _table(self, cc: str) -> _Table | None:
        if cc in self._tables:
            return self._tables[cc]
        with self._lock:
            if cc not in self._tables:
                self._tables[cc] = self._load(cc)
            return self._tables[cc]

    def _file(self, cc: str) -> Traversable | None:
        for name in (f"{cc.lower()}.csv.gz", f"{cc.lower()}.csv"):
            candidate = self._directory.joinpath(name)
            if candidate.is_file():
                return candidate
        return None

    def _load(self, cc: str) -> _Table | None:
        source = self._file(cc)
        if source is None:
            return None
        raw = source.read_bytes()
        if source.name.endswith(".gz"):
            raw = gzip.decompress(raw)
        reader = csv.DictReader(io.StringIO(raw.decode("utf-8")))
        return _Table.of(
            (row["postal_code"], float(row["latitude"]), float(row["longitude"])) for row in reader
        )
