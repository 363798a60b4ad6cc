"""exoplanet.eu CSV exports as canonical planet records in OEC units.

All three header generations are read: ``# name,...`` with CRLF (2022), ``name,...`` with
``mass_detection_type`` (2023) and ``name,...`` with ``mass_measurement_type`` (2025). The
export is already in OEC units; positions come in degrees.
"""

from __future__ import annotations

import html
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
    split_names,
    text_value,
    texts,
    transit_times,
)
from common.catalogues.methods import oec_method
from common.catalogues.table import read_table
from common.records import Catalogue, PlanetRecord, Source, Value

# exoplanet.eu's planet_status -> OEC status list. Candidates have no OEC list on purpose:
# "Kepler Objects of Interest" is for KOIs, not for exoplanet.eu's candidates.
EU_STATUSES = {
    "Confirmed": "Confirmed planets",
    "Controversial": "Controversial",
    "Retracted": "Retracted planet candidate",
}

# What a run reads. Controversial rows count as NASA's pl_controv_flag rows do: they update
# the planets OEC has, and a planet OEC lacks goes to a host OEC has listed Controversial
# (never a new system: common.rules.merge), as the maintainer added TOI-561 f.
READ_STATUSES = frozenset({"Confirmed", "Controversial"})

SEARCH_URL = "https://exoplanet.eu/catalog/?q="
_MARKUP = re.compile(r"<[^>]*>")
_DASHES = re.compile(r"-{2,}")  # "OGLE--2018-BLG-0516" (2022-04): a typo, no name has "--"

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
_TEXTS = [
    "name",
    "planet_status",
    "alternate_names",
    "star_name",
    "star_alternate_names",
    "detection_type",
    "updated",
    "star_sp_type",
]
_NUMBERS = [
    "discovered",
    "ra",
    "dec",
    *(f"{base}{suffix}" for base in _MEASURED for suffix in ("", "_error_min", "_error_max")),
]


Values = dict[str, list[Value | None]]


