"""What a maintainer reads: commit messages, pull-request titles and bodies.

Everything here is a pure function of the changes, so the same changes always produce the
same text (which is how a re-run recognises a proposal it already made).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable, Sequence
from typing import NamedTuple

from common.changes import CatalogueValue, ChangeKind, Conflict, FieldChange
from common.oec.render import host_values
from common.records import PlanetRecord, Source, Value

SOURCE_NAMES = {Source.NASA: "NASA Exoplanet Archive", Source.EU: "exoplanet.eu"}
FEEDBACK = (
    "Close this pull request to reject it: OEC Sync will not propose the same values again "
    "until the source changes them. Edit the branch or comment to correct it; merged or "
    "closed branches are deleted by OEC Sync."
)
RULES = (
    "A value is added when OEC has none. An existing value is replaced only when the source's "
    "date is later than the planet's `lastupdate`, the values differ by more than their "
    "rounding or 0.1 %, and the new value is better: OEC's has no uncertainty, the new one is "
    "clearly more precise, or they disagree beyond their combined uncertainty. Limits, minimum "
    "masses, discovery methods and years, spectral types and positions never overwrite what "
    "OEC has."
)


def show(value: Value | None) -> str:
    """A value as a maintainer writes it: ``19.4 ±1.5``, ``< 0.25``, ``1.2 +0.1 −0.2``."""
    if value is None:
        return "—"
    if value.value is None:
        parts = []
        if value.lowerlimit is not None:
            parts.append(f"> {value.lowerlimit}")
        if value.upperlimit is not None:
            parts.append(f"< {value.upperlimit}")
        text = " and ".join(parts) or "—"
    else:
        text = value.value
        if value.errorplus is not None and value.errorplus == value.errorminus:
            text += f" ±{value.errorplus}"
        elif value.errorplus is not None:
            text += f" +{value.errorplus} −{value.errorminus}"
    if value.type == "msini":
        text += " (m sin i)"
    return text


TITLE_MAX = 72


def plural(n: int, word: str) -> str:
    """``1 new planet``, ``2 new planets``."""
    return f"{n} {word}{'' if n == 1 else 's'}"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    """A Markdown table, each cell escaped, and the blank line after it."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return [*lines, ""]


def _source_cell(source: Source, url: str | None, row: int | None) -> str:
    name = SOURCE_NAMES[source]
    linked = f"[{name}]({url})" if url else name
    return f"{linked}, row {row}" if row else linked


def _date_cell(date: dt.date | None, dated_by: str) -> str:
    if date is None:
        return "undated"
    return f"{date.isoformat()} ({dated_by})" if dated_by else date.isoformat()


def _provenance(source: Source, row: int | None, date: dt.date | None, dated_by: str) -> str:
    """Where a value comes from, in one flat parenthesis for a line of text:
    ``(NASA Exoplanet Archive row 93, NASA catalogue date 2024-10-15)``."""
    where = SOURCE_NAMES[source] + (f" row {row}" if row else "")
    when = "undated" if date is None else " ".join(filter(None, [dated_by, date.isoformat()]))
    return f"({where}, {when})"


def sources_of(changes: list[FieldChange], planets: list[PlanetRecord]) -> list[Source]:
    found = {c.source for c in changes} | {p.source for p in planets}
    return sorted(found, key=list(Source).index)


def title(
    system: str, changes: list[FieldChange], new_planets: list[PlanetRecord], new_system: bool
) -> str:
    """One line of at most 72 characters saying what kind of change this is; what does not
    fit is counted (``+3 more``), never cut mid-word."""
    if new_system:
        return f"New system {system} ({plural(len(new_planets), 'planet')})"
    fields = [c for c in changes if c.field != "lastupdate"]
    groups = [
        ("add", [p.name for p in new_planets]),
        ("update", sorted({c.field for c in fields if c.kind is ChangeKind.UPDATED})),
        ("add", sorted({c.field for c in fields if c.kind is ChangeKind.ADDED})),
    ]
    total = sum(len(items) for _, items in groups)
    for shown in range(total, 0, -1):
        text = _title_text(system, groups, shown, total)
        if len(text) <= TITLE_MAX:
            return text
    return f"{system}: {plural(total, 'change')}"


def _title_text(system: str, groups: list[tuple[str, list[str]]], shown: int, total: int) -> str:
    """``system: verb items; verb items`` with the first ``shown`` items, ``+N more`` after."""
    parts: list[str] = []
    left = shown
    for verb, items in groups:
        if items and left:
            parts.append(f"{verb} " + ", ".join(items[:left]))
            left -= min(left, len(items))
    more = f" +{total - shown} more" if shown < total else ""
    return f"{system}: " + "; ".join(parts) + more


def change_line(change: FieldChange) -> str:
    return (
        f"{change.object} {change.field}: {show(change.old)} -> {show(change.new)} "
        + _provenance(change.source, change.source_row, change.source_date, change.source_dated_by)
    )


def planet_line(record: PlanetRecord) -> str:
    where = _provenance(record.source, record.row, record.updated, record.dated_by)
    return f"new planet {record.name} {where}"


def host_lines(system: str, planets: list[PlanetRecord]) -> list[str]:
    """A new system's star and system values, one line per object and source row."""
    grouped: dict[tuple[str, int], tuple[PlanetRecord, list[str]]] = {}
    for part, tag, _, record in host_values(planets):
        key = (part, id(record))
        grouped.setdefault(key, (record, []))[1].append(tag)
    return [
        f"{part} {system}: {', '.join(tags)} "
        + _provenance(record.source, record.row, record.updated, record.dated_by)
        for (part, _), (record, tags) in grouped.items()
    ]


