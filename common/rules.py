"""Merge rules: which catalogue value goes into which OEC field, and why not.

Pure functions: a canonical record, what the index matched, and the system file's text in,
a field-level :class:`SystemPatch` out. The rules, field by field:

1. **Add** a value OEC does not have (no tag, or an empty one), from any source, any date.
2. **Replace** a value only when all three hold:
   - it differs beyond the tolerance of :func:`common.numbers.same_value` (half a unit in
     the last written place of either text, or 0.1 % — whichever is larger; magnitudes
     also need to differ by more than 0.05 mag, the scatter between photometric systems);
   - the source's date for the row is later than the OEC object's date. A planet's date is
     its ``<lastupdate>``; a star's or system's is the newest ``<lastupdate>`` of the planets
     under it. An object without any date is never overwritten, only completed;
   - it is better, not just other (:func:`improves`): OEC's value has no uncertainty, or
     the new one is more precise (uncertainty at least a fifth smaller), or the two
     disagree by more than their combined uncertainty. Another paper's equally good value
     is churn, and a catalogue's row date does not say how old its value is (NASA's
     composite table mixes references).
   How rows are dated is the readers' business and is stated in each record's ``dated_by``:
   exoplanet.eu's per-row ``updated``; NASA's ``rowupdate`` in the ``ps`` table; for
   ``pscomppars``, which has no per-row date, the catalogue's own release date (the web
   download's header) or else the download date.
3. Never an assumption: an eccentricity of exactly 0 without uncertainty is a fit's
   circular orbit, not a measurement. Never a downgrade: a limit does not replace a
   measured value, an ``msini`` does not replace a true mass, and text fields (discovery
   method, spectral type) and positions (RA/Dec) are only ever added, never rewritten:
   they are a maintainer's judgement.
4. Errors and limits travel with their value: a replaced value brings its own errors (or
   none) and its own limit attributes, never a mix of old and new.
5. Never a value OEC would reject or flag: out-of-range values (eccentricity >= 1, negative
   masses, a confirmed planet above 60 Jupiter masses ...) are dropped with a reason.
6. Only planets OEC lists as Confirmed or Controversial are touched; Solar System, Kepler
   Objects of Interest and Retracted entries are a maintainer's call.
7. ``<lastupdate>`` is derived when patches are folded (:func:`fold`): a changed planet gets
   the newest source date of its surviving changes, never earlier than what it had.

When NASA and exoplanet.eu both change one field, :func:`fold` keeps the change with the
later source date; on the same date NASA wins, because its composite table names the
reference of every value and flags limits explicitly.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Iterable
from functools import lru_cache

from lxml import etree

from common.changes import ChangeKind, FieldChange, NewPlanet, SystemPatch
from common.matching import Match, MatchKind
from common.numbers import parse_number, same_value
from common.oec import tree
from common.oec.names import split_planet_name
from common.records import PlanetRecord, Source, Value

TEXT_FIELDS = frozenset({"discoverymethod", "spectraltype", "discoveryyear"})
ADD_ONLY_FIELDS = TEXT_FIELDS | {"rightascension", "declination"}
EDITABLE_LISTS = frozenset({"Confirmed planets", "Controversial"})
NEW_OBJECT_STATUS = "Confirmed planets"
MAX_CONFIRMED_MASS_MJUP = 60.0
MAGNITUDE_TOLERANCE = 0.05  # mag
# "More precise" means an uncertainty at least a fifth smaller: Kepler-1329's distance
# 597.9 ±12.3 -> 588.0 ±12.0 is another fit of the same data, not news.
PRECISION_GAIN = 0.8  # OEC's CI flags confirmed planets above this

# (low, high) inclusive bounds a value must lie in before we write it; OEC units.
PLAUSIBLE_RANGE: dict[str, tuple[float, float]] = {
    "mass": (0.0, float("inf")),
    "radius": (0.0, float("inf")),
    "period": (0.0, float("inf")),
    "semimajoraxis": (0.0, float("inf")),
    "eccentricity": (0.0, 0.9999),
    "inclination": (0.0, 180.0),
    "periastron": (-360.0, 360.0),
    "temperature": (0.0, 1e6),
    "distance": (0.0, float("inf")),
    "metallicity": (-5.0, 2.0),
    "age": (0.0, 14.0),
    "discoveryyear": (1900.0, 2100.0),
}
POSITIVE_FIELDS = frozenset({"mass", "radius", "period", "semimajoraxis", "distance"})


def _sigma(value: Value) -> float | None:
    """The mean of a value's two errors, or None when it has none."""
    plus, minus = parse_number(value.errorplus), parse_number(value.errorminus)
    return None if plus is None or minus is None else (plus + minus) / 2


