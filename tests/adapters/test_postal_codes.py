"""Postal-code centroids: known codes land in their city, codes are read the way each country
writes them, an unknown code falls back to its longest known prefix, and anything else is None
without raising."""

from __future__ import annotations

import math
import threading
import time
from pathlib import Path

import pytest

from allocation_engine.adapters.geo import postal_codes
from allocation_engine.adapters.geo.postal_codes import PostalCodeTable, normalise
from allocation_engine.ports.channels import PostalCentroids

TABLE = PostalCodeTable()


def km(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle distance in km (haversine on a sphere of 6371 km)."""
    (lat1, lon1), (lat2, lon2) = (tuple(map(math.radians, p)) for p in (a, b))
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * 6371.0 * math.asin(math.sqrt(h))


def write_table(folder: Path, country: str, rows: list[tuple[str, float, float]]) -> None:
    lines = ["postal_code,latitude,longitude", *(f"{c},{lat},{lon}" for c, lat, lon in rows)]
    (folder / f"{country.lower()}.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_the_table_is_a_postal_centroids_port() -> None:
    """Given the shipped table, when typed as the channel port, then it is one (structurally)
    and it has at least DE, AT, NL and US."""
    port: PostalCentroids = TABLE
    assert port.locate("DE", "10115") is not None
    assert {"DE", "AT", "NL", "US"} <= TABLE.countries()


@pytest.mark.parametrize(
    ("country", "code", "city", "where"),
    [
        ("DE", "10115", "Berlin Mitte", (52.532, 13.385)),
        ("DE", "80331", "München Altstadt", (48.137, 11.575)),
        ("DE", "01067", "Dresden", (51.052, 13.731)),
        ("AT", "1010", "Wien Innere Stadt", (48.208, 16.373)),
        ("NL", "1012 AB", "Amsterdam centrum", (52.373, 4.893)),
        ("US", "10001", "New York (Chelsea)", (40.750, -73.997)),
        ("US", "90210", "Beverly Hills", (34.090, -118.406)),
        ("CH", "8001", "Zürich", (47.372, 8.542)),
        ("BE", "1000", "Bruxelles", (50.847, 4.352)),
        ("FR", "75001", "Paris", (48.863, 2.336)),
        ("PL", "00-002", "Warszawa", (52.232, 21.012)),
        ("GB", "SW1A 1AA", "Westminster", (51.501, -0.142)),
    ],
)
def test_a_known_code_lands_in_its_city(
    country: str, code: str, city: str, where: tuple[float, float]
) -> None:
    """Given a postal code of a well-known place, when located, then the centroid is within
    5 km of that place."""
    found = TABLE.locate(country, code)
    assert found is not None, city
    assert km(found, where) < 5.0, (city, found)


@pytest.mark.parametrize(
    ("country", "written", "key"),
    [
        ("DE", "10115", "10115"),
        ("DE", " 10115 ", "10115"),
        ("DE", "D-10115", "10115"),
        ("DE", "de 10115", "10115"),
        ("DE", "01067", "01067"),
        ("DE", "1067", "01067"),
        ("AT", "1010", "1010"),
        ("AT", "A-1010", "1010"),
        ("NL", "1012 AB", "1012"),
        ("NL", "1012AB", "1012"),
        ("NL", "1012 ab", "1012"),
        ("NL", "1012", "1012"),
        ("US", "02134", "02134"),
        ("US", "02134-1234", "02134"),
        ("US", "021341234", "02134"),
        ("US", "2134", "02134"),
        ("US", "501", "00501"),
        ("CH", "CH-8001", "8001"),
        ("LU", "L-1111", "1111"),
        ("PL", "00-002", "00002"),
        ("SE", "111 20", "11120"),
        ("GB", "SW1A 1AA", "SW1A"),
        ("GB", "sw1a1aa", "SW1A"),
        ("GB", "SW1A", "SW1A"),
        ("GB", "M1 1AE", "M1"),
        ("uk", "EC1A 1BB", "EC1A"),
        ("gb", "w1a 0ax", "W1A"),
    ],
)
def test_codes_are_read_the_way_their_country_writes_them(
    country: str, written: str, key: str
) -> None:
    """Given a code written with spaces, hyphens, a country prefix, lower case, a lost leading
    zero or a ZIP+4, when normalised, then it is the table's key."""
    assert normalise(country, written) == key


@pytest.mark.parametrize(
    ("country", "variant", "canonical"),
    [
        ("de", " D-10115", "10115"),
        ("DE", "1067", "01067"),
        ("nl", "1012ab", "1012 AB"),
        ("US", "10001-1234", "10001"),
        ("US", "2134", "02134"),
        ("uk", "sw1a1aa", "SW1A 1AA"),
        ("At", "A-1010", "1010"),
    ],
)
def test_variants_of_a_code_locate_the_same_centroid(
    country: str, variant: str, canonical: str
) -> None:
    """Given the same code written two ways (and the country in any case), when both are
    located, then they give the same coordinates."""
    assert TABLE.locate(country, variant) == TABLE.locate(country.upper(), canonical)
    assert TABLE.locate(country, variant) is not None


@pytest.mark.parametrize(
    ("country", "code"),
    [
        ("DE", "123456"),
        ("DE", "123"),
        ("DE", "1011A"),
        ("AT", "10100"),
        ("NL", "1012 ABC"),
        ("NL", "AB 1012"),
        ("US", "1234567"),
        ("GB", "1AA"),
        ("GB", "SW1A 1AA X"),
        ("XX", "10115"),
    ],
)
def test_a_code_that_cannot_be_one_of_the_countrys_is_refused(country: str, code: str) -> None:
    """Given a code of the wrong length or shape for its country, when normalised, then None."""
    assert normalise(country, code) is None


def test_an_unknown_code_falls_back_to_its_longest_known_prefix(tmp_path: Path) -> None:
    """Given a table of 12340, 12341 and 12500, when 12349 is located, then it is the centroid
    of the 1234x codes; 12999 the centroid of all three (prefix 12); 99999 shares no prefix of
    2 characters with any code and is None; a known code is exact."""
    write_table(
        tmp_path, "DE", [("12340", 10.0, 10.0), ("12341", 10.0, 12.0), ("12500", 13.0, 11.0)]
    )
    table = PostalCodeTable(tmp_path)
    assert table.locate("DE", "12341") == (10.0, 12.0)
    four = table.locate("DE", "12349")
    assert four is not None and km(four, (10.0, 11.0)) < 1.0
    two = table.locate("DE", "12999")
    assert two is not None and km(two, (11.0, 11.0)) < 2.0
    assert table.locate("DE", "99999") is None
    assert table.locate("DE", "13000") is None  # "1" alone is too short a prefix


def test_a_prefix_across_the_antimeridian_is_averaged_on_the_sphere(tmp_path: Path) -> None:
    """Given two codes at longitude 170 and -170 on one prefix, when a sibling code is located,
    then the centroid is near longitude 180, not 0."""
    write_table(tmp_path, "US", [("96801", 20.0, 170.0), ("96802", 20.0, -170.0)])
    found = PostalCodeTable(tmp_path).locate("US", "96809")
    assert found is not None and abs(abs(found[1]) - 180.0) < 0.01


def test_an_unknown_berlin_code_falls_back_into_berlin() -> None:
    """Given 10100 (no such code; 101xx is Berlin Mitte), when located, then the centroid of
    the 101xx codes, within 5 km of Berlin's centre."""
    assert postal_codes.normalise("DE", "10100") == "10100"
    found = TABLE.locate("DE", "10100")
    assert found is not None and km(found, (52.52, 13.40)) < 5.0


def test_french_cedex_falls_back_to_its_prefix() -> None:
    """Given a CEDEX code (left out of the table), when located by its 5 digits, then the
    prefix fallback puts it in its département (Ain, around Bourg-en-Bresse)."""
    found = TABLE.locate("FR", "01001")
    assert found is not None and km(found, (46.2, 5.22)) < 40.0


@pytest.mark.parametrize("country", ["XX", "", "DEU", "Germany", "  ", "D", "ZZ"])
def test_an_unknown_country_is_none(country: str) -> None:
    """Given a country the table has no rule for, when a code is located, then None."""
    assert TABLE.locate(country, "10115") is None


def test_a_country_without_a_file_is_none(tmp_path: Path) -> None:
    """Given a folder with no tables, when a well-formed code is located, then None (and the
    missing file is remembered rather than looked for again and again)."""
    table = PostalCodeTable(tmp_path)
    assert table.locate("DE", "10115") is None
    write_table(tmp_path, "DE", [("10115", 52.5, 13.4)])
    assert table.locate("DE", "10115") is None
    assert PostalCodeTable(tmp_path).locate("DE", "10115") == (52.5, 13.4)


@pytest.mark.parametrize(
    "code",
    [
        "",
        " ",
        "!!!",
        "-",
        "10115; DROP TABLE",
        "1" * 10_000,
        "A" * 17,
        "10115\x00",
        "\u0661\u0660\u0661\u0661\u0665",  # Arabic-Indic digits
        "🙂",
        "\uff11\uff10\uff11\uff11\uff15",  # full-width digits
    ],
)
@pytest.mark.parametrize("country", ["DE", "NL", "US", "GB", "AT"])
def test_garbage_is_none_without_raising(country: str, code: str) -> None:
    """Given an empty, punctuated, overlong or non-ASCII code, when located, then None."""
    assert TABLE.locate(country, code) is None


def test_shipped_keys_are_their_own_normal_form() -> None:
    """Given every shipped table, when each key is normalised again, then it is unchanged (so
    the build and the lookup agree), and every coordinate is a plausible latitude/longitude."""
    for country in sorted(TABLE.countries()):
        table = TABLE._table(country)
        assert table is not None and len(table.exact) > 500, country
        for code, (lat, lon) in table.exact.items():
            assert normalise(country, code) == code, (country, code)
            assert -90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0, (country, code)


def test_a_table_is_read_once_however_many_threads_ask(tmp_path: Path) -> None:
    """Given a fresh table and 16 threads locating in the same country at once, when the file
    is slow to read, then it is read once and every thread gets the answer."""
    write_table(tmp_path, "AT", [("1010", 48.2, 16.37)])
    loads: list[str] = []

    class Counting(PostalCodeTable):
        def _load(self, cc: str) -> postal_codes._Table | None:
            loads.append(cc)
            time.sleep(0.05)
            return super()._load(cc)

    table = Counting(tmp_path)
    start = threading.Barrier(16)
    answers: list[tuple[float, float] | None] = []

    def ask() -> None:
        start.wait()
        answers.append(table.locate("AT", "1010"))

    threads = [threading.Thread(target=ask) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert loads == ["AT"]
    assert answers == [(48.2, 16.37)] * 16


def test_nothing_is_read_before_the_first_lookup(tmp_path: Path) -> None:
    """Given a table over a folder that does not exist, when it is made, then nothing fails:
    files are read on first use only."""
    table = PostalCodeTable(tmp_path / "missing")
    assert table.locate("DE", "10115") is None
