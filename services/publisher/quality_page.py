"""A run's quality report as one self-contained HTML page (inline CSS and SVG, no scripts,
no fonts or CDNs: maintainers open it offline, from the status API or a file)."""

from __future__ import annotations

import math
from html import escape

from common.changes import Conflict
from common.prtext import show
from common.quality import Disagreement, QualityReport, quality_report
from common.records import Source
from services.publisher.handler import RunState

# Per-catalogue outcome segments of the bar chart: (CatalogueCounts field, label, colour).
# They need not add up to the rows read (a new planet the rules refuse is in none of them),
# so the bar ends with the number of rows read.
OUTCOMES: tuple[tuple[str, str, str], ...] = (
    ("changed", "changed", "#2b6cb0"),
    ("new_planets", "new planet", "#38a169"),
    ("new_systems", "new system", "#68d391"),
    ("unchanged", "unchanged", "#a0aec0"),
    ("ambiguous", "ambiguous", "#d69e2e"),
    ("failed", "failed", "#e53e3e"),
    ("rejected", "rejected", "#9b2c2c"),
    ("skipped_status", "skipped (status)", "#e2e8f0"),
)

COUNT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("rows", "rows read"),
    ("records", "records"),
    ("matched", "matched"),
    ("changed", "changed"),
    ("unchanged", "unchanged"),
    ("new_planets", "new planets"),
    ("new_systems", "new systems"),
    ("ambiguous", "ambiguous"),
    ("rejected", "rejected"),
    ("skipped_status", "skipped (status)"),
    ("failed", "failed"),
)

# Relative-difference bins of the histogram, as upper bounds; above the last one: "≥ 100 %".
BINS: tuple[float, ...] = (0.01, 0.03, 0.1, 0.3, 1.0)
BIN_LABELS: tuple[str, ...] = ("< 1 %", "1–3 %", "3–10 %", "10–30 %", "30–100 %", "≥ 100 %")

SOURCE_LABEL = {Source.NASA: "NASA", Source.EU: "exoplanet.eu"}

CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
       color: #1a202c; margin: 24px auto; max-width: 1320px; padding: 0 16px; }