def improves(old: Value, new: Value) -> bool:
    """Whether a measured ``new`` is better than a measured, different ``old``."""
    old_sigma, new_sigma = _sigma(old), _sigma(new)
    if old_sigma is None:
        return True
    if new_sigma is not None and new_sigma < PRECISION_GAIN * old_sigma:
        return True
    a, b = parse_number(old.value), parse_number(new.value)
    if a is None or b is None:
        return False
    return abs(b - a) > math.hypot(old_sigma, new_sigma or 0.0)


@lru_cache(maxsize=4096)
def parse_lastupdate(text: str | None) -> dt.date | None:
    """OEC's ``yy/mm/dd`` as a date (all OEC dates are in this century), or None."""
    if not text:
        return None
    try:
        yy, mm, dd = (int(p) for p in text.strip().split("/"))
        return dt.date(2000 + yy, mm, dd)
    except ValueError:
        return None


def format_lastupdate(date: dt.date) -> str:
    return date.strftime("%y/%m/%d")


def _numbers(value: Value) -> Iterable[str]:
    return (t for t in (value.value, value.lowerlimit, value.upperlimit) if t is not None)


def implausible(field: str, value: Value, status: str | None = None) -> str | None:
    """Why OEC would reject or flag ``value`` for ``field``, or None when it is fine."""
    if field in TEXT_FIELDS and field != "discoveryyear":
        return None
    bounds = PLAUSIBLE_RANGE.get(field)
    for text in _numbers(value):
        number = parse_number(text)
        if number is None:
            if field.startswith("mag") or bounds is not None:
                return f"{field} {text!r} is not a number"
            continue
        if field in POSITIVE_FIELDS and number <= 0:
            return f"{field} {text} is not positive"
        if bounds and not bounds[0] <= number <= bounds[1]:
            return f"{field} {text} outside {bounds[0]}..{bounds[1]}"
    if field == "mass" and status == NEW_OBJECT_STATUS and value.value is not None:
        mass = parse_number(value.value)
        if mass is not None and mass > MAX_CONFIRMED_MASS_MJUP:
            return (
                f"mass {value.value} MJup above {MAX_CONFIRMED_MASS_MJUP:g} for a confirmed planet"
            )
    return None


def _is_empty(value: Value | None) -> bool:
    return value is None or (
        value.value is None and value.lowerlimit is None and value.upperlimit is None
    )


def decide(
    field: str,
    old: Value | None,
    new: Value,
    source_date: dt.date | None,
    object_date: dt.date | None,
) -> ChangeKind | None:
    """Whether ``new`` should go into a field that holds ``old``; None keeps OEC's value."""
    if _is_empty(new) or _is_assumption(field, new):
        return None
    if _is_empty(old):
        return ChangeKind.ADDED
    assert old is not None
    if field in ADD_ONLY_FIELDS:
        return None
    if source_date is None or object_date is None or source_date <= object_date:
        return None
    if old.value is not None and new.value is None:
        return None  # a limit never replaces a measurement
    if old.type != "msini" and new.type == "msini" and field == "mass":
        return None  # a minimum mass never replaces a true mass
    if field == "mass" and old.type == "msini" and new.type != "msini" and new.value is not None:
        return ChangeKind.UPDATED  # a true mass replaces a minimum mass, even the same number
    if new.value is not None and old.value is not None:
        if same_value(old.value, new.value, MAGNITUDE_TOLERANCE if field.startswith("mag") else 0):
            return None
        return ChangeKind.UPDATED if improves(old, new) else None
    if new.value is not None:
        return ChangeKind.UPDATED  # a measurement replaces a limit
    old_limits = (old.lowerlimit, old.upperlimit)
    new_limits = (new.lowerlimit, new.upperlimit)
    for a, b in zip(old_limits, new_limits, strict=True):
        if (a is None) != (b is None) or (a is not None and b is not None and not same_value(a, b)):
            return ChangeKind.UPDATED
    return None


def _is_assumption(field: str, value: Value) -> bool:
    """An eccentricity of exactly 0 with no uncertainty is a circular orbit assumed by the
    fit (NASA's composite table is full of them), not a measurement."""
    return (
        field == "eccentricity"
        and value.errorplus is None
        and value.value is not None
        and parse_number(value.value) == 0
    )


def _object_date(element: etree._Element) -> dt.date | None:
    """An object's date: its own lastupdate, or the newest of the planets under it."""
    dates = [parse_lastupdate(e.text) for e in element.iter("lastupdate")]
    known = [d for d in dates if d is not None]
    return max(known) if known else None


