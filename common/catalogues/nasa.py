"""NASA Exoplanet Archive downloads as canonical planet records in OEC units.

Reads the three shapes the archive hands out: web downloads of ``pscomppars`` (a ``#``
comment block, fixed decimals, ``err1``/``err2``/``lim`` columns), TAP downloads (no
comments, quoted strings, any subset of columns, Earth units only) and the ``ps`` table (one
row per planet and reference; only the default parameter set is kept).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Collection
from urllib.parse import quote

from common.catalogues.fields import (
    Columns,
    Row,
    check_position,
    convert_rows,
    degrees_text,
    hours_text,
    measured,
    planet_letter,
    text_value,
    texts,
    transit_times,
)
from common.catalogues.methods import oec_method
from common.catalogues.table import Rows, Table, read_table
from common.records import Catalogue, PlanetRecord, RejectedRow, Source, Value

M_JUP_IN_EARTH = 317.8284
R_JUP_IN_EARTH = 71492 / 6378.1

# pscomppars fills masses it has no measurement for from the radius with a mass-radius
# relation (about half the table); those are models, not measurements, and stay out of OEC.
MODEL_MASS_PROVENANCES = frozenset({"M-R relationship"})
# It fills radii the same way from masses, with no provenance column; such radii carry no
# uncertainties. A radius without uncertainties is kept only for a planet found by transit,
# whose radius is what was measured (checked on PSCompPars 2024-10-15: 1,383 of the 1,829
# radii without errors belong to planets found otherwise, 11 Com b's "1.09" among them).
# NASA's own word: OEC calls "Orbital Brightness Modulation" transit too, but those planets
# do not transit (KIC 10068024 b's "1.19" is a model radius).
MEASURED_WITHOUT_ERRORS = frozenset({"transit"})

OVERVIEW_URL = "https://exoplanetarchive.ipac.caltech.edu/overview/"

# Each measured column X comes with Xerr1 (+), Xerr2 (-, negative) and Xlim.
_PLANET_COLUMNS = {
    "period": "pl_orbper",
    "semimajoraxis": "pl_orbsmax",
    "eccentricity": "pl_orbeccen",
    "inclination": "pl_orbincl",
    "periastron": "pl_orblper",
    "temperature": "pl_eqt",
}
_STAR_COLUMNS = {
    "mass": "st_mass",
    "radius": "st_rad",
    "temperature": "st_teff",
    "age": "st_age",
    "magV": "sy_vmag",
    "magI": "sy_icmag",  # Cousins I as OEC's magI; sy_imag is Sloan i
    "magJ": "sy_jmag",
    "magH": "sy_hmag",
    "magK": "sy_kmag",
}
_MEASURED = [
    *_PLANET_COLUMNS.values(),
    *_STAR_COLUMNS.values(),
    "pl_bmassj",
    "pl_bmasse",
    "pl_radj",
    "pl_rade",
    "pl_tranmid",
    "st_met",
    "sy_dist",
]
_TEXTS = [
    "pl_name",
    "hostname",
    "hd_name",
    "hip_name",
    "pl_letter",
    "rowupdate",
    "discoverymethod",
    "pl_bmassprov",
    "st_metratio",
    "st_spectype",
    "rastr",
    "decstr",
]
_NUMBERS = [
    "pl_controv_flag",
    "disc_year",
    "ra",
    "dec",
    *(f"{base}{suffix}" for base in _MEASURED for suffix in ("", "err1", "err2", "lim")),
]

# The second line of a web download: "# Tue Oct 15 09:13:04 2024".
_DOWNLOAD_DATE = re.compile(r"#\s*(\w{3} \w{3}\s+\d{1,2} \d{2}:\d{2}:\d{2} \d{4})\s*$")
_RA = re.compile(r"(\d{1,2})h(\d{1,2})m(\d{1,2}(?:\.\d*)?)s")
_DEC = re.compile(r"([+-]?)(\d{1,2})d(\d{1,2})m(\d{1,2}(?:\.\d*)?)s")

Values = dict[str, list[Value | None]]


def read_nasa(
    data: bytes,
    name: str,
    fetched_at: dt.date | None = None,
    known: Collection[str] = frozenset(),
) -> Catalogue:
    """Read a NASA Exoplanet Archive download (pscomppars or ps, web or TAP).

    ``fetched_at`` dates the rows when the download carries no date of its own (TAP). Rows
    whose key (Catalogue.row_keys) is in ``known`` are not read again: the caller has their
    records.
    Raises NotACatalogueError when ``data`` is not a readable NASA table
    (WrongCatalogueError when it is an exoplanet.eu export).
    """
    table = read_table(data, name, Source.NASA)
    released, dated_by = catalogue_date(table.comments, fetched_at)
    rows, skipped, rejected = _default_rows(table)
    rows, keys = table.unknown_rows(rows, f"{name}\x1f{released}\x1f{dated_by}", known)
    columns = Columns(rows, name, _TEXTS, _NUMBERS)
    planet, star, system = _planet_values(columns), _star_values(columns), _system_values(columns)

    def convert(row: Row) -> PlanetRecord:
        return _record(row, released, dated_by, row.pick(planet), row.pick(star), row.pick(system))

    records, bad_rows = convert_rows(columns, convert)
    return Catalogue(
        source=Source.NASA,
        file=name,
        released=released,
        rows=table.rows,
        skipped_status=skipped,
        records=records,
        rejected=sorted([*rejected, *bad_rows], key=lambda reject: reject.row),
        row_keys=keys,
    )


def catalogue_date(comments: list[str], fetched_at: dt.date | None) -> tuple[dt.date | None, str]:
    """The download's own date from its comment block, else ``fetched_at``; and its origin."""
    for comment in comments:
        match = _DOWNLOAD_DATE.match(comment)
        if match:
            stamp = dt.datetime.strptime(match.group(1), "%a %b %d %H:%M:%S %Y")
            return stamp.date(), "NASA catalogue date"
    if fetched_at is not None:
        return fetched_at, "download date"
    return None, ""


