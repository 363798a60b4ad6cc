"""New OEC system files, written as a maintainer fills in template.xml."""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence

from lxml import etree

from common.errors import InvalidSystemFileError, UnsafeNameError
from common.oec import vocab
from common.oec.edit import indent_block, leaf, planet_element, rank
from common.oec.tree import serialize
from common.oec.validate import ensure_valid
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


def _sexagesimal(degrees: float, *, hours: bool) -> str:
    """``hh mm ss.ss`` / ``±dd mm ss.ss`` as OEC writes positions (README)."""
    value = degrees / 15.0 if hours else degrees
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
    from astropy.coordinates import SkyCoord, get_constellation  # slow import: on demand

    ra = rightascension.split(" ")
    dec = declination.split(" ")
    coord = SkyCoord(f"{ra[0]}h{ra[1]}m{ra[2]}s", f"{dec[0]}d{dec[1]}m{dec[2]}s")
    return str(get_constellation(coord))


def _merged(records: Sequence[PlanetRecord], part: str) -> dict[str, Value]:
    """Star or system values over all records: the first record with a value wins."""
    merged: dict[str, Value] = {}
    for record in records:
        for tag, value in getattr(record, part).items():
            if tag not in merged and (value.value is not None or value.attributes()):
                merged[tag] = value
    return merged


def _position(records: Sequence[PlanetRecord], system: dict[str, Value]) -> tuple[str, str]:
    ra, dec = system.get("rightascension"), system.get("declination")
    if ra is not None and ra.value and dec is not None and dec.value:
        return ra.value, dec.value
    for record in records:
        if record.ra is not None and record.dec is not None:
            return _sexagesimal(record.ra, hours=True), _sexagesimal(record.dec, hours=False)
    host = records[0].host or records[0].name
    # CI computes <constellation> from the position; a file without one would be rewritten.
    raise InvalidSystemFileError(
        system_file_name(host), ["constellation: no position to compute the constellation"]
    )


def _append_fields(obj: etree._Element, values: dict[str, Value]) -> None:
    for tag in sorted(values, key=lambda t: rank(obj.tag, t)):
        obj.append(leaf(tag, values[tag]))


def render_new_system(records: list[PlanetRecord]) -> tuple[str, str]:
    """(file name, file text) of a new system file holding the planets of one host.

    ``<system>``: name, rightascension, declination, distance, other system values, one
    ``<star>`` (host name and aliases, star values in template order, the planets), and
    ``<constellation>`` last, computed from RA/Dec with astropy as OEC's CI would.
    The text passes :func:`common.oec.validate.ensure_valid`.
    """
    if not records:
        raise ValueError("no planets to write")
    hosts = {record.host for record in records}
    if len(hosts) != 1 or None in hosts:
        raise ValueError(f"the records must share one host, got {sorted(map(str, hosts))}")
    host = str(records[0].host)
    file_name = system_file_name(host)
    system_values = _merged(records, "system")
    for tag in ("name", "constellation", "rightascension", "declination"):
        system_values.pop(tag, None)
    star_values = _merged(records, "star")
    star_values.pop("name", None)
    rightascension, declination = _position(records, _merged(records, "system"))
    system_values["rightascension"] = Value(value=rightascension)
    system_values["declination"] = Value(value=declination)

    root = etree.Element(vocab.SYSTEM)
    etree.SubElement(root, "name").text = host
    _append_fields(root, system_values)
    star = etree.SubElement(root, vocab.STAR)
    host_names = [host]
    for record in records:
        host_names += [n for n in record.host_aliases if n and n not in host_names]
    for name in host_names:
        etree.SubElement(star, "name").text = name
    _append_fields(star, star_values)
    for record in records:
        star.append(planet_element(record, vocab.STAR, vocab.SYSTEM))
    etree.SubElement(root, "constellation").text = constellation_of(rightascension, declination)

    indent_block(root, 0)  # one TAB per level, as OEC's CI indents
    text = serialize(root)
    ensure_valid(text, file_name)
    return file_name, text
