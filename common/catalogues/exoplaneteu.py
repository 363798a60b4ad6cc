"""exoplanet.eu CSV exports as canonical planet records in OEC units.

All three header generations are read: ``# name,...`` with CRLF (2022), ``name,...`` with
``mass_detection_type`` (2023) and ``name,...`` with ``mass_measurement_type`` (2025). The
export is already in OEC units; positions come in degrees.
"""

from __future__ import annotations

import html
from urllib.parse import quote

from common.catalogues.fields import (
    Row,
    check_position,
    degrees_text,
    hours_text,
    measured,
    planet_letter,
    split_names,
    text_value,
    transit_time,
)
from common.catalogues.methods import oec_method
from common.catalogues.table import iter_rows, read_table
from common.errors import InvalidRowError
from common.records import Catalogue, PlanetRecord, RejectedRow, Source, Value

# exoplanet.eu's planet_status -> OEC status list. Candidates have no OEC list on purpose:
# "Kepler Objects of Interest" is for KOIs, not for exoplanet.eu's candidates.
EU_STATUSES = {
    "Confirmed": "Confirmed planets",
    "Controversial": "Controversial",
    "Retracted": "Retracted planet candidate",
}

SEARCH_URL = "https://exoplanet.eu/catalog/?q="

# Each measured column X comes with X_error_min (sometimes negative) and X_error_max.
_PLANET_COLUMNS = {
    "radius": "radius",
    "period": "orbital_period",
    "semimajoraxis": "semi_major_axis",
    "eccentricity": "eccentricity",
    "inclination": "inclination",
    "periastron": "omega",
    "temperature": "temp_calculated",
}
_STAR_COLUMNS = {
    "mass": "star_mass",
    "radius": "star_radius",
    "temperature": "star_teff",
    "metallicity": "star_metallicity",
    "age": "star_age",
    "magV": "mag_v",
    "magI": "mag_i",
    "magJ": "mag_j",
    "magH": "mag_h",
    "magK": "mag_k",
}
_MEASURED = [
    *_PLANET_COLUMNS.values(),
    *_STAR_COLUMNS.values(),
    "mass",
    "mass_sini",
    "tzero_tr",
    "star_distance",
]
_COLUMNS = [
    "name",
    "planet_status",
    "alternate_names",
    "star_name",
    "star_alternate_names",
    "detection_type",
    "discovered",
    "updated",
    "star_sp_type",
    "ra",
    "dec",
    *(f"{base}{suffix}" for base in _MEASURED for suffix in ("", "_error_min", "_error_max")),
]


def read_eu(
    data: bytes, name: str, statuses: frozenset[str] = frozenset({"Confirmed"})
) -> Catalogue:
    """Read an exoplanet.eu export; rows whose planet_status is not in ``statuses`` are only
    counted (Catalogue.skipped_status).

    Raises ValueError for a status OEC has no list for (Candidate), NotACatalogueError when
    ``data`` is not a readable exoplanet.eu export.
    """
    _check_statuses(statuses)
    table = read_table(data, name, required=("name", "planet_status"))
    wanted = table.frame["planet_status"].str.strip().isin(statuses)
    records: list[PlanetRecord] = []
    rejected = list(table.rejected)
    for line, cells in iter_rows(table.frame[wanted], _COLUMNS):
        row = Row(name, line, cells)
        try:
            records.append(_record(row))
        except InvalidRowError as error:
            rejected.append(
                RejectedRow(file=name, row=line, column=error.column, reason=error.reason)
            )
    rejected.sort(key=lambda reject: reject.row)
    return Catalogue(
        source=Source.EU,
        file=name,
        rows=table.rows,
        skipped_status=int((~wanted).sum()),
        records=records,
        rejected=rejected,
    )


def _check_statuses(statuses: frozenset[str]) -> None:
    if "Candidate" in statuses:
        raise ValueError(
            "exoplanet.eu Candidate planets have no OEC status list; "
            f"read only {sorted(EU_STATUSES)}"
        )
    unknown = sorted(set(statuses) - EU_STATUSES.keys())
    if unknown:
        raise ValueError(f"unknown exoplanet.eu statuses {unknown}; known: {sorted(EU_STATUSES)}")


def _record(row: Row) -> PlanetRecord:
    name = _name(row, "name")
    if not name:
        raise row.invalid("name", "no planet name")
    host = _name(row, "star_name") or None
    ra, dec = row.real("ra"), row.real("dec")
    check_position(row, ra, dec)
    updated = row.date("updated")
    return PlanetRecord(
        source=Source.EU,
        catalogue=row.file,
        row=row.line,
        name=name,
        aliases=_names(row, "alternate_names", name),
        letter=planet_letter(name),
        host=host,
        host_aliases=_names(row, "star_alternate_names", host),
        status=EU_STATUSES[row.text("planet_status")],
        ra=ra,
        dec=dec,
        updated=updated,
        dated_by="exoplanet.eu updated" if updated is not None else "",
        url=SEARCH_URL + quote(name, safe=""),
        planet=_planet(row),
        star=_star(row),
        system=_system(row, ra, dec),
    )


def _name(row: Row, column: str) -> str:
    # Names carry HTML entities ("24 Bo&ouml;"); a name is never "nan", so read it raw.
    return html.unescape(row.cells.get(column, "")).strip()


def _names(row: Row, column: str, own: str | None) -> list[str]:
    names = (html.unescape(name) for name in split_names(row.cells.get(column, "")))
    return list(dict.fromkeys(name for name in names if name and name != own))


def _measured(
    row: Row, base: str, *, type: str | None = None, unit: str | None = None
) -> Value | None:
    return measured(row, base, f"{base}_error_max", f"{base}_error_min", type=type, unit=unit)


def _planet(row: Row) -> dict[str, Value]:
    method = oec_method(row.text("detection_type"))
    values: dict[str, Value | None] = {
        "mass": _mass(row),
        **{tag: _measured(row, base) for tag, base in _PLANET_COLUMNS.items()},
        "transittime": transit_time(_measured(row, "tzero_tr", unit="BJD")),
        "discoverymethod": Value(value=method) if method else None,
        "discoveryyear": row.year("discovered"),
    }
    return {tag: value for tag, value in values.items() if value is not None}


def _mass(row: Row) -> Value | None:
    """The mass, typed msini when it is only a minimum mass.

    That is when the row has mass_sini alone, or (the 2023 exports) a mass that merely
    repeats mass_sini for a planet without an inclination, so nothing could turn the
    minimum mass into a true one.
    """
    mass, sini = row.number("mass"), row.number("mass_sini")
    if mass is None:
        return _measured(row, "mass_sini", type="msini")
    copied = sini is not None and float(mass) == float(sini) and row.number("inclination") is None
    return _measured(row, "mass", type="msini" if copied else None)


def _star(row: Row) -> dict[str, Value]:
    values: dict[str, Value | None] = {
        tag: _measured(row, base) for tag, base in _STAR_COLUMNS.items()
    }
    values["spectraltype"] = text_value(row, "star_sp_type")
    return {tag: value for tag, value in values.items() if value is not None}


def _system(row: Row, ra: float | None, dec: float | None) -> dict[str, Value]:
    values: dict[str, Value | None] = {
        "rightascension": Value(value=hours_text(ra)) if ra is not None else None,
        "declination": Value(value=degrees_text(dec)) if dec is not None else None,
        "distance": _measured(row, "star_distance"),
    }
    return {tag: value for tag, value in values.items() if value is not None}