h1 { font-size: 22px; margin-bottom: 4px; }
h2 { font-size: 18px; margin-top: 32px; border-bottom: 1px solid #e2e8f0; padding-bottom: 4px; }
.sub { color: #4a5568; margin-top: 0; }
table { border-collapse: collapse; margin: 8px 0 16px; font-size: 13px; }
th, td { border: 1px solid #e2e8f0; padding: 4px 8px; vertical-align: top; }
th { background: #f7fafc; text-align: left; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
td.v { min-width: 7em; max-width: 14em; font-variant-numeric: tabular-nums; }
td.src { white-space: nowrap; font-size: 12px; }
table.disagreements { width: 100%; }
td .path { color: #718096; font-size: 11px; }
tr.won td.nasa, tr.won-eu td.eu { font-weight: 600; background: #ebf8ff; }
.note { background: #fffbea; border-left: 4px solid #d69e2e; padding: 8px 12px; }
.err { color: #9b2c2c; }
details { margin: 8px 0; }
summary { cursor: pointer; font-weight: 600; }
.charts { display: flex; flex-wrap: wrap; gap: 24px; align-items: flex-start; }
figure { margin: 0; }
figcaption { font-size: 12px; color: #4a5568; }
code { font-size: 12px; }
"""


def _n(value: int) -> str:
    return f"{value:,}"


def outcome_chart(report: QualityReport, width: int = 720) -> str:
    """A horizontal stacked bar per catalogue: its rows by outcome, with a legend."""
    label_w, bar_h, gap, top = 110, 26, 14, 10
    plot_w = width - label_w - 70
    rows = len(report.catalogues)
    legend_y = top + rows * (bar_h + gap) + 6
    height = legend_y + 24 * math.ceil(len(OUTCOMES) / 4) + 4
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="Outcomes per catalogue" '
        'class="chart outcomes" font-family="system-ui, sans-serif" font-size="12">'
    ]
    biggest = max((c.counts.rows or 1 for c in report.catalogues), default=1)
    for i, cat in enumerate(report.catalogues):
        y = top + i * (bar_h + gap)
        parts.append(
            f'<text x="{label_w - 8}" y="{y + bar_h / 2 + 4}" text-anchor="end">'
            f"{escape(SOURCE_LABEL[cat.source])}</text>"
        )
        x = float(label_w)
        for key, label, colour in OUTCOMES:
            count = getattr(cat.counts, key)
            if not count:
                continue
            w = plot_w * count / biggest
            parts.append(
                f'<rect x="{x:.1f}" y="{y}" width="{max(w, 0.5):.1f}" height="{bar_h}" '
                f'fill="{colour}"><title>{escape(label)}: {_n(count)}</title></rect>'
            )
            if w > 44:  # the count fits inside its segment
                fill = "#1a202c" if colour in {"#e2e8f0", "#a0aec0", "#68d391"} else "#fff"
                parts.append(
                    f'<text x="{x + w / 2:.1f}" y="{y + bar_h / 2 + 4}" text-anchor="middle" '
                    f'fill="{fill}">{_n(count)}</text>'
                )
            x += w
        parts.append(f'<text x="{x + 6:.1f}" y="{y + bar_h / 2 + 4}">{_n(cat.counts.rows)}</text>')
    for j, (_, label, colour) in enumerate(OUTCOMES):
        lx = label_w + (j % 4) * 150
        ly = legend_y + (j // 4) * 24
        parts.append(
            f'<rect x="{lx}" y="{ly}" width="12" height="12" fill="{colour}" '
            'stroke="#a0aec0" stroke-width="0.5"/>'
            f'<text x="{lx + 18}" y="{ly + 10}">{escape(label)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def bar_chart(title: str, bars: list[tuple[str, int]], colour: str, width: int = 420) -> str:
    """Vertical bars with their counts above them, labels below."""
    top, bottom, left = 24, 40, 36
    height = 240
    plot_h = height - top - bottom
    plot_w = width - left - 10
    biggest = max((n for _, n in bars), default=0) or 1
    slot = plot_w / max(len(bars), 1)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}" '
        'class="chart" font-family="system-ui, sans-serif" font-size="11">',
        f'<line x1="{left}" y1="{top + plot_h}" x2="{width - 10}" y2="{top + plot_h}" '
        'stroke="#4a5568"/>',
    ]
    for i, (label, count) in enumerate(bars):
        h = plot_h * count / biggest
        x = left + i * slot + slot * 0.15
        w = slot * 0.7
        y = top + plot_h - h
        parts.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}" fill="{colour}">'
            f"<title>{escape(label)}: {count}</title></rect>"
            f'<text x="{x + w / 2:.1f}" y="{y - 4:.1f}" text-anchor="middle">{count}</text>'
            f'<text x="{x + w / 2:.1f}" y="{top + plot_h + 16}" text-anchor="middle">'
            f"{escape(label)}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def histogram(found: list[Disagreement]) -> str:
    """How far apart the two catalogues' numbers are: relative differences, binned."""
    counts = [0] * len(BIN_LABELS)
    for d in found:
        if d.relative is None:
            continue
        index = next((i for i, bound in enumerate(BINS) if d.relative < bound), len(BINS))
        counts[index] += 1
    return bar_chart(
        "Relative size of disagreements", list(zip(BIN_LABELS, counts, strict=True)), "#805ad5"
    )


def by_field_chart(found: list[Disagreement], limit: int = 10, width: int = 420) -> str:
    """The fields that disagree most often, as horizontal bars (field names are long)."""
    counts: dict[str, int] = {}
    for d in found:
        counts[d.field] = counts.get(d.field, 0) + 1
    top = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:limit]
    label_w, bar_h, gap = 110, 16, 5
    plot_w = width - label_w - 50
    height = max(len(top), 1) * (bar_h + gap) + 10
    biggest = max((n for _, n in top), default=0) or 1
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="Disagreements by field" '
        'class="chart" font-family="system-ui, sans-serif" font-size="11">'
    ]
    for i, (field, count) in enumerate(top):
        y = 5 + i * (bar_h + gap)
        w = plot_w * count / biggest
        parts.append(
            f'<text x="{label_w - 6}" y="{y + bar_h - 4}" text-anchor="end">{escape(field)}</text>'
            f'<rect x="{label_w}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="#dd6b20">'
            f"<title>{escape(field)}: {count}</title></rect>"
            f'<text x="{label_w + w + 4:.1f}" y="{y + bar_h - 4}">{_n(count)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _summary_table(report: QualityReport) -> str:
    head = "".join(f"<th>{escape(label)}</th>" for _, label in COUNT_COLUMNS)
    rows = []
    for cat in report.catalogues:
        cells = "".join(
            f'<td class="n">{_n(getattr(cat.counts, k))}</td>' for k, _ in COUNT_COLUMNS
        )
        rows.append(
            f"<tr><th>{escape(SOURCE_LABEL[cat.source])}</th>"
            f'<td title="{escape(cat.file)}"><code>{escape(_basename(cat.file))}</code></td>'
            f"{cells}</tr>"
        )
    for source, error in report.failed.items():
        rows.append(
            f"<tr><th>{escape(SOURCE_LABEL[source])}</th>"
            f'<td class="err" colspan="{len(COUNT_COLUMNS) + 1}">failed: {escape(error)}</td></tr>'
        )
    return (
        '<table class="summary"><thead><tr><th>catalogue</th><th>file</th>'
        f"{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _basename(location: str) -> str:
    """A catalogue's file name without its folder (the full path is the cell's tooltip)."""
    return location.rstrip("/").rsplit("/", 1)[-1] or location


def _source_cell(change_date: object, row: int | None) -> str:
    date = escape(str(change_date)) if change_date else "—"
    return f"{date} · row {row}" if row is not None else date


def _disagreement_table(found: list[Disagreement]) -> str:
    if not found:
        return "<p>No disagreements beyond tolerance in this run.</p>"
    rows = []
    for d in found:
        won = {Source.NASA: "won", Source.EU: "won-eu", None: "conflict"}[d.winner]
        winner = SOURCE_LABEL[d.winner] if d.winner else "neither: a conflict"
        relative = f"{d.relative:.1%}" if d.relative is not None else "—"
        rows.append(
            f'<tr class="{won}"><td>{escape(d.object)}<br><span class="path">'
            f"{escape(d.file)} {escape(d.path)}</span></td><td>{escape(d.field)}</td>"
            f'<td class="v nasa">{escape(show(d.nasa.new))}</td>'
            f'<td class="v eu">{escape(show(d.eu.new))}</td>'
            f'<td class="n">{relative}</td><td>{escape(winner)}</td>'
            f'<td class="v">{escape(show(d.nasa.old))}</td>'
            f'<td class="src">{_source_cell(d.nasa.source_date, d.nasa.source_row)}</td>'
            f'<td class="src">{_source_cell(d.eu.source_date, d.eu.source_row)}</td></tr>'
        )
    return (
        '<table class="disagreements"><thead><tr><th>object (file, path)</th><th>field</th>'
        "<th>NASA</th><th>exoplanet.eu</th><th>difference</th><th>won</th><th>OEC now</th>"
        "<th>NASA source</th><th>exoplanet.eu source</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _conflict_table(conflicts: list[Conflict]) -> str:
    if not conflicts:
        return "<p>No conflicts in this run.</p>"
    rows = []
    for c in conflicts:
        values = "<br>".join(
            f"{escape(SOURCE_LABEL[v.source])}: {escape(show(v.value))} "
            f'<span class="path">{_source_cell(v.source_date, v.source_row)}</span>'
            for v in c.values
        )
        rows.append(
            f'<tr><td>{escape(c.object)}<br><span class="path">{escape(c.file)} '
            f"{escape(c.path)}</span></td><td>{escape(c.field)}</td>"
            f'<td class="v">{escape(show(c.oec))}</td><td class="v">{values}</td>'
            f'<td class="n">{c.size:.1%}</td><td>{escape(c.reason)}</td></tr>'
        )
    return (
        '<table class="disagreements"><thead><tr><th>object (file, path)</th><th>field</th>'
        "<th>OEC now</th><th>catalogues</th><th>largest difference</th><th>why</th></tr>"
        f"</thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _rejected_and_ambiguous(report: QualityReport) -> str:
    parts = []
    for cat in report.catalogues:
        label = escape(SOURCE_LABEL[cat.source])
        rows = "".join(
            f'<tr><td>{escape(r.file)}</td><td class="n">{r.row}</td>'
            f"<td>{escape(r.column or '—')}</td><td>{escape(r.reason)}</td></tr>"
            for r in cat.rejected
        )
        parts.append(
            f'<details class="rejected"><summary>{label}: {_n(len(cat.rejected))} rejected '
            "rows</summary>"
            + (
                "<table><thead><tr><th>file</th><th>row</th><th>column</th><th>reason</th>"
                f"</tr></thead><tbody>{rows}</tbody></table>"
                if cat.rejected
                else "<p>None.</p>"
            )
            + "</details>"
        )
        names = "".join(f"<li>{escape(name)}</li>" for name in cat.ambiguous)
        parts.append(
            f'<details class="ambiguous"><summary>{label}: {_n(len(cat.ambiguous))} ambiguous '
            f"names</summary>{f'<ul>{names}</ul>' if names else '<p>None.</p>'}</details>"
        )
    return "".join(parts)


def report_of(state: RunState) -> QualityReport:
    """The quality report of a run as the publisher holds it."""
    return quality_report(
        state.run_id,
        state.planned,
        state.counts(),
        state.failed,
        state.loaded_patches(),
        state.conflicts,
    )


def render(report: QualityReport) -> str:
    """The whole page."""
    found = report.disagreements
    nasa_won = sum(d.winner is Source.NASA for d in found)
    eu_won = sum(d.winner is Source.EU for d in found)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>OEC Sync run {escape(report.run_id)}: data quality</title>
<style>{CSS}</style></head>
<body>
<h1>Data quality of run <code>{escape(report.run_id)}</code></h1>
<p class="sub">What each catalogue delivered, and where NASA and exoplanet.eu disagree about
the same OEC object.</p>

<h2>Per catalogue</h2>
{_summary_table(report)}
<figure>{outcome_chart(report)}
<figcaption>Rows read per catalogue, by outcome (bars to scale; hover for counts).
</figcaption></figure>

<h2>Conflicts left to a maintainer</h2>
<p><b>{_n(len(report.conflicts))}</b> values were not changed because the sources disagree:
the catalogues with each other, a catalogue with OEC and the other catalogue, or a period
or orbit that would move by more than 20 %. Largest difference first.</p>
{_conflict_table(report.conflicts)}

<h2>Disagreements between NASA and exoplanet.eu</h2>
<p><b>{_n(len(found))}</b> of {_n(report.both_proposed)} fields that both catalogues proposed
to change differ beyond tolerance; NASA's value won {_n(nasa_won)}, exoplanet.eu's
{_n(eu_won)}, and {_n(len(found) - nasa_won - eu_won)} are conflicts. The value kept has the
later source date; on the same date NASA wins.</p>
<div class="charts">
<figure>{histogram(found)}<figcaption>Relative difference |NASA − eu| / max(|NASA|, |eu|)
of numeric values.</figcaption></figure>
<figure>{by_field_chart(found)}<figcaption>Most frequent fields.</figcaption></figure>
</div>
{_disagreement_table(found)}

<h2>Rejected rows and ambiguous names</h2>
{_rejected_and_ambiguous(report)}
</body></html>
"""