def _field_changes(
    record: PlanetRecord,
    element: etree._Element,
    proposed: dict[str, Value],
    status: str | None,
) -> tuple[list[FieldChange], list[str]]:
    current = tree.values_of(element, proposed.keys())
    names = tree.names_of(element)
    label = names[0] if names else element.tag
    object_date = _object_date(element)
    changes: list[FieldChange] = []
    dropped: list[str] = []
    for field, new in proposed.items():
        kind = decide(field, current.get(field), new, record.updated, object_date)
        if kind is None:
            continue
        if reason := implausible(field, new, status):
            dropped.append(f"{label}: {reason}")
            continue
        changes.append(
            FieldChange(
                object=label,
                path=tree.path_of(element),
                field=field,
                kind=kind,
                old=current.get(field),
                new=new,
                source=record.source,
                source_date=record.updated,
                source_dated_by=record.dated_by,
                source_catalogue=record.catalogue,
                source_url=record.url,
                source_row=record.row,
            )
        )
    return changes, dropped


def _host_changes(
    record: PlanetRecord, host: etree._Element
) -> tuple[list[FieldChange], list[str]]:
    """Star fields go to the host when it is a star; system fields to the root."""
    changes: list[FieldChange] = []
    dropped: list[str] = []
    if host.tag == "star":
        c, d = _field_changes(record, host, record.star, None)
        changes += c
        dropped += d
    root = host.getroottree().getroot()
    c, d = _field_changes(record, root, record.system, None)
    return changes + c, dropped + d


# The deuterium-burning limit: an object without a host star goes into OEC (as a system and
# a star of its own name, the planet inside) only when its mass may lie below it. The
# maintainer took the free-floating objects of exoplanet.eu up to 13 (15 ±2) MJup and none
# from 16 up (2MASS J0153-6744 at 17, Teide 1 at 54 are brown dwarfs).
PLANETARY_MASS_LIMIT_MJUP = 13.0
_MOON = re.compile(r"\s[a-z]\s+[IVX]+$")  # a planet's name and a Roman numeral


def _may_be_planetary(mass: Value) -> bool:
    """Whether a mass, or its lower error bar, or an upper limit, is within the limit."""
    low = parse_number(mass.upperlimit if mass.value is None else mass.value)
    if low is not None and mass.value is not None:
        low -= parse_number(mass.errorminus) or 0.0
    return low is not None and low <= PLANETARY_MASS_LIMIT_MJUP


def _not_addable(record: PlanetRecord) -> str | None:
    """Why a planet cannot go into OEC as a new confirmed planet, or None."""
    if "discoverymethod" not in record.planet:
        # OEC's CI rejects a confirmed planet without one; the catalogue's method
        # (exoplanet.eu's "Other", its old "Default") has no OEC word.
        return "no discovery method in OEC's vocabulary"
    if _MOON.search(record.name):
        return "a moon, not a planet (exoplanet.eu's Kepler-1625 b I)"
    mass = record.planet.get("mass", Value())
    if not record.host and split_planet_name(record.name) is None and not _may_be_planetary(mass):
        return (
            f"no host star, and no mass that may lie below {PLANETARY_MASS_LIMIT_MJUP:g} MJup:"
            " not known to be a planetary-mass object"
        )
    return implausible("mass", mass, record.status)


@lru_cache(maxsize=16)
def _parsed(system_text: str) -> etree._Element:
    """The tree of a system file, kept for the next rows: catalogues list a system's
    planets one after another. Never modified here, only read."""
    return tree.parse_system(system_text)


class MergeResult:
    """A patch (possibly empty) and the reasons values were left out."""

    def __init__(self, patch: SystemPatch | None, notes: list[str]) -> None:
        self.patch = patch
        self.notes = notes

    @property
    def changed(self) -> bool:
        return self.patch is not None and not self.patch.is_empty


def merge(record: PlanetRecord, match: Match, system_text: str | None, commit: str) -> MergeResult:
    """The field-level patch that brings one OEC system up to one catalogue record."""
    if match.kind is MatchKind.AMBIGUOUS:
        return MergeResult(None, [f"ambiguous: {', '.join(match.candidates)}"])
    if match.kind is MatchKind.NONE:
        if record.status != NEW_OBJECT_STATUS:
            return MergeResult(None, [f"not in OEC and listed as {record.status}"])
        if reason := _not_addable(record):
            return MergeResult(None, [f"new system refused: {reason}"])
        return MergeResult(SystemPatch(file="", base_commit=commit, new_system=[record]), [])
    assert match.file is not None and match.path is not None and system_text is not None
    root = _parsed(system_text)
    element = tree.find(root, match.path)
    patch = SystemPatch(file=match.file, base_commit=commit)
    if match.kind is MatchKind.HOST:
        # A Controversial planet joins a host OEC has, listed so (TOI-561 f), but never
        # founds a new system: the maintainer took none of those.
        if record.status not in EDITABLE_LISTS:
            return MergeResult(None, [f"new planet listed as {record.status}"])
        if reason := _not_addable(record):
            return MergeResult(None, [f"new planet refused: {reason}"])
        patch.new_planets.append(NewPlanet(parent_path=match.path, record=record))
        patch.changes, notes = _host_changes(record, element)
        return MergeResult(patch, notes)
    lists = set(tree.lists_of(element))
    if not lists & EDITABLE_LISTS:
        return MergeResult(None, [f"OEC lists it as {', '.join(sorted(lists)) or 'nothing'}"])
    status = NEW_OBJECT_STATUS if NEW_OBJECT_STATUS in lists else None
    changes, notes = _field_changes(record, element, record.planet, status)
    host_changes, host_notes = _host_changes(record, element.getparent())
    patch.changes = changes + host_changes
    return MergeResult(patch, notes + host_notes)