def _default_rows(table: Table) -> tuple[Rows, int, list[RejectedRow]]:
    """The rows to read, how many were skipped, and the table's rejects.

    The ps table holds one row per planet and reference; default_flag 1 marks the one set
    the archive recommends, so the others are skipped (and counted) rather than merged.
    """
    rejected = list(table.rejected)
    if "default_flag" not in table.header:
        return table.well_formed, 0, rejected
    flags = [cell.strip() for cell in table.well_formed.column("default_flag")]
    for line, flag in zip(table.well_formed.lines, flags, strict=True):
        if flag not in ("0", "1"):
            reason = f"default_flag is {flag!r}, not 0 or 1"
            rejected.append(
                RejectedRow(file=table.file, row=line, column="default_flag", reason=reason)
            )
    return table.well_formed.where(f == "1" for f in flags), flags.count("0"), rejected


def _measured(
    columns: Columns,
    base: str,
    *,
    divisor: float | None = None,
    types: list[str | None] | None = None,
    unit: str | None = None,
    where: list[bool] | None = None,
) -> list[Value | None]:
    plus, minus, limit = f"{base}err1", f"{base}err2", f"{base}lim"
    return measured(
        columns, base, plus, minus, limit, divisor=divisor, types=types, unit=unit, where=where
    )


def _planet_values(columns: Columns) -> Values:
    methods = [oec_method(text) for text in columns.text("discoverymethod")]
    return {
        "mass": _masses(columns),
        "radius": _radii(columns, [text.lower() for text in columns.text("discoverymethod")]),
        **{tag: _measured(columns, base) for tag, base in _PLANET_COLUMNS.items()},
        "transittime": transit_times(_measured(columns, "pl_tranmid", unit="BJD")),
        "discoverymethod": [text_value(method) if method else None for method in methods],
        "discoveryyear": columns.years("disc_year"),
    }


def _masses(columns: Columns) -> list[Value | None]:
    provenances = columns.text("pl_bmassprov")
    kinds = ["msini" if provenance == "Msini" else None for provenance in provenances]
    masses = _jupiter_or_earth(columns, "pl_bmassj", "pl_bmasse", M_JUP_IN_EARTH, kinds)
    return [
        None if provenance in MODEL_MASS_PROVENANCES else mass
        for mass, provenance in zip(masses, provenances, strict=True)
    ]


def _radii(columns: Columns, methods: list[str]) -> list[Value | None]:
    radii = _jupiter_or_earth(columns, "pl_radj", "pl_rade", R_JUP_IN_EARTH)
    return [
        radius
        if radius is None or radius.errorplus is not None or method in MEASURED_WITHOUT_ERRORS
        else None
        for radius, method in zip(radii, methods, strict=True)
    ]


def _jupiter_or_earth(
    columns: Columns,
    jupiter: str,
    earth: str,
    earths_per_jupiter: float,
    kinds: list[str | None] | None = None,
) -> list[Value | None]:
    """The Jupiter-unit column, converted from the Earth-unit one where a row lacks it (TAP
    downloads have Earth units only)."""
    values = _measured(columns, jupiter, types=kinds)
    missing = [value is None for value in values]
    converted = _measured(columns, earth, divisor=earths_per_jupiter, types=kinds, where=missing)
    return [a if a is not None else b for a, b in zip(values, converted, strict=True)]


