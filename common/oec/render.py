"""New OEC system files, written as a maintainer fills in template.xml."""

from __future__ import annotations

import importlib.metadata
import unicodedata
from collections.abc import Sequence

from lxml import etree

from common.errors import UnsafeNameError
from common.memo import Forgetful, Store
from common.oec import vocab
from common.oec.edit import has_content, indent_block, leaf, planet_element, rank
from common.oec.tree import serialize
from common.records import PlanetRecord, Value

# Most file systems cap a name at 255 bytes; keep room for git's temporary suffixes.
MAX_FILE_NAME_BYTES = 200


def system_file_name(name: str) -> str:
    """The file name OEC's rule gives the system ``name``: apostrophes removed, + ".xml".

    Raises UnsafeNameError for a name that could leave the systems/ folder or is no valid
    single file name: path separators, NUL and control characters, "..", a leading dot or
    dash, surrounding whitespace (CI strips values, so the file name would not match), an
    empty result or more than ``MAX_FILE_NAME_BYTES`` bytes.
    """
    file_name = vocab.file_name_for(name)
    stem = file_name.removesuffix(vocab.FILE_SUFFIX)
    reason = None
    if not stem.strip():
        reason = "empty name"
    elif stem != stem.strip():
        reason = "leading or trailing whitespace"
    elif "/" in stem or "\\" in stem:
        reason = "path separator"
    elif ".." in stem:
        reason = "'..'"
    elif stem[0] in ".-":
        reason = "leading dot or dash"
    elif any(unicodedata.category(c) in ("Cc", "Cf", "Cs", "Co", "Zl", "Zp") for c in stem):
        reason = "control or invisible character"
    elif len(file_name.encode("utf-8")) > MAX_FILE_NAME_BYTES:
        reason = f"longer than {MAX_FILE_NAME_BYTES} bytes"
    if reason:
        raise UnsafeNameError(f"system name {name!r} cannot be a file name: {reason}")
    return file_name


def sexagesimal(degrees: float, *, hours: bool) -> str:
    """``hh mm ss.ss`` / ``±dd mm ss.ss`` as OEC writes positions (README)."""
    value = (degrees % 360.0) / 15.0 if hours else degrees
    sign = "-" if value < 0 else "+"
    # Round once in hundredths of an arcsecond/second so 59.999 never prints as 60.00.
    hundredths = round(abs(value) * 360000)
    whole, rest = divmod(hundredths, 360000)
    minutes, rest = divmod(rest, 6000)
    seconds = f"{rest // 100:02d}.{rest % 100:02d}"
    if hours:
        return f"{whole % 24:02d} {minutes:02d} {seconds}"
    return f"{sign}{whole:02d} {minutes:02d} {seconds}"


def constellation_of(rightascension: str, declination: str) -> str:
    """The constellation OEC's CI would compute from the file's RA/Dec text."""
    return constellations_of([(rightascension, declination)])[0]


def constellations_of(
    positions: Sequence[tuple[str, str]], known: Store | None = None
) -> list[str]:
    """Constellations of many RA/Dec texts in one astropy call (one call costs ~25 ms, and
    importing astropy's coordinates 0.5 s). ``known`` keeps each position's answer (kind
    ``constellation``, keyed by astropy's version, whose data file decides it): a run whose
    new systems sit where they sat imports nothing."""
    if not positions:
        return []
    known = known or Forgetful()
    version = _astropy_version()
    names: dict[tuple[str, str], str] = {}
    for position in positions:
        if (stored := known.get("constellation", " ".join(position), version)) is not None:
            names[position] = stored.decode()
    unknown = sorted({p for p in positions if p not in names})
    if unknown:
        from astropy.coordinates import SkyCoord, get_constellation  # slow import: on demand

        ras, decs = [], []
        for rightascension, declination in unknown:
            ra = rightascension.split(" ")
            dec = declination.split(" ")
            ras.append(f"{ra[0]}h{ra[1]}m{ra[2]}s")
            decs.append(f"{dec[0]}d{dec[1]}m{dec[2]}s")
        found = get_constellation(SkyCoord(ras, decs))
        for position, name in zip(unknown, found, strict=True):
            # astropy's data file has "Crux " with a trailing space; CI strips values.
            names[position] = str(name).strip()
            known.put("constellation", " ".join(position), version, names[position].encode())
    return [names[p] for p in positions]


def _astropy_version() -> str:
    return importlib.metadata.version("astropy")


# System children that are not values of a new file's <system> (or are written apart).
_NOT_SYSTEM_VALUES = ("name", "constellation", "rightascension", "declination")


def _merged_from(
    records: Sequence[PlanetRecord], part: str
) -> dict[str, tuple[Value, PlanetRecord]]:
    """Star or system values over all records, each with the record it came from: the first
    record with a value wins."""
    merged: dict[str, tuple[Value, PlanetRecord]] = {}
    for record in records:
        for tag, value in getattr(record, part).items():
            if tag not in merged and has_content(value):
                merged[tag] = (value, record)
    return merged


def _merged(records: Sequence[PlanetRecord], part: str) -> dict[str, Value]:
    return {tag: value for tag, (value, _) in _merged_from(records, part).items()}


