"""NASA Exoplanet Archive downloads as canonical planet records in OEC units.

Reads the three shapes the archive hands out: web downloads of ``pscomppars`` (a ``#``
comment block, fixed decimals, ``err1``/``err2``/``lim`` columns), TAP downloads (no
comments, quoted strings, any subset of columns, Earth units only) and the ``ps`` table (one
row per planet and reference; only the default parameter set is kept).
"""

from __future__ import annotations

import datetime as dt
import re
from urllib.parse import quote

from common.catalogues.fields import (
    Row,
    check_position,
    degrees_text,
    hours_text,
    measured,
    planet_letter,
    text_value,
    transit_time,
)
from common.catalogues.methods import oec_method
from common.catalogues.table import iter_rows, read_table
from common.errors import InvalidRowError
from common.records import Catalogue, PlanetRecord, RejectedRow, Source, Value

M_JUP_IN_EARTH = 317.8284
R_JUP_IN_EARTH = 71492 / 6378.1

# pscomppars fills masses it has no measurement for from the radius with a mass-radius
# relation (about half the table); those are models, not measurements, and stay out of OEC.
MODEL_MASS_PROVENANCES = frozenset({"M-R relationship"})

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
_COLUMNS = [
    "pl_name",
    "hostname",
    "hd_name",
    "hip_name",
    "pl_letter",
    "pl_controv_flag",
    "default_flag",
    "rowupdate",
    "discoverymethod",
    "disc_year",
    "pl_bmassprov",
    "st_metratio",
    "st_spectype",
    "rastr",
    "decstr",
    "ra",
    "dec",
    *(f"{base}{suffix}" for base in _MEASURED for suffix in ("", "err1", "err2", "lim")),
]

# The second line of a web download: "# Tue Oct 15 09:13:04 2024".
_DOWNLOAD_DATE = re.compile(r"#\s*(\w{3} \w{3}\s+\d{1,2} \d{2}:\d{2}:\d{2} \d{4})\s*$")
_RA = re.compile(r"(\d{1,2})h(\d{1,2})m(\d{1,2}(?:\.\d*)?)s")
_DEC = re.compile(r"([+-]?)(\d{1,2})d(\d{1,2})m(\d{1,2}(?:\.\d*)?)s")


def read_nasa(data: bytes, name: str, fetched_at: dt.date | None = None) -> Catalogue:
    """Read a NASA Exoplanet Archive download (pscomppars or ps, web or TAP).

    ``fetched_at`` dates the rows when the download carries no date of its own (TAP).
    Raises NotACatalogueError when ``data`` is not a readable NASA table.
    """
    table = read_table(data, name, required=("pl_name",))
    released, dated_by = catalogue_date(table.comments, fetched_at)
    default_only = "default_flag" in table.header
    records: list[PlanetRecord] = []
    rejected = list(table.rejected)
    skipped = 0
    for line, cells in iter_rows(table.frame, _COLUMNS):
        row = Row(name, line, cells)
        try:
            if default_only and not _is_default(row):
                skipped += 1
                continue
            records.append(_record(row, released, dated_by))
        except InvalidRowError as error:
            rejected.append(
                RejectedRow(file=name, row=line, column=error.column, reason=error.reason)
            )
    rejected.sort(key=lambda reject: reject.row)
    return Catalogue(
        source=Source.NASA,
        file=name,
        released=released,
        rows=table.rows,
        skipped_status=skipped,
        records=records,
        rejected=rejected,
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


def _is_default(row: Row) -> bool:
    flag = row.number("default_flag")
    if flag not in {"0", "1"}:
        raise row.invalid("default_flag", f"default_flag is {flag!r}, not 0 or 1")
    return flag == "1"


def _record(row: Row, released: dt.date | None, dated_by: str) -> PlanetRecord:
    name = row.text("pl_name")
    if not name:
        raise row.invalid("pl_name", "no planet name")
    host = row.text("hostname") or None
    updated = row.date("rowupdate")
    if updated is not None:
        dated_by = "NASA rowupdate"
    else:
        updated = released
    ra, dec, system = _position(row)
    distance = _measured(row, "sy_dist")
    if distance is not None:
        system["distance"] = distance
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
        planet=_planet(row),
        star=_star(row),
        system=system,
    )


def _measured(
    row: Row,
    base: str,
    *,
    divisor: float | None = None,
    type: str | None = None,
    unit: str | None = None,
) -> Value | None:
    plus, minus, limit = f"{base}err1", f"{base}err2", f"{base}lim"
    return measured(row, base, plus, minus, limit, divisor=divisor, type=type, unit=unit)


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


def _planet(row: Row) -> dict[str, Value]:
    values: dict[str, Value | None] = {
        "mass": _mass(row),
        "radius": _radius(row),
        **{tag: _measured(row, base) for tag, base in _PLANET_COLUMNS.items()},
        "transittime": transit_time(_measured(row, "pl_tranmid", unit="BJD")),
        "discoverymethod": _method(row),
        "discoveryyear": row.year("disc_year"),
    }
    return {tag: value for tag, value in values.items() if value is not None}


def _mass(row: Row) -> Value | None:
    """Jupiter masses from pl_bmassj, or from pl_bmasse where the row has no pl_bmassj."""
    provenance = row.text("pl_bmassprov")
    if provenance in MODEL_MASS_PROVENANCES:
        return None
    kind = "msini" if provenance == "Msini" else None
    if row.number("pl_bmassj") is not None:
        return _measured(row, "pl_bmassj", type=kind)
    return _measured(row, "pl_bmasse", divisor=M_JUP_IN_EARTH, type=kind)


def _radius(row: Row) -> Value | None:
    if row.number("pl_radj") is not None:
        return _measured(row, "pl_radj")
    return _measured(row, "pl_rade", divisor=R_JUP_IN_EARTH)


def _method(row: Row) -> Value | None:
    method = oec_method(row.text("discoverymethod"))
    return Value(value=method) if method else None


def _star(row: Row) -> dict[str, Value]:
    values: dict[str, Value | None] = {
        tag: _measured(row, base) for tag, base in _STAR_COLUMNS.items()
    }
    # OEC's metallicity is [Fe/H]; an [M/H] value would be a different quantity.
    if row.text("st_metratio") in {"", "[Fe/H]"}:
        values["metallicity"] = _measured(row, "st_met")
    values["spectraltype"] = text_value(row, "st_spectype")
    return {tag: value for tag, value in values.items() if value is not None}


def _position(row: Row) -> tuple[float | None, float | None, dict[str, Value]]:
    """Degrees for the record and OEC's sexagesimal tags, from rastr/decstr or ra/dec."""
    ra, dec = row.real("ra"), row.real("dec")
    system: dict[str, Value] = {}
    rastr, decstr = row.text("rastr"), row.text("decstr")
    if rastr:
        ra_text, ra_degrees = _nasa_ra(row, rastr)
        ra = ra_degrees if ra is None else ra
    else:
        ra_text = hours_text(ra) if ra is not None else None
    if decstr:
        dec_text, dec_degrees = _nasa_dec(row, decstr)
        dec = dec_degrees if dec is None else dec
    else:
        dec_text = degrees_text(dec) if dec is not None else None
    check_position(row, ra, dec)
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
