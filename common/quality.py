"""A run's data quality: what each catalogue delivered, and where NASA and exoplanet.eu
disagree about the same OEC object.

Pure functions over what the publisher already holds (run.planned per catalogue, the
mergers' patches); the HTML page is services/publisher/quality_page.py.

A disagreement here is a field *both* catalogues proposed to change, differently; the
conflicts (:class:`common.changes.Conflict`, from :func:`common.rules.fold`) are what the
rules refused for disagreement, including a catalogue that sides with OEC against the other.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from pydantic import BaseModel

from common.changes import Conflict, FieldChange, SystemPatch
from common.messages import CatalogueCounts, RunPlanned
from common.numbers import parse_number, same_value
from common.records import RejectedRow, Source, Value
from common.rules import MAGNITUDE_TOLERANCE, precedence

__all__ = [
    "CatalogueQuality",
    "Disagreement",
    "QualityReport",
    "differ",
    "disagreements",
    "quality_report",
    "relative_difference",
]


class Disagreement(BaseModel):
    """One (object, field) of one system file both catalogues want changed, differently."""

    file: str
    object: str  # display name: "11 Com b"
    path: str  # element path within the file: "/system/star/planet"
    field: str
    nasa: FieldChange
    eu: FieldChange
    winner: Source | None  # the change rules.fold keeps; None: left to a maintainer
    relative: float | None  # |a - b| / max(|a|, |b|); None when not two numbers


class CatalogueQuality(BaseModel):
    """What one catalogue delivered in a run: counts and the rows nobody could use."""

    source: Source
    file: str
    counts: CatalogueCounts
    rejected: list[RejectedRow] = []
    ambiguous: list[str] = []


class QualityReport(BaseModel):
    run_id: str
    catalogues: list[CatalogueQuality]
    failed: dict[Source, str] = {}
    disagreements: list[Disagreement]
    both_proposed: int  # (file, object, field) pairs both catalogues proposed, agreeing or not
    conflicts: list[Conflict] = []  # what the rules left to a maintainer, largest first


def _limits(value: Value) -> tuple[str | None, str | None]:
    return value.lowerlimit, value.upperlimit


def differ(field: str, a: Value, b: Value) -> bool:
    """Whether two proposed values say different things, per :func:`same_value` (with the
    merge rules' photometric tolerance for magnitudes)."""
    absolute = MAGNITUDE_TOLERANCE if field.startswith("mag") else 0.0
    if (a.value is None) != (b.value is None):
        return True  # a limit against a measurement
    if a.value is not None and b.value is not None:
        if not same_value(a.value, b.value, absolute):
            return True
        # The same number as a minimum mass in one and a true mass in the other.
        return field == "mass" and (a.type == "msini") != (b.type == "msini")
    for x, y in zip(_limits(a), _limits(b), strict=True):
        if (x is None) != (y is None):
            return True
        if x is not None and y is not None and not same_value(x, y, absolute):
            return True
    return False


def relative_difference(a: Value, b: Value) -> float | None:
    """|a - b| / max(|a|, |b|) of two measured values, or None when either is not a number."""
    x, y = parse_number(a.value), parse_number(b.value)
    if x is None or y is None:
        return None
    scale = max(abs(x), abs(y))
    return 0.0 if scale == 0 else abs(x - y) / scale


def _best_per_source(
    patches: Iterable[SystemPatch],
) -> dict[tuple[str, str, str], dict[Source, FieldChange]]:
    """Per (file, path, field): each source's change as rules.fold would pick it among that
    source's own rows (a star field is proposed once per planet row of its host)."""
    best: dict[tuple[str, str, str], dict[Source, FieldChange]] = {}
    for patch in patches:
        if patch.new_system:
            continue  # no OEC object yet: new systems are folded by merge_records
        for change in patch.changes:
            by_source = best.setdefault((patch.file, change.path, change.field), {})
            held = by_source.get(change.source)
            if held is None or precedence(change) > precedence(held):
                by_source[change.source] = change
    return best


def disagreements(
    patches: Iterable[SystemPatch], conflicts: Iterable[Conflict] = ()
) -> tuple[list[Disagreement], int]:
    """The disagreements among a run's unfolded patches, by file, path, field; and how many
    (file, path, field) pairs both catalogues proposed at all. A field among ``conflicts``
    has no winner: the fold left it to a maintainer."""
    disputed = {(c.file, c.path, c.field) for c in conflicts}
    result: list[Disagreement] = []
    both = 0
    for (file, path, field), by_source in sorted(_best_per_source(patches).items()):
        nasa, eu = by_source.get(Source.NASA), by_source.get(Source.EU)
        if nasa is None or eu is None:
            continue
        both += 1
        if not differ(field, nasa.new, eu.new):
            continue
        winner = nasa if precedence(nasa) > precedence(eu) else eu
        result.append(
            Disagreement(
                file=file,
                object=nasa.object,
                path=path,
                field=field,
                nasa=nasa,
                eu=eu,
                winner=None if (file, path, field) in disputed else winner.source,
                relative=relative_difference(nasa.new, eu.new),
            )
        )
    return result, both


def quality_report(
    run_id: str,
    planned: Mapping[Source, RunPlanned],
    counts: Mapping[Source, CatalogueCounts],
    failed: Mapping[Source, str],
    patches: Iterable[SystemPatch],
    conflicts: Sequence[Conflict] = (),
) -> QualityReport:
    """A run's quality report from the publisher's view of it (RunState: ``planned``,
    ``counts()``, ``failed``, ``patches()``, ``conflicts``)."""
    found, both = disagreements(patches, conflicts)
    catalogues = [
        CatalogueQuality(
            source=source,
            file=plan.catalogue,
            counts=counts.get(source, plan.counts),
            rejected=plan.rejected,
            ambiguous=plan.ambiguous,
        )
        for source, plan in sorted(planned.items(), key=lambda item: list(Source).index(item[0]))
    ]
    return QualityReport(
        run_id=run_id,
        catalogues=catalogues,
        failed=dict(failed),
        disagreements=found,
        both_proposed=both,
        conflicts=sorted(conflicts, key=lambda c: (-c.size, c.file, c.path, c.field)),
    )