def _position_from(
    records: Sequence[PlanetRecord], system: dict[str, Value]
) -> tuple[str, str, PlanetRecord | None] | None:
    """RA/Dec text of a new system and the record whose row/float position gave it (None
    when it came from the system values themselves)."""
    ra, dec = system.get("rightascension"), system.get("declination")
    if ra is not None and ra.value and dec is not None and dec.value:
        return ra.value.strip(), dec.value.strip(), None
    for record in records:
        if record.ra is not None and record.dec is not None:
            ra_text = sexagesimal(record.ra, hours=True)
            return ra_text, sexagesimal(record.dec, hours=False), record
    return None


def _position(records: Sequence[PlanetRecord], system: dict[str, Value]) -> tuple[str, str] | None:
    found = _position_from(records, system)
    return None if found is None else (found[0], found[1])


def host_values(records: Sequence[PlanetRecord]) -> list[tuple[str, str, Value, PlanetRecord]]:
    """What a new system file says about its system and star besides names and
    constellation, as (``system`` or ``star``, tag, value, record it came from), in the
    file's order: the provenance a pull request shows for each value."""
    system = _merged_from(records, "system")
    values = {tag: pair for tag, pair in system.items() if tag not in _NOT_SYSTEM_VALUES}
    position = _position_from(records, {tag: value for tag, (value, _) in system.items()})
    if position is not None:
        ra_text, dec_text, origin = position
        for tag, text in (("rightascension", ra_text), ("declination", dec_text)):
            record = origin or system[tag][1]
            values[tag] = (Value(value=text), record)
    star = {tag: pair for tag, pair in _merged_from(records, "star").items() if tag != "name"}
    rows: list[tuple[str, str, Value, PlanetRecord]] = []
    for part, found in ((vocab.SYSTEM, values), (vocab.STAR, star)):
        for tag in sorted(found, key=lambda t: rank(part, t)):
            rows.append((part, tag, *found[tag]))
    return rows


def _append_fields(obj: etree._Element, values: dict[str, Value]) -> None:
    for tag in sorted(values, key=lambda t: rank(obj.tag, t)):
        obj.append(leaf(tag, values[tag]))


def render_new_system(records: list[PlanetRecord]) -> tuple[str, str]:
    """(file name, file text) of a new system file holding the planets of one host."""
    result = render_new_systems([records])[0]
    if isinstance(result, Exception):
        raise result
    return result


def render_new_systems(
    hosts: Sequence[Sequence[PlanetRecord]], known: Store | None = None
) -> list[tuple[str, str] | ValueError | UnsafeNameError]:
    """:func:`render_new_system` for many hosts, with one astropy call for all positions
    (none for those ``known`` holds: :func:`constellations_of`).

    Each item is (file name, file text), or the error that host's records raised.
    """
    built: list[tuple[str, etree._Element, tuple[str, str] | None] | ValueError | UnsafeNameError]
    built = []
    for records in hosts:
        try:
            built.append(_build_system(list(records)))
        except (ValueError, UnsafeNameError) as exc:
            built.append(exc)
    placed = [b for b in built if not isinstance(b, Exception) and b[2] is not None]
    names = constellations_of([b[2] for b in placed], known)  # type: ignore[misc]
    for (_, root, _), name in zip(placed, names, strict=True):
        etree.SubElement(root, "constellation").text = name
    results: list[tuple[str, str] | ValueError | UnsafeNameError] = []
    for item in built:
        if isinstance(item, Exception):
            results.append(item)
            continue
        file_name, root, _ = item
        indent_block(root, 0)  # one TAB per level, as OEC's CI indents
        results.append((file_name, serialize(root)))
    return results


def _build_system(
    records: list[PlanetRecord],
) -> tuple[str, etree._Element, tuple[str, str] | None]:
    """(file name, tree without constellation, RA/Dec text) of a new system file.

    ``<system>``: name, rightascension, declination, distance, other system values, one
    ``<star>`` (host name and aliases, star values in template order, the planets), and
    ``<constellation>`` last, computed from RA/Dec with astropy as OEC's CI would (the
    README says CI rewrites a file without one).

    The host is the first record's ``host``; other host spellings become star aliases. The
    text passes :func:`common.oec.validate.ensure_valid` whenever the records allow it:
    records without a position give a file without RA/Dec/constellation, and a planet
    without a valid status or (if confirmed) a discovery method gives a file the validator
    refuses, so the caller must still validate. ValueError for a value whose tag never goes
    into its object (a programming error in a catalogue reader).
    """
    if not records:
        raise ValueError("no planets to write")
    host = records[0].host
    if not host:
        raise ValueError(f"no host name for {records[0].name}")
    file_name = system_file_name(host)
    everything = _merged(records, "system")
    system_values = {
        tag: value for tag, value in everything.items() if tag not in _NOT_SYSTEM_VALUES
    }
    star_values = {tag: value for tag, value in _merged(records, "star").items() if tag != "name"}
    position = _position(records, everything)
    if position is not None:
        system_values["rightascension"] = Value(value=position[0])
        system_values["declination"] = Value(value=position[1])

    root = etree.Element(vocab.SYSTEM)
    etree.SubElement(root, "name").text = host
    _append_fields(root, system_values)
    star = etree.SubElement(root, vocab.STAR)
    host_names = [host]
    for record in records:
        for name in [record.host, *record.host_aliases]:
            if name and name.strip() and name.strip() not in host_names:
                host_names.append(name.strip())
    for name in host_names:
        etree.SubElement(star, "name").text = name
    _append_fields(star, star_values)
    for record in records:
        star.append(planet_element(record, vocab.STAR, vocab.SYSTEM))
    return file_name, root, position