def read_eu(
    data: bytes,
    name: str,
    statuses: frozenset[str] = READ_STATUSES,
    known: Collection[str] = frozenset(),
) -> Catalogue:
    """Read an exoplanet.eu export; rows whose planet_status is not in ``statuses`` are only
    counted (Catalogue.skipped_status). Rows whose key (Catalogue.row_keys) is in ``known``
    are not read again: the caller has their records.

    Raises ValueError for a status OEC has no list for (Candidate), NotACatalogueError when
    ``data`` is not a readable exoplanet.eu export (WrongCatalogueError when it is a NASA
    table).
    """
    _check_statuses(statuses)
    table = read_table(data, name, Source.EU)
    wanted = [cell.strip() in statuses for cell in table.well_formed.column("planet_status")]
    context = f"{name}\x1f{sorted(statuses)}"
    rows, keys = table.unknown_rows(table.well_formed.where(wanted), context, known)
    columns = Columns(rows, name, _TEXTS, _NUMBERS)
    planet, star, system = _planet_values(columns), _star_values(columns), _system_values(columns)

    def convert(row: Row) -> PlanetRecord:
        return _record(row, row.pick(planet), row.pick(star), row.pick(system))

    records, bad_rows = convert_rows(columns, convert)
    return Catalogue(
        source=Source.EU,
        file=name,
        rows=table.rows,
        skipped_status=wanted.count(False),
        records=records,
        rejected=sorted([*table.rejected, *bad_rows], key=lambda reject: reject.row),
        row_keys=keys,
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


def _measured(
    columns: Columns,
    base: str,
    *,
    types: list[str | None] | None = None,
    unit: str | None = None,
) -> list[Value | None]:
    plus, minus = f"{base}_error_max", f"{base}_error_min"
    return measured(columns, base, plus, minus, types=types, unit=unit)


def _planet_values(columns: Columns) -> Values:
    methods = [oec_method(text) for text in columns.text("detection_type")]
    return {
        "mass": _masses(columns),
        **{tag: _measured(columns, base) for tag, base in _PLANET_COLUMNS.items()},
        "transittime": transit_times(_measured(columns, "tzero_tr", unit="BJD")),
        "discoverymethod": [text_value(method) if method else None for method in methods],
        "discoveryyear": columns.years("discovered"),
    }


def _masses(columns: Columns) -> list[Value | None]:
    """The masses, typed msini where they are only minimum masses.

    That is where a row has mass_sini alone, or (the 2023 exports) a mass that merely
    repeats mass_sini for a planet with neither an inclination nor a transit, so nothing
    could have turned the minimum mass into a true one.
    """
    copies = zip(
        columns.number("mass"),
        columns.number("mass_sini"),
        columns.number("inclination"),
        columns.text("detection_type"),
        strict=True,
    )
    kinds: list[str | None] = [
        "msini" if _is_copy(mass, sini) and inclination is None and not _transits(methods) else None
        for mass, sini, inclination, methods in copies
    ]
    masses = _measured(columns, "mass", types=kinds)
    minimum_masses = _measured(columns, "mass_sini", types=["msini"] * columns.size)
    return [
        mass if mass is not None else minimum
        for mass, minimum in zip(masses, minimum_masses, strict=True)
    ]


def _transits(methods: str) -> bool:
    return any(oec_method(method) == "transit" for method in methods.split(","))


def _is_copy(mass: str | None, sini: str | None) -> bool:
    return mass is not None and sini is not None and float(mass) == float(sini)


def _star_values(columns: Columns) -> Values:
    values = {tag: _measured(columns, base) for tag, base in _STAR_COLUMNS.items()}
    values["spectraltype"] = texts(columns, "star_sp_type")
    return values


def _system_values(columns: Columns) -> Values:
    return {"distance": _measured(columns, "star_distance")}


def _record(
    row: Row, planet: dict[str, Value], star: dict[str, Value], system: dict[str, Value]
) -> PlanetRecord:
    name, *other_names = designations(_name(row, "name"), planet=True)
    if not name:
        raise row.invalid("name", "no planet name")
    first_host, *other_hosts = designations(_name(row, "star_name"))
    host = first_host or None
    host_aliases = [*other_hosts, *_names(row, "star_alternate_names", host)]
    ra, dec = row.real("ra"), row.real("dec")
    check_position(row, ra, dec)
    updated = row.date("updated")
    return PlanetRecord(
        source=Source.EU,
        catalogue=row.file,
        row=row.line,
        name=name,
        aliases=[*other_names, *_planet_aliases(row, name, [host, *host_aliases])],
        letter=planet_letter(name),
        host=host,
        host_aliases=host_aliases,
        status=EU_STATUSES[row.text("planet_status")],
        ra=ra,
        dec=dec,
        updated=updated,
        dated_by="exoplanet.eu updated" if updated is not None else "",
        url=SEARCH_URL + quote(name, safe=""),
        planet=planet,
        star=star,
        system={**_position(ra, dec), **system},
    )


def _name(row: Row, column: str) -> str:
    return clean_name(row.raw(column))


def _names(row: Row, column: str, own: str | None) -> list[str]:
    names = (n for name in split_names(row.raw(column)) for n in designations(clean_name(name)))
    return list(dict.fromkeys(name for name in names if name and name != own))


def designations(name: str, *, planet: bool = False) -> list[str]:
    """The designations exoplanet.eu joins with "/" in one name, first the one it lists first.

    ``"TOI-1431/MASCARA-5"`` is two names of one star; for a planet the letter written once
    at the end belongs to each (``"OGLE-2018-BLG-0932/KMT-2018-BLG-2087 b"``). A comet's
    ``"1I/'Oumuamua"`` or ``"C/2019 Q4"`` is one name: every part must be 4 characters or more.
    """
    parts = [part.strip() for part in name.split("/")]
    if len(parts) < 2 or any(len(part) < 4 for part in parts):
        return [name]
    letter = planet_letter(parts[-1]) if planet else None
    if letter:
        parts = [part if planet_letter(part) else f"{part} {letter}" for part in parts]
    return list(dict.fromkeys(parts))


def _planet_aliases(row: Row, name: str, host_names: list[str | None]) -> list[str]:
    # exoplanet.eu sometimes lists a star's name among the planet's ("CD Cet b" has alias
    # "GJ 1057", its host's alias); a planet alias that names the host would match the star.
    return [alias for alias in _names(row, "alternate_names", name) if alias not in host_names]


def clean_name(text: str) -> str:
    """A name as plain text: entities decoded ("24 Bo&ouml;" -> "24 Boö"), markup dropped
    ("Fornacis &lambda;<sup>2</sup>  b" -> "Fornacis λ2 b"), spaces and dashes collapsed."""
    if "&" in text or "<" in text:
        text = _MARKUP.sub("", html.unescape(text))
    return _DASHES.sub("-", " ".join(text.split()))


def _position(ra: float | None, dec: float | None) -> dict[str, Value]:
    position: dict[str, Value] = {}
    if ra is not None:
        position["rightascension"] = Value(value=hours_text(ra))
    if dec is not None:
        position["declination"] = Value(value=degrees_text(dec))
    return position
