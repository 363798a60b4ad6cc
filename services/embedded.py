"""``oec-sync run``: the four services' handlers in one process over the in-memory bus."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from common import topology
from common.bus import Handler
from common.bus.memory import MemoryBus
from common.gitrepo import head_commit
from common.messages import Message, PlanetMatched, RunPlanned, RunStarted
from common.oec.index import AliasIndex
from common.prtext import show
from common.records import Source
from common.topology import WorkQueue
from services.fetcher.handler import fetch
from services.indexer.handler import IndexerHandler
from services.merger.handler import handle as merge_handler
from services.publisher.handler import GitTexts, PublisherHandler, RunState
from services.publisher.local import LocalSink
from services.publisher.model import Sink
from services.publisher.quality_page import render, report_of


def index_cache(repo: Path) -> Path:
    """Where the alias index of a checkout is kept between runs: inside its .git."""
    return repo / ".git" / "oec-sync" / "index.pickle"


def load_index(repo: Path, commit: str) -> AliasIndex:
    """The index at ``commit``: from the cache, refreshed incrementally, or built anew."""
    cache = index_cache(repo)
    index: AliasIndex | None = None
    if cache.exists():
        try:
            index = AliasIndex.load(cache)
        except Exception:  # a cache written by another version is simply rebuilt
            index = None
    if index is not None and index.commit == commit:
        return index
    index = index.refresh(repo, commit) if index is not None else AliasIndex.build(repo, commit)
    cache.parent.mkdir(parents=True, exist_ok=True)
    index.save(cache)
    return index


@contextmanager
def _progress(console: Console) -> Iterator[Progress]:
    columns = (
        TextColumn("{task.description:<10}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        yield progress


def run(
    repo: Path,
    locations: dict[Source, str],
    outbox: Path,
    max_prs: int,
    console: Console | None = None,
    sink: Sink | None = None,
) -> RunState:
    """Fetch, match, merge and publish once; returns the publisher's state of the run.

    ``sink`` defaults to branches in ``repo`` and PR drafts in ``outbox``."""
    with httpx.Client() as client:
        messages = fetch(locations, client)
    return process(repo, messages, outbox, max_prs, console, sink=sink)


def process(
    repo: Path,
    messages: Sequence[Message],
    outbox: Path,
    max_prs: int,
    console: Console | None = None,
    subscribers: Sequence[tuple[WorkQueue, Handler]] = (),
    sink: Sink | None = None,
) -> RunState:
    """Run the indexer, merger and publisher handlers on a run's first messages (run.started
    and its catalogue events), plus any ``subscribers``; the publisher's state of the run.
    """
    console = console or Console(stderr=True)
    repo = repo.resolve()
    commit = head_commit(repo)
    with _progress(console) as progress:
        index_task = progress.add_task("index", total=1)
        index = load_index(repo, commit)
        progress.advance(index_task)
        merge_task = progress.add_task("merge", total=None)

        def delivered(message: Message) -> None:
            if isinstance(message, PlanetMatched):
                progress.advance(merge_task)

        bus = MemoryBus(delivered)
        sink = sink or LocalSink(repo, outbox)
        publisher = PublisherHandler(sink, GitTexts(repo), max_prs)

        def planned(message: Message) -> Iterable[Message]:
            outputs = IndexerHandler(index)(message)
            for output in outputs:
                if isinstance(output, RunPlanned):
                    total = progress.tasks[merge_task].total or 0
                    progress.update(merge_task, total=total + output.planets)
            return outputs

        for queue, handler in subscribers:
            bus.subscribe(queue, handler)
        bus.subscribe(topology.INDEXER, planned)
        bus.subscribe(topology.MERGER, merge_handler)
        bus.subscribe(topology.PUBLISHER, publisher)
        for message in messages:
            bus.publish(message)
        bus.run_until_idle()
    started = next(m for m in messages if isinstance(m, RunStarted))
    return publisher.run(started.run_id)


def report(state: RunState) -> dict[str, Any]:
    """The JSON report of a run: per-catalogue counts and every proposed system."""
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
                        "field": c.field,
                        "kind": c.kind.value,
                        "old": show(c.old) if c.old else None,
                        "new": show(c.new),
                        "source": c.source.value,
                        "source_date": c.source_date.isoformat() if c.source_date else None,
                        "source_row": c.source_row,
                    }
                    for c in p.changes
                ],
            }
        )
    return {
        "run_id": state.run_id,
        "complete": state.completed,
        "catalogues": catalogues,
        "systems": systems,
        "refused": [r.model_dump() for r in state.refusals],
        "not_added": [
            {"source": o.source.value, "row": o.row, "planet": o.planet, "reason": o.reason}
            for o in state.not_added()
        ],
        "quality": report_of(state).model_dump(mode="json"),
    }


def summary_table(state: RunState) -> Table:
    table = Table(title=f"OEC Sync run {state.run_id}")
    columns = [
        "rows",
        "records",
        "matched",
        "changed",
        "unchanged",
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


def write_quality_html(state: RunState, path: Path) -> None:
    """The run's quality page (as the publisher serves it at /runs/{id}/quality.html)."""
    path.write_text(render(report_of(state)), "utf-8")


def write_report(state: RunState, path: Path) -> None:
    path.write_text(json.dumps(report(state), indent=2, ensure_ascii=False) + "\n", "utf-8")
