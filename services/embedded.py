"""``oec-sync run``: the four services' handlers in one process over the in-memory bus."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from common import topology
from common.bus import Handler
from common.bus.memory import MemoryBus
from common.changes import Conflict
from common.errors import NoCatalogueError, RepositoryBusyError
from common.gitrepo import GitError, head_commit
from common.interrupts import Interrupted, checkpoint, raising
from common.memo import Memo
from common.messages import (
    CatalogueDownloaded,
    CatalogueFailed,
    Message,
    PlanetMatched,
    RunPlanned,
    RunStarted,
)
from common.oec.index import AliasIndex
from common.prtext import show
from common.records import Source
from common.topology import WorkQueue
from services.fetcher.handler import fetch
from services.indexer.handler import IndexerHandler
from services.merger.handler import handle as merge_handler
from services.merger.handler import remembering
from services.publisher.handler import GitTexts, PublisherHandler, RunState
from services.publisher.local import LocalSink
from services.publisher.model import DryRun, Sink
from services.publisher.quality_page import render, report_of


def index_cache(repo: Path) -> Path:
    """Where the alias index of a checkout is kept between runs: inside its .git."""
    return repo / ".git" / "oec-sync" / "index.pickle"


def memo_path(repo: Path) -> Path:
    """Where a checkout's runs remember what they computed (common/memo.py)."""
    return repo / ".git" / "oec-sync" / "memo.sqlite3"


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


