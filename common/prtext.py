"""What a maintainer reads: commit messages, pull-request titles and bodies.

Everything here is a pure function of the changes, so the same changes always produce the
same text (which is how a re-run recognises a proposal it already made).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from common.changes import CatalogueValue, ChangeKind, Conflict, FieldChange
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


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _source_cell(change: FieldChange) -> str:
    name = SOURCE_NAMES[change.source]
    linked = f"[{name}]({change.source_url})" if change.source_url else name
    return f"{linked}, row {change.source_row}" if change.source_row else linked


def _date_cell(change: FieldChange) -> str:
    if change.source_date is None:
        return "undated"
    note = f" ({change.source_dated_by})" if change.source_dated_by else ""
    return f"{change.source_date.isoformat()}{note}"


def sources_of(changes: list[FieldChange], planets: list[PlanetRecord]) -> list[Source]:
    found = {c.source for c in changes} | {p.source for p in planets}
    return sorted(found, key=list(Source).index)


def title(
    system: str, changes: list[FieldChange], new_planets: list[PlanetRecord], new_system: bool
) -> str:
    """One line under 72 characters saying what kind of change this is."""
    if new_system:
        n = len(new_planets)
        return f"New system {system} ({n} planet{'s' if n != 1 else ''})"
    parts: list[str] = []
    if new_planets:
        names = ", ".join(p.name for p in new_planets)
        parts.append(f"add {names}")
    fields = [c for c in changes if c.field != "lastupdate"]
    updated = sorted({c.field for c in fields if c.kind is ChangeKind.UPDATED})
    added = sorted({c.field for c in fields if c.kind is ChangeKind.ADDED})
    if updated:
        parts.append("update " + ", ".join(updated))
    if added:
        parts.append("add " + ", ".join(added))
    text = f"{system}: " + "; ".join(parts)
    return text if len(text) <= 72 else text[:69].rstrip(" ,;") + "..."


def change_line(change: FieldChange) -> str:
    return (
        f"{change.object} {change.field}: {show(change.old)} -> {show(change.new)}"
        f" ({SOURCE_NAMES[change.source]}, {_date_cell(change)}"
        + (f", row {change.source_row}" if change.source_row else "")
        + ")"
    )


def planet_line(record: PlanetRecord) -> str:
    date = record.updated.isoformat() if record.updated else "undated"
    return f"new planet {record.name} ({SOURCE_NAMES[record.source]}, {date}, row {record.row})"


def commit_message(
    file: str,
    system: str,
    changes: list[FieldChange],
    new_planets: list[PlanetRecord],
    new_system: bool,
) -> str:
    lines = [title(system, changes, new_planets, new_system), ""]
    lines += [f"- {planet_line(p)}" for p in new_planets]
    lines += [f"- {change_line(c)}" for c in changes]
    lines += ["", f"File: {file}", "Proposed by OEC Sync; every value names its source."]
    return "\n".join(lines) + "\n"


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
    names = " and ".join(SOURCE_NAMES[s] for s in sources_of(changes, new_planets))
    what = "a new system file" if new_system else "changes"
    out = [f"OEC Sync proposes {what} for **{system}** (`{file}`) from {names}.", ""]
    if new_planets:
        out += [
            "### New planets",
            "",
            "| Planet | Source | Source date | Values |",
            "|---|---|---|---|",
        ]
        for p in new_planets:
            values = ", ".join(f"{k} {show(v)}" for k, v in p.planet.items())
            link = f"[{SOURCE_NAMES[p.source]}]({p.url})" if p.url else SOURCE_NAMES[p.source]
            date = p.updated.isoformat() if p.updated else "undated"
            out.append(f"| {_cell(p.name)} | {link}, row {p.row} | {date} | {_cell(values)} |")
        out.append("")
    if changes:
        out += [
            "### Changed values",
            "",
            "| Object | Field | Old | New | Source | Source date |",
            "|---|---|---|---|---|---|",
        ]
        for c in changes:
            out.append(
                f"| {_cell(c.object)} | {c.field} | {_cell(show(c.old))} | "
                f"{_cell(show(c.new))} | {_source_cell(c)} | {_date_cell(c)} |"
            )
        out.append("")
    out += conflict_section(conflicts)
    kinds = Counter(c.kind for c in changes if c.field != "lastupdate")
    out += [
        f"**Counts:** {kinds[ChangeKind.UPDATED]} values updated, "
        f"{kinds[ChangeKind.ADDED]} added, {len(new_planets)} new planets.",
        "",
        f"**Rules:** {RULES}",
        "",
        f"**Feedback:** {FEEDBACK}",
        "",
    ]
    return "\n".join(out)


def value_cell(value: CatalogueValue) -> str:
    """One catalogue's value with its source, row and date, for conflict tables."""
    name = SOURCE_NAMES[value.source]
    linked = f"[{name}]({value.source_url})" if value.source_url else name
    row = f" row {value.source_row}" if value.source_row else ""
    date = value.source_date.isoformat() if value.source_date else "undated"
    return f"{show(value.value)} ({linked}{row}, {date})"


def conflict_section(conflicts: Sequence[Conflict]) -> list[str]:
    """Markdown lines listing the values OEC Sync did not change because the sources
    disagree, largest disagreement first; empty when there are none."""
    if not conflicts:
        return []
    out = [
        "### Not changed, for you to decide",
        "",
        "The sources disagree about these values, so OEC Sync left them as they are.",
        "",
        "| Object | Field | OEC | Catalogues | Why |",
        "|---|---|---|---|---|",
    ]
    for c in sorted(conflicts, key=lambda c: (-c.size, c.path, c.field)):
        values = "<br>".join(value_cell(v) for v in c.values)
        out.append(
            f"| {_cell(c.object)} | {c.field} | {_cell(show(c.oec))} | {_cell(values)} "
            f"| {_cell(c.reason)} |"
        )
    out.append("")
    return out


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