def _precedence(change: FieldChange) -> tuple[dt.date, int, int]:
    """Later source date first; on the same date NASA before exoplanet.eu; then the earlier
    row, so that the choice never depends on the order patches arrive in."""
    return (
        change.source_date or dt.date.min,
        1 if change.source is Source.NASA else 0,
        -(change.source_row or 0),
    )


def fold(patches: list[SystemPatch], system_text: str | None) -> SystemPatch:
    """All patches of one system (both sources, all planets) as one, with lastupdates.

    One change per (object, field), chosen by :func:`_precedence`; new planets from both
    sources that share a name are one planet, fields taken by the same precedence.
    """
    first = patches[0]
    winners: dict[tuple[str, str], FieldChange] = {}
    for patch in patches:
        for change in patch.changes:
            key = (change.path, change.field)
            if key not in winners or _precedence(change) > _precedence(winners[key]):
                winners[key] = change
    changes = sorted(winners.values(), key=lambda c: (c.path, c.field))
    new_planets = _fold_new_planets([p for patch in patches for p in patch.new_planets])
    folded = SystemPatch(file=first.file, base_commit=first.base_commit, changes=changes)
    folded.new_planets = new_planets
    if system_text is not None:
        folded.changes += _lastupdate_changes(changes, system_text)
    return folded


def _fold_new_planets(new_planets: list[NewPlanet]) -> list[NewPlanet]:
    from common.oec.names import normalise

    groups: list[list[NewPlanet]] = []
    keys: list[set[str]] = []
    for planet in new_planets:
        planet_keys = {normalise(n) for n in planet.record.all_names}
        for group, group_keys in zip(groups, keys, strict=True):
            if group[0].parent_path == planet.parent_path and group_keys & planet_keys:
                group.append(planet)
                group_keys |= planet_keys
                break
        else:
            groups.append([planet])
            keys.append(planet_keys)
    return [
        NewPlanet(parent_path=g[0].parent_path, record=merge_records([p.record for p in g]))
        for g in groups
    ]


def merge_records(records: list[PlanetRecord]) -> PlanetRecord:
    """One record for one new object seen by several sources: fields by precedence."""
    ordered = sorted(
        records,
        key=lambda r: (r.updated or dt.date.min, 1 if r.source is Source.NASA else 0, -r.row),
        reverse=True,
    )
    best = ordered[0]
    merged = best.model_copy(deep=True)
    for other in ordered[1:]:
        for part in ("planet", "star", "system"):
            target: dict[str, Value] = getattr(merged, part)
            for field, value in getattr(other, part).items():
                target.setdefault(field, value)
        known = {n.casefold() for n in merged.all_names}
        merged.aliases += [n for n in other.all_names if n.casefold() not in known]
        host_known = {n.casefold() for n in merged.host_names}
        merged.host_aliases += [n for n in other.host_names if n.casefold() not in host_known]
    return merged


def _lastupdate_changes(changes: list[FieldChange], system_text: str) -> list[FieldChange]:
    """Move each changed planet's lastupdate to its newest source date, never backwards."""
    root = tree.parse_system(system_text)
    newest: dict[str, FieldChange] = {}
    for change in changes:
        element = tree.find(root, change.path)
        if element.tag != "planet" or change.source_date is None:
            continue
        best = newest.get(change.path)
        if best is None or _precedence(change) > _precedence(best):
            newest[change.path] = change
    result: list[FieldChange] = []
    for path, change in newest.items():
        planet = tree.find(root, path)
        old_element = planet.find("lastupdate")
        old_date = parse_lastupdate(old_element.text if old_element is not None else None)
        assert change.source_date is not None
        if old_date is not None and old_date >= change.source_date:
            continue
        # Same object and provenance as the change that dates it; only the field differs.
        result.append(
            change.model_copy(
                update={
                    "field": "lastupdate",
                    "kind": ChangeKind.ADDED if old_element is None else ChangeKind.UPDATED,
                    "old": tree.value_of(old_element) if old_element is not None else None,
                    "new": Value(value=format_lastupdate(change.source_date)),
                }
            )
        )
    return result
