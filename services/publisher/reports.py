"""What a run leaves to read: its JSON report, the summary table and the quality page.

Written by ``oec-sync run`` (``--report``, ``--quality-html``) and ``oec-sync snapshots
reprocess``, served by the publisher service at ``/runs/{id}``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

from rich.table import Table

from common.changes import Conflict
from common.prtext import show
from services.publisher.handler import RunState
from services.publisher.quality_page import render, report_of


def report(state: RunState, dry_run: bool = False) -> dict[str, Any]:
    """The JSON report of a run: per-catalogue counts and every proposed system.

    In a dry run's report (``dry_run``: true) each state says what would have happened."""
    # First: the quality section decodes every planet's patch, and that much more memory is
    # let go before the systems' changes are listed (22 MB of JSON as Python objects).
    quality = report_of(state).model_dump(mode="json")
    counts = state.counts()
    catalogues: dict[str, Any] = {}
    for source, planned in state.planned.items():
        catalogues[source.value] = {
            "file": planned.catalogue,
            "oec_commit": planned.commit,
            **counts[source].model_dump(),
            "rejected_rows": [r.model_dump() for r in planned.rejected],
            "ambiguous_rows": planned.ambiguous,
        }
    for source, error in state.failed.items():
        catalogues[source.value] = {"error": error}
    systems = []
    for published in state.published:
        p = published.proposal
        systems.append(
            {
                "file": p.file,
                "branch": p.branch,
                "new": p.new,
                "state": published.state.value,
                "title": p.title,
                "new_planets": [r.name for r in p.new_planets],
                "changes": [
                    {
                        "object": c.object,
                        "path": c.path,
                        "field": c.field,
                        "kind": c.kind.value,
                        "old": show(c.old) if c.old else None,
                        "new": show(c.new),
                        "old_value": c.old.fields() if c.old else None,
                        "new_value": c.new.fields(),
                        "source": c.source.value,
                        "source_date": c.source_date.isoformat() if c.source_date else None,
                        "source_row": c.source_row,
                    }
                    for c in p.changes
                ],
            }
        )
    failed_planets = [
        {"source": p.source.value, "row": p.row, "planet": p.planet, "error": p.error}
        for p in state.failed_planets()
    ]
    return {
        "run_id": state.run_id,
        "complete": state.completed,
        "dry_run": dry_run,
        "catalogues": catalogues,
        "failed_planets": failed_planets,
        "systems": systems,
        "conflicts": [conflict_json(c) for c in state.conflicts],
        "refused": [r.model_dump() for r in state.refusals],
        "deferred": state.deferred,
        "not_added": [
            {"source": o.source.value, "row": o.row, "planet": o.planet, "reason": o.reason}
            for o in state.not_added()
        ],
        "quality": quality,
    }


def conflict_json(conflict: Conflict) -> dict[str, Any]:
    """A conflict as the report lists it: OEC's value and every catalogue's, shown and as
    fields, with the source of each."""
    return {
        "file": conflict.file,
        "object": conflict.object,
        "path": conflict.path,
        "field": conflict.field,
        "reason": conflict.reason,
        "size": round(conflict.size, 4),
        "oec": show(conflict.oec) if conflict.oec else None,
        "oec_value": conflict.oec.fields() if conflict.oec else None,
        "values": [
            {
                "source": v.source.value,
                "shown": show(v.value),
                "value": v.value.fields(),
                "source_date": v.source_date.isoformat() if v.source_date else None,
                "source_row": v.source_row,
            }
            for v in conflict.values
        ],
    }


def summary_table(state: RunState) -> Table:
    table = Table(title=f"OEC Sync run {state.run_id}")
    columns = [
        "rows",
        "records",
        "matched",
        "changed",
        "unchanged",
        "failed",
        "new_planets",
        "new_systems",
        "ambiguous",
        "rejected",
        "skipped_status",
    ]
    table.add_column("catalogue")
    for column in columns:
        table.add_column(column.replace("_", " "), justify="right")
    for source, counts in state.counts().items():
        table.add_row(source.value, *(str(getattr(counts, c)) for c in columns))
    return table


@contextmanager
def _whole(path: Path) -> Iterator[TextIO]:
    """A file to write ``path`` through: in place once the block ends, or, if it is
    interrupted, the file as it was."""
    temporary = path.with_name(path.name + ".tmp")
    try:
        with temporary.open("w", encoding="utf-8") as out:
            yield out
        temporary.replace(path)
    finally:
        temporary.unlink(missing_ok=True)


def write_quality_html(state: RunState, path: Path) -> None:
    """The run's quality page (as the publisher serves it at /runs/{id}/quality.html)."""
    with _whole(path) as out:
        out.write(render(report_of(state)))


def write_report(state: RunState, path: Path, dry_run: bool = False) -> None:
    """The JSON report at ``path``, written as it is encoded: the full run's 22 MB as one
    string cost 120 MB more at the run's peak."""
    with _whole(path) as out:
        json.dump(report(state, dry_run), out, indent=2, ensure_ascii=False)
        out.write("\n")