def _star_values(columns: Columns) -> Values:
    values = {tag: _measured(columns, base) for tag, base in _STAR_COLUMNS.items()}
    # OEC's metallicity is [Fe/H]; an [M/H] value is a different quantity.
    metallicities = _measured(columns, "st_met")
    ratios = columns.text("st_metratio")
    values["metallicity"] = [
        value if ratio in {"", "[Fe/H]"} else None
        for value, ratio in zip(metallicities, ratios, strict=True)
    ]
    values["spectraltype"] = texts(columns, "st_spectype")
    return values


def _system_values(columns: Columns) -> Values:
    return {"distance": _measured(columns, "sy_dist")}


def _record(
    row: Row,
    released: dt.date | None,
    dated_by: str,
    planet: dict[str, Value],
    star: dict[str, Value],
    system: dict[str, Value],
) -> PlanetRecord:
    name = row.text("pl_name")
    if not name:
        raise row.invalid("pl_name", "no planet name")
    host = row.text("hostname") or None
    updated = row.date("rowupdate")
    if updated is not None:
        dated_by = "NASA rowupdate"
    else:
        updated = released
    ra, dec, position = _position(row)
    return PlanetRecord(
        source=Source.NASA,
        catalogue=row.file,
        row=row.line,
        name=name,
        letter=row.text("pl_letter") or planet_letter(name),
        host=host,
        host_aliases=_host_aliases(row, host),
        status=_status(row),
        ra=ra,
        dec=dec,
        updated=updated,
        dated_by=dated_by if updated is not None else "",
        url=OVERVIEW_URL + quote(host or name, safe=""),
        planet=planet,
        star=star,
        system={**position, **system},
    )


def _host_aliases(row: Row, host: str | None) -> list[str]:
    aliases = (row.text("hd_name"), row.text("hip_name"))
    return list(dict.fromkeys(alias for alias in aliases if alias and alias != host))


def _status(row: Row) -> str:
    flag = row.number("pl_controv_flag")
    if flag in {None, "0"}:
        return "Confirmed planets"
    if flag == "1":
        return "Controversial"
    raise row.invalid("pl_controv_flag", f"pl_controv_flag is {flag!r}, not 0 or 1")


def _position(row: Row) -> tuple[float | None, float | None, dict[str, Value]]:
    """Degrees for the record and OEC's sexagesimal tags, from rastr/decstr or ra/dec."""
    ra, dec = row.real("ra"), row.real("dec")
    ra_text: str | None = None
    dec_text: str | None = None
    if rastr := row.text("rastr"):
        ra_text, ra_degrees = _nasa_ra(row, rastr)
        ra = ra_degrees if ra is None else ra
    elif ra is not None:
        ra_text = hours_text(ra)
    if decstr := row.text("decstr"):
        dec_text, dec_degrees = _nasa_dec(row, decstr)
        dec = dec_degrees if dec is None else dec
    elif dec is not None:
        dec_text = degrees_text(dec)
    check_position(row, ra, dec)
    system: dict[str, Value] = {}
    if ra_text:
        system["rightascension"] = Value(value=ra_text)
    if dec_text:
        system["declination"] = Value(value=dec_text)
    return ra, dec, system


def _nasa_ra(row: Row, text: str) -> tuple[str, float]:
    """ "12h20m42.91s" -> ("12 20 42.91", 185.17879...)."""
    match = _RA.fullmatch(text)
    if not match:
        raise row.invalid("rastr", f"not a right ascension like 12h20m42.91s: {text!r}")
    hours, minutes, seconds = match.groups()
    degrees = 15 * (int(hours) + int(minutes) / 60 + float(seconds) / 3600)
    return f"{hours} {minutes} {seconds}", degrees


def _nasa_dec(row: Row, text: str) -> tuple[str, float]:
    """ "+17d47m35.71s" -> ("+17 47 35.71", 17.79325...)."""
    match = _DEC.fullmatch(text)
    if not match:
        raise row.invalid("decstr", f"not a declination like +17d47m35.71s: {text!r}")
    sign, whole, minutes, seconds = match.groups()
    sign = sign or "+"
    degrees = int(whole) + int(minutes) / 60 + float(seconds) / 3600
    return f"{sign}{whole} {minutes} {seconds}", -degrees if sign == "-" else degrees