class Stages:
    """The run's stages as rich progress bars: index and merge, then the publisher's build,
    branches, drafts and refs (a :class:`common.progress.Progress`)."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.current: TaskID | None = None
        self.name = ""

    def stage(self, name: str, total: int | None = None) -> None:
        if name == self.name and self.current is not None:
            self.progress.update(self.current, total=total)
            return
        self._finish()
        self.name = name
        self.current = self.progress.add_task(name, total=total)

    def advance(self, steps: int = 1) -> None:
        if self.current is not None and steps:
            self.progress.advance(self.current, steps)

    def note(self, line: str) -> None:
        self.progress.console.print(line, markup=False, highlight=False, soft_wrap=True)

    def _finish(self) -> None:
        """The current stage as done: a bar without a total shows full at its end."""
        if self.current is not None:
            task = self.progress.tasks[self.current]
            if task.total is None:
                self.progress.update(self.current, total=max(task.completed, 1))
            self.progress.update(self.current, completed=task.total or 1)
            self.progress.stop_task(self.current)

    def done(self) -> None:
        self._finish()
        self.current = None
        self.name = ""


@contextmanager
def _progress(console: Console) -> Iterator[Stages]:
    columns = (
        TextColumn("{task.description:<10}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        stages = Stages(progress)
        yield stages
        stages.done()


def stopped_line(sink: Sink) -> str:
    """The one line an interrupted run ends with: what, if anything, it wrote."""
    if isinstance(sink, DryRun):
        return "interrupted; nothing was written (dry run)"
    if isinstance(sink, LocalSink):
        if sink.written is None:
            return "interrupted; nothing was written"
        branches, drafts = sink.written
        return f"interrupted after writing all {branches} branches and {drafts} drafts"
    return "interrupted; what was pushed so far stays, the next run takes up the rest"


@contextmanager
def ending_cleanly(console: Console, sink: Sink) -> Iterator[None]:
    """Within the block, SIGINT/SIGTERM and a git failure end the process with one line
    (git's own message for a failure) and a non-zero exit, not a traceback."""
    try:
        with raising():
            yield
    except Interrupted as stop:
        console.print(stopped_line(sink), markup=False, highlight=False, soft_wrap=True)
        sys.exit(stop.exit_code)
    except (GitError, RepositoryBusyError) as failure:
        console.print(str(failure), style="red", markup=False, highlight=False, soft_wrap=True)
        sys.exit(1)


def run(
    repo: Path,
    locations: dict[Source, str],
    outbox: Path,
    max_prs: int,
    console: Console | None = None,
    sink: Sink | None = None,
    full: bool = False,
) -> RunState:
    """Fetch, match, merge and publish once; returns the publisher's state of the run.

    ``sink`` defaults to branches in ``repo`` and PR drafts in ``outbox``. Raises
    NoCatalogueError, having written nothing, when no catalogue could be read. ``full``
    recomputes what earlier runs remembered.
    """
    with httpx.Client() as client:
        messages = fetch(locations, client)
    failures = {m.source.value: m.error for m in messages if isinstance(m, CatalogueFailed)}
    if not any(isinstance(m, CatalogueDownloaded) for m in messages):
        raise NoCatalogueError(failures)
    state = process(repo, messages, outbox, max_prs, console, sink=sink, full=full)
    if not state.planned:
        raise NoCatalogueError({s.value: e for s, e in state.failed.items()})
    return state


def process(
    repo: Path,
    messages: Sequence[Message],
    outbox: Path,
    max_prs: int,
    console: Console | None = None,
    subscribers: Sequence[tuple[WorkQueue, Handler]] = (),
    sink: Sink | None = None,
    full: bool = False,
) -> RunState:
    """Run the indexer, merger and publisher handlers on a run's first messages (run.started
    and its catalogue events), plus any ``subscribers``; the publisher's state of the run.

    What an earlier run computed from the same inputs is taken from the checkout's memo
    instead of computed again, unless ``full``; either way this run's results are
    remembered once it has finished.
    """
    console = console or Console(stderr=True)
    repo = repo.resolve()
    commit = head_commit(repo)
    with _progress(console) as stages, Memo(memo_path(repo), reading=not full) as memo:
        stages.stage("index", 1)
        index = load_index(repo, commit)
        stages.advance()
        stages.stage("merge", None)
        planets = 0

        def delivered(message: Message) -> None:
            if isinstance(message, PlanetMatched):
                stages.advance()
                checkpoint("match")

        bus = MemoryBus(delivered)
        sink = sink or LocalSink(repo, outbox)
        publisher = PublisherHandler(sink, GitTexts(repo), max_prs, progress=stages, memo=memo)

        def planned(message: Message) -> Iterable[Message]:
            nonlocal planets
            outputs = IndexerHandler(index, memo)(message)
            for output in outputs:
                if isinstance(output, RunPlanned):
                    planets += output.planets
                    stages.stage("merge", planets)
            return outputs

        for queue, handler in subscribers:
            bus.subscribe(queue, handler)
        bus.subscribe(topology.INDEXER, planned)
        bus.subscribe(topology.MERGER, remembering(memo, merge_handler))
        bus.subscribe(topology.PUBLISHER, publisher)
        for message in messages:
            bus.publish(message)
        bus.run_until_idle()
    started = next(m for m in messages if isinstance(m, RunStarted))
    return publisher.run(started.run_id)


def report(state: RunState, dry_run: bool = False) -> dict[str, Any]:
    """The JSON report of a run: per-catalogue counts and every proposed system.

    In a dry run's report (``dry_run``: true) each state says what would have happened."""
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
        "quality": report_of(state).model_dump(mode="json"),
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


def _write_whole(path: Path, text: str) -> None:
    """``text`` at ``path`` or, if this is interrupted, the file as it was."""
    temporary = path.with_name(path.name + ".tmp")
    try:
        temporary.write_text(text, "utf-8")
        temporary.replace(path)
    finally:
        temporary.unlink(missing_ok=True)


def write_quality_html(state: RunState, path: Path) -> None:
    """The run's quality page (as the publisher serves it at /runs/{id}/quality.html)."""
    _write_whole(path, render(report_of(state)))


def write_report(state: RunState, path: Path, dry_run: bool = False) -> None:
    document = report(state, dry_run)
    _write_whole(path, json.dumps(document, indent=2, ensure_ascii=False) + "\n")
