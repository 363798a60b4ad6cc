"""Merge rules: which catalogue value goes into which OEC field, and why not.

Pure functions: a canonical record, what the index matched, and the system file's text in,
a field-level :class:`SystemPatch` out; then :func:`fold` decides a system across both
catalogues. A proposal is judged by its worst line, so an update must be an improvement a
maintainer accepts unread, and anything doubtful is a :class:`Conflict` shown to a person.

1. **Add** a value OEC does not have (no tag, or an empty one), from any source, any date.
2. **Replace** a value only when all of these hold:
   - it differs beyond rounding (:func:`same`: half a unit in the last written place of
     either text, or 0.1 %, whichever is larger; magnitudes also by more than 0.05 mag,
     the scatter between photometric systems; angles modulo 360);
   - the source's date for the row is later than the OEC object's date. A planet's date is
     its ``<lastupdate>``; a star's or system's is the newest ``<lastupdate>`` of the planets
     under it. An object without any date is never overwritten, only completed;
   - it is better, not just other (:func:`improves`): it has an uncertainty (a bare number
     never replaces a value or a limit OEC has: 11 Com's Teff 4742 ±100 stays, whatever a
     catalogue prints without error bars), and OEC's has none, or the new one is more precise (an
     uncertainty at least a fifth smaller, absolute and relative), or the two disagree by
     more than their combined uncertainty. An angle that is the same modulo 360 within the
     uncertainties is not rewritten across the wrap. Another paper's equally good value is
     churn, and a catalogue's row date does not say how old its value is.
   How rows are dated is the readers' business and is stated in each record's ``dated_by``:
   exoplanet.eu's per-row ``updated``; NASA's ``rowupdate`` in the ``ps`` table; for
   ``pscomppars``, which has no per-row date, the catalogue's own release date (the web
   download's header) or else the download date.
3. **Identity.** A planet whose period or semimajor axis in a row is more than 20 % from
   OEC's is another solution or another object (GJ 3138 b and c swapped, GJ 1151 c 2.0 d vs
   390 d): none of that row's values for the planet are used, and the jump is a conflict.
4. **The other catalogue has a say** (:func:`fold`). Every merge also sends what its row says
   of the values OEC has (a :class:`Reading`). An update is withheld, as a conflict, when
   the other catalogue agrees with OEC's value (within rounding or 1 %) while the update
   moves it further, or when the two catalogues disagree beyond two combined uncertainties
   and 1 % (a minimum mass and a true mass are not compared). It still goes ahead when it
   is a refinement of every value it differs from: more precise than each and within three
   combined uncertainties (a bare number's rounding counts as its uncertainty), such as a
   Gaia distance over the older one OEC and the other catalogue share.
5. Never an assumption: an eccentricity of exactly 0 without uncertainty is a fit's
   circular orbit, not a measurement, for new planets as for old. Never a downgrade: a
   limit does not replace a measured value, an ``msini`` does not replace a true mass, and
   text fields (discovery method, spectral type) and positions (RA/Dec) are only ever
   added, never rewritten: they are a maintainer's judgement.
6. Errors and limits travel with their value: a replaced value brings its own errors (or
   none) and its own limit attributes, never a mix of old and new.
7. Never a value OEC would reject or flag: out-of-range values (eccentricity >= 1, negative
   masses, a confirmed planet above 60 Jupiter masses ...) are dropped with a reason.
8. Only planets OEC lists as Confirmed or Controversial are touched; Solar System, Kepler
   Objects of Interest and Retracted entries are a maintainer's call.
9. ``<lastupdate>`` is derived when patches are folded: a changed planet gets the newest
   source date of its surviving changes, never earlier than what it had.

When NASA and exoplanet.eu both change one field and neither disputes the other, the change
with the later source date is kept; on the same date NASA wins, because its composite table
names the reference of every value and flags limits explicitly.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections import defaultdict
from collections.abc import Iterable
from functools import lru_cache

from lxml import etree

from common.changes import (
    CatalogueValue,
    ChangeKind,
    Conflict,
    FieldChange,
    NewPlanet,
    Reading,
    SystemPatch,
)
from common.matching import Match, MatchKind
from common.numbers import RELATIVE_TOLERANCE, last_place, parse_number, same_value
from common.oec import tree
from common.oec.names import normalise, split_planet_name
from common.records import PlanetRecord, Source, Value

TEXT_FIELDS = frozenset({"discoverymethod", "spectraltype", "discoveryyear"})
ANGLE_FIELDS = frozenset({"periastron", "longitude", "ascendingnode", "meananomaly"})
# A planet's period or orbit that moves this much is another solution or another object
# (GJ 3138 b and c swapped, GJ 1151 c 2.0 d -> 390 d), never a refinement.
IDENTITY_FIELDS = frozenset({"period", "semimajoraxis"})
IDENTITY_JUMP = 0.20
IDENTITY_REASON = "would move more than 20 %: another solution or another object?"
# Two values within 1 % say the same thing, whatever their uncertainties claim: how the
# catalogues round and convert moves values by that much.
AGREEMENT = 0.01
# Catalogues that disagree by more than this many combined uncertainties disagree; an update
# more precise than an agreeing OEC and catalogue must still lie within three of them.
DISAGREEMENT_SIGMAS = 2.0
REFINEMENT_SIGMAS = 3.0
ADD_ONLY_FIELDS = TEXT_FIELDS | {"rightascension", "declination"}
EDITABLE_LISTS = frozenset({"Confirmed planets", "Controversial"})
SOLAR_SYSTEM = "Solar System"
NEW_OBJECT_STATUS = "Confirmed planets"
MAX_CONFIRMED_MASS_MJUP = 60.0
MAGNITUDE_TOLERANCE = 0.05  # mag
SOURCE_LABELS = {Source.NASA: "NASA", Source.EU: "exoplanet.eu"}
# "More precise" means an uncertainty at least a fifth smaller: Kepler-1329's distance
# 597.9 ±12.3 -> 588.0 ±12.0 is another fit of the same data, not news.
PRECISION_GAIN = 0.8

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


def _gap(field: str, a: float, b: float) -> float:
    """How far apart two values of ``field`` are; angles on the circle (2.4° vs 356°: 6.4°)."""
    if field in ANGLE_FIELDS:
        turn = (b - a) % 360.0
        return min(turn, 360.0 - turn)
    return abs(b - a)


def _scale(field: str, a: float, b: float) -> float:
    """What a relative difference of ``field`` is relative to: half a turn for angles (the
    largest gap there is), 1 dex for the logarithmic metallicity, else the larger value."""
    if field in ANGLE_FIELDS:
        return 180.0
    if field == "metallicity":
        return 1.0
    return max(abs(a), abs(b))


def same(field: str, old: str, new: str) -> bool:
    """:func:`same_value` with the field's own tolerance: magnitudes also within 0.05 mag,
    angles compared modulo 360."""
    if field in ANGLE_FIELDS:
        a, b = parse_number(old), parse_number(new)
        if a is not None and b is not None:
            rounding = max(last_place(old), last_place(new), RELATIVE_TOLERANCE * 360.0)
            return _gap(field, a, b) <= rounding
    return same_value(old, new, MAGNITUDE_TOLERANCE if field.startswith("mag") else 0.0)


def more_precise(field: str, old: Value, new: Value) -> bool:
    """Whether ``new``'s uncertainty is at least a fifth smaller than ``old``'s, absolute and
    (but for angles) relative to the value: a smaller error on a smaller value is no gain."""
    old_sigma, new_sigma = _sigma(old), _sigma(new)
    if new_sigma is None:
        return False
    if old_sigma is None:
        return True
    if new_sigma >= PRECISION_GAIN * old_sigma:
        return False
    a, b = parse_number(old.value), parse_number(new.value)
    if field in ANGLE_FIELDS or not a or not b:
        return True
    return new_sigma / abs(b) < PRECISION_GAIN * old_sigma / abs(a)


def consistent(field: str, a: Value, b: Value, sigmas: float = DISAGREEMENT_SIGMAS) -> bool:
    """Whether two measured values say the same: equal within rounding, within 1 %, or
    within ``sigmas`` combined uncertainties (a bare number's is its rounding)."""
    if a.value is None or b.value is None:
        return (a.value is None) == (b.value is None)
    if same(field, a.value, b.value):
        return True
    x, y = parse_number(a.value), parse_number(b.value)
    if x is None or y is None:
        return False
    gap = _gap(field, x, y)
    if gap <= AGREEMENT * _scale(field, x, y):
        return True
    return gap <= sigmas * math.hypot(_uncertainty(a), _uncertainty(b))


def _uncertainty(value: Value) -> float:
    """A value's uncertainty; for a bare number, the rounding its digits admit ("53": 0.5)."""
    sigma = _sigma(value)
    return sigma if sigma is not None else last_place(value.value or "")


def agrees(field: str, a: Value, b: Value) -> bool:
    """Whether ``b`` says what ``a`` says: the same within rounding or within 1 %."""
    return consistent(field, a, b, sigmas=0.0)


def improves(field: str, old: Value, new: Value) -> bool:
    """Whether a measured ``new`` is better than a measured, different ``old``.

    A value without an uncertainty is never better than one OEC has: it is not exact, it
    only says less (11 Com's Teff 4742 ±100 is not improved by a bare 4874). Otherwise
    ``new`` is better when OEC's has no uncertainty, when it is :func:`more_precise`, or
    when the two disagree beyond their combined uncertainty. An angle that is the same
    modulo 360 within the uncertainties is not rewritten across the wrap (55 Cnc c's
    periastron 2.4 ±46 is not "changed" to 356 ±22).
    """
    old_sigma, new_sigma = _sigma(old), _sigma(new)
    if new_sigma is None:
        return False
    if old_sigma is None:
        return True
    a, b = parse_number(old.value), parse_number(new.value)
    if a is None or b is None:
        return False
    gap = _gap(field, a, b)
    across_the_wrap = field in ANGLE_FIELDS and abs(b - a) > 180.0
    if more_precise(field, old, new) and not across_the_wrap:
        return True
    return gap > math.hypot(old_sigma, new_sigma)


def _both_have(field: str, current: dict[str, Value], proposed: dict[str, Value]) -> bool:
    old, new = current.get(field), proposed.get(field)
    return old is not None and new is not None and None not in (old.value, new.value)


def identity_jump(field: str, old: Value | None, new: Value) -> float | None:
    """The relative move of a planet's period or semimajor axis when it is beyond
    :data:`IDENTITY_JUMP`, else None."""
    if field not in IDENTITY_FIELDS or old is None:
        return None
    a, b = parse_number(old.value), parse_number(new.value)
    if not a or b is None:
        return None
    move = abs(b - a) / abs(a)
    return move if move > IDENTITY_JUMP else None


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
    if _is_assumption(field, old):
        # OEC's bare 0 is an assumed circular orbit, not a value to compare by its rounding.
        return ChangeKind.UPDATED if _sigma(new) is not None else None
    if old.value is not None and new.value is None:
        return None  # a limit never replaces a measurement
    if old.type != "msini" and new.type == "msini" and field == "mass":
        return None  # a minimum mass never replaces a true mass
    if field == "mass" and old.type == "msini" and new.type != "msini" and new.value is not None:
        # A true mass replaces a minimum mass, even the same number, but a bare one does not
        # (kappa CrB b: msini 1.6 -> a bare 2 from NASA, while exoplanet.eu says 1.6).
        return ChangeKind.UPDATED if _sigma(new) is not None else None
    if new.value is not None and old.value is not None:
        if same(field, old.value, new.value):
            return None
        return ChangeKind.UPDATED if improves(field, old, new) else None
    if new.value is not None:
        # A measurement replaces a limit; a bare number is often the limit itself printed as
        # a value (WASP-119 b's eccentricity < 0.058 is exoplanet.eu's "0.058").
        return ChangeKind.UPDATED if _sigma(new) is not None else None
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


def relative_size(field: str, values: Iterable[Value | None]) -> float:
    """The largest relative difference between any two of ``values`` (1.0 = 100 %)."""
    numbers = [n for v in values if v is not None and (n := parse_number(v.value)) is not None]
    size = 0.0
    for i, a in enumerate(numbers):
        for b in numbers[i + 1 :]:
            scale = _scale(field, a, b)
            size = max(size, _gap(field, a, b) / scale if scale else 0.0)
    return size


class _Merge:
    """What merging one record into one system file found: changes, conflicts, the reading."""

    def __init__(self, record: PlanetRecord, file: str) -> None:
        self.record = record
        self.changes: list[FieldChange] = []
        self.conflicts: list[Conflict] = []
        self.notes: list[str] = []
        self.reading = Reading(
            file=file,
            source=record.source,
            source_date=record.updated,
            source_dated_by=record.dated_by,
            source_row=record.row,
            source_url=record.url,
        )

    def fields(
        self, element: etree._Element, proposed: dict[str, Value], status: str | None
    ) -> None:
        """Decide every field ``proposed`` for one OEC object."""
        record = self.record
        current = tree.values_of(element, proposed.keys())
        names = tree.names_of(element)
        label = names[0] if names else element.tag
        path = tree.path_of(element)
        object_date = _object_date(element)
        jumped: set[str] = set()
        if element.tag == "planet":
            jumped = self._jumps(label, path, current, proposed, object_date)
            if "period" in jumped or (jumped and not _both_have("period", current, proposed)):
                self.notes.append(f"{label}: another solution or another object; not used")
                return
        for field, new in proposed.items():
            if field in jumped:
                continue
            old = current.get(field)
            if not _is_empty(old) and not _is_empty(new):
                self.reading.values.setdefault(path, {})[field] = new
            kind = decide(field, old, new, record.updated, object_date)
            if kind is None:
                continue
            if reason := implausible(field, new, status):
                self.notes.append(f"{label}: {reason}")
                continue
            self.changes.append(
                FieldChange(
                    object=label,
                    path=path,
                    field=field,
                    kind=kind,
                    old=old,
                    new=new,
                    source=record.source,
                    source_date=record.updated,
                    source_dated_by=record.dated_by,
                    source_catalogue=record.catalogue,
                    source_url=record.url,
                    source_row=record.row,
                )
            )

    def _jumps(
        self,
        label: str,
        path: str,
        current: dict[str, Value],
        proposed: dict[str, Value],
        object_date: dt.date | None,
    ) -> set[str]:
        """The identity fields of a planet whose row value is :func:`identity_jump` away
        from OEC's, each a conflict when the row is newer than the planet.

        A period that far away means another solution or another object, and none of the
        row's values for the planet may be used (14 Her c's periastron "0.01" belongs to
        exoplanet.eu's 52,160-day orbit, not to OEC's 9,886-day one); so does a semimajor
        axis when there is no period to compare. A semimajor axis alone, beside an agreeing
        period, is only itself withheld (another stellar mass behind Kepler's law).
        """
        jumps = {
            field: move
            for field in IDENTITY_FIELDS
            if field in proposed
            and (move := identity_jump(field, current.get(field), proposed[field])) is not None
        }
        date = self.record.updated
        if jumps and date is not None and object_date is not None and date > object_date:
            for field in jumps:
                old, new = current[field], proposed[field]
                self.conflicts.append(
                    Conflict(
                        object=label,
                        path=path,
                        field=field,
                        reason=IDENTITY_REASON,
                        oec=old,
                        values=[catalogue_value(self.reading, new)],
                        size=relative_size(field, [old, new]),
                    )
                )
        return set(jumps)

    def host(self, host: etree._Element) -> None:
        """Star fields go to the host when it is a star; system fields to the root."""
        if host.tag == "star":
            self.fields(host, self.record.star, None)
        self.fields(host.getroottree().getroot(), self.record.system, None)

    def result(self, patch: SystemPatch) -> MergeResult:
        patch.changes = self.changes
        patch.conflicts = self.conflicts
        patch.reading = self.reading if self.reading.values else None
        return MergeResult(patch, self.notes)


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


def addable(record: PlanetRecord) -> PlanetRecord:
    """``record`` without the values a new object must not get: assumptions (a circular
    orbit fixed by the fit) and values OEC would reject."""
    parts: dict[str, dict[str, Value]] = {}
    for part in ("planet", "star", "system"):
        values: dict[str, Value] = getattr(record, part)
        kept = {
            field: value
            for field, value in values.items()
            if not _is_assumption(field, value)
            and implausible(field, value, record.status if part == "planet" else None) is None
        }
        if len(kept) != len(values):
            parts[part] = kept
    return record.model_copy(update=parts) if parts else record


@lru_cache(maxsize=16)
def _parsed(system_text: str) -> etree._Element:
    """The tree of a system file, kept for the next rows: catalogues list a system's
    planets one after another. Never modified here, only read."""
    return tree.parse_system(system_text)


class MergeResult:
    """A patch (possibly without changes, but with conflicts or a reading) and the reasons
    values were left out."""

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
        patch = SystemPatch(file="", base_commit=commit, new_system=[addable(record)])
        return MergeResult(patch, [])
    assert match.file is not None and match.path is not None and system_text is not None
    root = _parsed(system_text)
    element = tree.find(root, match.path)
    patch = SystemPatch(file=match.file, base_commit=commit)
    merging = _Merge(record, match.file)
    if match.kind is MatchKind.HOST:
        if any((e.text or "").strip() == SOLAR_SYSTEM for e in root.iter("list")):
            # exoplanet.eu lists 1I/'Oumuamua and 2I/Borisov as planets of the Sun.
            return MergeResult(None, ["the Solar System is a maintainer's call"])
        # A Controversial planet joins a host OEC has, listed so (TOI-561 f), but never
        # founds a new system: the maintainer took none of those.
        if record.status not in EDITABLE_LISTS:
            return MergeResult(None, [f"new planet listed as {record.status}"])
        if reason := _not_addable(record):
            return MergeResult(None, [f"new planet refused: {reason}"])
        patch.new_planets.append(NewPlanet(parent_path=match.path, record=addable(record)))
        merging.host(element)
        return merging.result(patch)
    lists = set(tree.lists_of(element))
    if not lists & EDITABLE_LISTS:
        return MergeResult(None, [f"OEC lists it as {', '.join(sorted(lists)) or 'nothing'}"])
    status = NEW_OBJECT_STATUS if NEW_OBJECT_STATUS in lists else None
    merging.fields(element, record.planet, status)
    host = element.getparent()
    assert host is not None  # a planet always sits in a system, binary or star
    merging.host(host)
    return merging.result(patch)


def precedence(change: FieldChange) -> tuple[dt.date, int, int]:
    """Later source date first; on the same date NASA before exoplanet.eu; then the earlier
    row, so that the choice never depends on the order patches arrive in."""
    return (
        change.source_date or dt.date.min,
        1 if change.source is Source.NASA else 0,
        -(change.source_row or 0),
    )


def fold(
    patches: list[SystemPatch], system_text: str | None, *, root: etree._Element | None = None
) -> SystemPatch:
    """All patches of one system (both sources, all planets) as one, with lastupdates.

    ``root`` is ``system_text`` already parsed (only read here), to save a parse.

    One change per (object, field), chosen by :func:`precedence`, and kept only when the
    other catalogue does not speak against it (:func:`_dispute`): then it is a conflict, as
    are the conflicts the merges found. New planets from both sources that share a name are
    one planet, fields taken by the same precedence.
    """
    first = patches[0]
    candidates: dict[tuple[str, str], list[FieldChange]] = defaultdict(list)
    said: dict[tuple[str, str], list[CatalogueValue]] = defaultdict(list)
    conflicts: dict[tuple[str, str], Conflict] = {}
    for patch in patches:
        for change in patch.changes:
            candidates[(change.path, change.field)].append(change)
        if patch.reading is not None:
            for path, values in patch.reading.values.items():
                for field, value in values.items():
                    said[(path, field)].append(catalogue_value(patch.reading, value))
        for conflict in patch.conflicts:
            _add_conflict(conflicts, conflict)
    winners: list[FieldChange] = []
    for key, changes in candidates.items():
        best = max(changes, key=precedence)
        if (reason := _dispute(best, changes, said[key])) is None:
            winners.append(best)
            continue
        voices = [catalogue_value(c, c.new) for c in changes] + said[key]
        _add_conflict(
            conflicts,
            Conflict(
                object=best.object,
                path=best.path,
                field=best.field,
                reason=reason,
                oec=best.old,
                values=voices,
                size=relative_size(best.field, [best.old, *(v.value for v in voices)]),
            ),
        )
    changes = sorted(winners, key=lambda c: (c.path, c.field))
    new_planets = _fold_new_planets([p for patch in patches for p in patch.new_planets])
    folded = SystemPatch(file=first.file, base_commit=first.base_commit, changes=changes)
    folded.new_planets = new_planets
    folded.conflicts = sorted(conflicts.values(), key=lambda c: (c.path, c.field))
    if root is None and system_text is not None:
        root = tree.parse_system(system_text)
    if root is not None:
        folded.changes += _lastupdate_changes(changes, root)
    return folded


def catalogue_value(origin: Reading | FieldChange, value: Value) -> CatalogueValue:
    """``value`` with the provenance of the row it came from (a reading or a change)."""
    return CatalogueValue(
        source=origin.source,
        value=value,
        source_date=origin.source_date,
        source_dated_by=origin.source_dated_by,
        source_row=origin.source_row,
        source_url=origin.source_url,
    )


def _add_conflict(conflicts: dict[tuple[str, str], Conflict], conflict: Conflict) -> None:
    """One conflict per (object, field), with every distinct value and every reason."""
    key = (conflict.path, conflict.field)
    if (known := conflicts.get(key)) is None:
        known = conflicts[key] = conflict.model_copy(update={"values": []})
    elif conflict.reason not in known.reason.split("; "):
        known.reason = f"{known.reason}; {conflict.reason}"
    for value in conflict.values:
        # The same value from several rows of one catalogue (a star's, once per planet) once.
        if all((v.source, v.value) != (value.source, value.value) for v in known.values):
            known.values.append(value)
    known.values.sort(key=lambda v: (list(Source).index(v.source), v.source_row or 0))
    known.size = max(known.size, conflict.size)


def _dispute(
    best: FieldChange, changes: list[FieldChange], said: list[CatalogueValue]
) -> str | None:
    """Why the other catalogue speaks against ``best``, or None when it does not.

    - ``best`` moves OEC's value beyond rounding and 1 % while the other catalogue agrees
      with OEC's value: OEC keeps it;
    - the other catalogue's value (of the same kind: an msini is no true mass) disagrees
      with ``best`` beyond two combined uncertainties and 1 %: the catalogues disagree.
    Either way ``best`` still goes ahead when it is a refinement of every value it differs
    from, OEC's included: more precise than each and within three combined uncertainties
    of it (a Gaia distance of 163.6 ±0.6 pc over the 200 ±20 pc that OEC and the other
    catalogue both carry). Text fields and positions, which are only ever added, and
    limits are not cross-checked.
    """
    field, new = best.field, best.new
    if field in ADD_ONLY_FIELDS or new.value is None:
        return None
    # An assumed circular orbit is no voice either (NN Ser c: exoplanet.eu's bare 0 must not
    # keep NASA's 0.08 ±0.05 out of OEC's bare 0).
    others = [
        v.value
        for v in [*(catalogue_value(c, c.new) for c in changes), *said]
        if v.source is not best.source
        and v.value.value is not None
        and not _is_assumption(field, v.value)
    ]
    old = best.old if best.kind is ChangeKind.UPDATED else None
    # OEC's bare value is improved by any value with an uncertainty (:func:`improves`);
    # one with an uncertainty must be refined.
    refined = [old] if old is not None and _sigma(old) is not None else []
    if old is not None and old.value is not None and not agrees(field, old, new):
        # Whatever its type: an msini that agrees with OEC's untyped mass says it is one.
        supporters = [v for v in others if agrees(field, old, v)]
        if supporters and not _refines(field, new, [*refined, *supporters]):
            other = next(s for s in Source if s is not best.source)
            return f"OEC's value agrees with {SOURCE_LABELS[other]}"
    against = [v for v in others if v.type == new.type and not consistent(field, v, new)]
    if against and not _refines(field, new, [*refined, *against]):
        return "the catalogues disagree"
    return None


def _refines(field: str, new: Value, values: list[Value]) -> bool:
    """Whether ``new`` is more precise than each of ``values`` and within three combined
    uncertainties of it."""
    return all(
        more_precise(field, v, new) and consistent(field, v, new, REFINEMENT_SIGMAS) for v in values
    )


def planet_keys(record: PlanetRecord) -> set[str]:
    """What makes two rows of new planets of one host the same planet: a shared name, or
    a shared letter, as catalogues name one planet differently ("Kepler-451 c" and
    "Kepler-451 (AB)c", "Teegarden's Star d" and "Teegarden's d")."""
    keys = {normalise(n) for n in record.all_names}
    split = split_planet_name(record.name)
    letter = record.letter or (split[1] if split else None)
    if letter:
        keys.add(f"letter {letter.casefold()}")
    return keys


def _fold_new_planets(new_planets: list[NewPlanet]) -> list[NewPlanet]:
    groups: list[list[NewPlanet]] = []
    keys: list[set[str]] = []
    for planet in new_planets:
        keys_of_planet = planet_keys(planet.record)
        for group, group_keys in zip(groups, keys, strict=True):
            if group[0].parent_path == planet.parent_path and group_keys & keys_of_planet:
                group.append(planet)
                group_keys |= keys_of_planet
                break
        else:
            groups.append([planet])
            keys.append(keys_of_planet)
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
    # Only the containers below change; values are frozen and may be shared (a deep copy
    # of every record cost a cold run 0.2 s).
    merged = best.model_copy(
        update={
            "planet": dict(best.planet),
            "star": dict(best.star),
            "system": dict(best.system),
            "aliases": list(best.aliases),
            "host_aliases": list(best.host_aliases),
        }
    )
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


def _lastupdate_changes(changes: list[FieldChange], root: etree._Element) -> list[FieldChange]:
    """Move each changed planet's lastupdate to its newest source date, never backwards."""
    newest: dict[str, FieldChange] = {}
    for change in changes:
        element = tree.find(root, change.path)
        if element.tag != "planet" or change.source_date is None:
            continue
        best = newest.get(change.path)
        if best is None or precedence(change) > precedence(best):
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