def commit_message(
    file: str,
    system: str,
    changes: list[FieldChange],
    new_planets: list[PlanetRecord],
    new_system: bool,
) -> str:
    lines = [title(system, changes, new_planets, new_system), ""]
    lines += [f"- {planet_line(p)}" for p in new_planets]
    if new_system:
        lines += [f"- {line}" for line in host_lines(system, new_planets)]
    lines += [f"- {change_line(c)}" for c in changes]
    lines += ["", f"File: {file}", "Proposed by OEC Sync; every value names its source."]
    return "\n".join(lines) + "\n"


class Text(NamedTuple):
    """What every section of a pull-request body is made from."""

    file: str
    system: str
    changes: list[FieldChange]
    new_planets: list[PlanetRecord]
    new_system: bool
    conflicts: Sequence[Conflict] = ()


def _intro(t: Text) -> list[str]:
    names = " and ".join(SOURCE_NAMES[s] for s in sources_of(t.changes, t.new_planets))
    what = "a new system file" if t.new_system else "changes"
    return [f"OEC Sync proposes {what} for **{t.system}** (`{t.file}`) from {names}.", ""]


def _new_planets(t: Text) -> list[str]:
    if not t.new_planets:
        return []
    rows = [
        [
            p.name,
            _source_cell(p.source, p.url, p.row),
            _date_cell(p.updated, p.dated_by),
            ", ".join(f"{k} {show(v)}" for k, v in p.planet.items()),
        ]
        for p in t.new_planets
    ]
    return ["### New planets", "", *_table(["Planet", "Source", "Source date", "Values"], rows)]


def _host(t: Text) -> list[str]:
    """A new system's own values (its star and the system), each with its source."""
    if not t.new_system:
        return []
    rows = [
        [
            f"{t.system} ({part})",
            tag,
            show(value),
            _source_cell(record.source, record.url, record.row),
            _date_cell(record.updated, record.dated_by),
        ]
        for part, tag, value, record in host_values(t.new_planets)
    ]
    if not rows:
        return []
    header = ["Object", "Field", "Value", "Source", "Source date"]
    return ["### Star and system", "", *_table(header, rows)]


def _changed(t: Text) -> list[str]:
    if not t.changes:
        return []
    rows = [
        [
            c.object,
            c.field,
            show(c.old),
            show(c.new),
            _source_cell(c.source, c.source_url, c.source_row),
            _date_cell(c.source_date, c.source_dated_by),
        ]
        for c in t.changes
    ]
    header = ["Object", "Field", "Old", "New", "Source", "Source date"]
    return ["### Changed values", "", *_table(header, rows)]


def _counts(t: Text) -> list[str]:
    kinds = Counter(c.kind for c in t.changes if c.field != "lastupdate")
    return [
        f"**Counts:** {plural(kinds[ChangeKind.UPDATED], 'value')} updated, "
        f"{kinds[ChangeKind.ADDED]} added, {plural(len(t.new_planets), 'new planet')}.",
        "",
    ]


def _rules(t: Text) -> list[str]:
    return [f"**Rules:** {RULES}", "", f"**Feedback:** {FEEDBACK}", ""]


def value_cell(value: CatalogueValue) -> str:
    """One catalogue's value with its source, row and date, for conflict tables."""
    where = _source_cell(value.source, value.source_url, value.source_row)
    return f"{show(value.value)} ({where}, {_date_cell(value.source_date, '')})"


def _conflicts(t: Text) -> list[str]:
    """The values OEC Sync did not change because the sources disagree, largest first."""
    if not t.conflicts:
        return []
    rows = [
        [c.object, c.field, show(c.oec), "<br>".join(value_cell(v) for v in c.values), c.reason]
        for c in sorted(t.conflicts, key=lambda c: (-c.size, c.path, c.field))
    ]
    intro = "The sources disagree about these values, so OEC Sync left them as they are."
    header = ["Object", "Field", "OEC", "Catalogues", "Why"]
    return ["### Not changed, for you to decide", "", intro, "", *_table(header, rows)]


# The body, top to bottom: each section gives its lines (none when it has nothing to say).
# A new kind of content is one more function here.
SECTIONS: list[Callable[[Text], list[str]]] = [
    _intro,
    _new_planets,
    _host,
    _changed,
    _conflicts,
    _counts,
    _rules,
]


def body(
    file: str,
    system: str,
    changes: list[FieldChange],
    new_planets: list[PlanetRecord],
    new_system: bool,
    conflicts: Sequence[Conflict] = (),
) -> str:
    """The pull-request body: what, from where, how many, what is left to the maintainer,
    and how to say no."""
    text = Text(file, system, changes, new_planets, new_system, conflicts)
    return "\n".join(line for section in SECTIONS for line in section(text))


# An HTML comment is invisible on GitHub but survives in the PR body, so a lost or fresh state
# database can still tell which change set an open pull request carries.
_MARKER_PREFIX = "<!-- oec-sync fingerprint: "
_MARKER_SUFFIX = " -->"


def with_fingerprint(text: str, fingerprint: str) -> str:
    """``text`` (a PR body) ending in the invisible marker of its change set."""
    return f"{text.rstrip()}\n\n{_MARKER_PREFIX}{fingerprint}{_MARKER_SUFFIX}\n"


def fingerprint_of(text: str | None) -> str | None:
    """The fingerprint a PR body carries, or None for a body without the marker."""
    if not text:
        return None
    start = text.rfind(_MARKER_PREFIX)
    if start < 0:
        return None
    start += len(_MARKER_PREFIX)
    end = text.find(_MARKER_SUFFIX, start)
    value = text[start:end].strip() if end > 0 else ""
    return value if value and all(c in "0123456789abcdef" for c in value) else None
