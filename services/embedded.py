"""``oec-sync run``: the four services' handlers in one process over the in-memory bus.

The composition root of the embedded run: it wires the handlers, the memory bus, the sink
and the progress display, and nothing imports it but the commands that run it (services/cli.py,
services/snapshots.py). What it used to lend others lives with its owners: the index cache in
common/oec/index.py, the run's report and quality page in services/publisher/reports.py.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from common import matching, topology
from common.errors import GitError, NoCatalogueError, RepositoryBusyError
from common.gitrepo import head_commit
from common.interrupts import Interrupted, checkpoint, interruption, raising
from common.messages import (
    CatalogueDownloaded,
    CatalogueFailed,
    Message,
    PlanetOutcomes,
    PlanetsMatched,
    RunPlanned,
    RunStarted,
)
from common.oec.index import AliasIndex, load_index, pickled_index
from common.records import Source
from common.topology import WorkQueue
from runtime.bus import Handler
from runtime.bus.memory import MemoryBus
from runtime.forked import Ahead
from runtime.memo import Memo
from services.fetcher.handler import fetch
from services.indexer.ahead import MatchingAhead
from services.indexer.handler import IndexerHandler, Read, read_download
from services.merger.ahead import MergingAhead
from services.merger.handler import each_planet, remembering
from services.merger.handler import handle as merge_handler
from services.publisher.handler import GitTexts, PublisherHandler, RunState
from services.publisher.local import LocalSink
from services.publisher.model import DryRun, Sink


class IndexedTexts(GitTexts):
    """The publisher's texts from the index the run matched against, which read them for
    the merges already (0.2 s of git the second time); git for anything else."""

    def __init__(self, repo: Path, index: AliasIndex) -> None:
        super().__init__(repo)
        self.index = index

    def read(self, commit: str, files: list[str]) -> dict[str, str | None]:
        if commit == self.index.commit:
            try:
                return dict(self.index.system_texts(files))
            except KeyError:  # a file the index does not hold: git says what it is
                pass
        return super().read(commit, files)


def remember_tips(sink: Sink, memo: Memo) -> None:
    """A local sink keeps what its branches hold in the run's memo (tips are facts of the
    checkout; an unchanged run then looks up none of its 4,330 branches' files: 0.2 s)."""
    local = sink.sink if isinstance(sink, DryRun) else sink
    if isinstance(local, LocalSink) and local.memo is None:
        local.memo = memo


def memo_path(repo: Path) -> Path:
    """Where a checkout's runs remember what they computed (common/memo.py)."""
    return repo / ".git" / "oec-sync" / "memo.sqlite3"


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
            total = max(task.completed, 1) if task.total is None else task.total
            # A stage with nothing to do ends as 0/0, not 1/0.
            self.progress.update(self.current, total=total, completed=total)
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
    except Exception:
        wrapped = interruption()  # a signal that a library turned into an error of its own
        if wrapped is None:
            raise
        console.print(stopped_line(sink), markup=False, highlight=False, soft_wrap=True)
        sys.exit(wrapped.exit_code)


def run(
    repo: Path,
    locations: dict[Source, str],
    outbox: Path,
    max_prs: int,
    console: Console | None = None,
    sink: Sink | None = None,
    full: bool = False,
    processes: int = 1,
) -> RunState:
    """Fetch, match, merge and publish once; returns the publisher's state of the run.

    ``sink`` defaults to branches in ``repo`` and PR drafts in ``outbox``. Raises
    NoCatalogueError, having written nothing, when no catalogue could be read. ``full``
    recomputes what earlier runs remembered; with ``processes`` of 2 or more, the planets
    and files are merged and built in that many child processes (runtime/forked.py).
    """
    messages = fetch(locations)
    failures = {m.source.value: m.error for m in messages if isinstance(m, CatalogueFailed)}
    if not any(isinstance(m, CatalogueDownloaded) for m in messages):
        raise NoCatalogueError(failures)
    state = process(
        repo,
        messages,
        outbox,
        max_prs,
        console,
        sink=sink,
        full=full,
        processes=processes,
    )
    if not state.planned:
        raise NoCatalogueError({s.value: e for s, e in state.failed.items()})
    return state


def _built_index(job: tuple[Path, str]) -> bytes:
    return pickled_index(*job)


def process(
    repo: Path,
    messages: Sequence[Message],
    outbox: Path,
    max_prs: int,
    console: Console | None = None,
    subscribers: Sequence[tuple[WorkQueue, Handler]] = (),
    sink: Sink | None = None,
    full: bool = False,
    processes: int = 1,
) -> RunState:
    """Run the indexer, merger and publisher handlers on a run's first messages (run.started
    and its catalogue events), plus any ``subscribers``; the publisher's state of the run.

    What an earlier run computed from the same inputs is taken from the checkout's memo
    instead of computed again, unless ``full``; either way this run's results are
    remembered once it has finished. With ``processes`` of 2 or more, the planets of
    each catalogue are merged in child processes while the run reads the next one, and a
    large build is done in them too.
    """
    console = console or Console(stderr=True)
    repo = repo.resolve()
    commit = head_commit(repo)
    with (
        _progress(console) as stages,
        Memo(memo_path(repo), reading=not full) as memo,
        MergingAhead(processes, merge_handler) as ahead,
        MatchingAhead(processes) as matching_ahead,
    ):
        stages.stage("index", 1)
        read_before: dict[str, Read] = {}

        def build_reading(repo: Path, commit: str) -> bytes:
            """The index built from nothing (a first run), in a child while this process
            reads the downloads: each takes ~1 s on the full data."""
            with Ahead(processes, _built_index, "indexer") as building:
                building.start([[("index", (repo, commit))]])
                for message in messages:
                    if isinstance(message, CatalogueDownloaded):
                        # What cannot be read here is read again by the indexer, which
                        # reports it as usual.
                        with suppress(Exception):
                            read_before[message.message_id] = read_download(message, memo)
                # Until the index comes: the names normalised here are not normalised again
                # when matched (the child's cache is not the run's).
                records = [r for catalogue, _ in read_before.values() for r in catalogue.records]
                for start in range(0, len(records), 100):
                    if building.arrived("index"):
                        break
                    matching.prepare(records[start : start + 100])
                built = building.value("index")
            return built if built is not None else pickled_index(repo, commit)

        index = load_index(repo, commit, build_reading)
        # What was read beside a new index is matched in full: all but the first catalogue
        # in a child, while the run matches the first.
        matching_ahead.start(index, [(key, read[0].records) for key, read in read_before.items()])
        stages.advance()
        stages.stage("merge", None)
        planets = 0

        def delivered(message: Message) -> None:
            if isinstance(message, PlanetsMatched):  # merged: the merger has handled it
                if stages.name == "merge":
                    stages.advance(len(message.planets))
                checkpoint("match")

        bus = MemoryBus(delivered)
        sink = sink or LocalSink(repo, outbox, processes=processes)
        remember_tips(sink, memo)
        texts = IndexedTexts(repo, index)
        publisher = PublisherHandler(
            sink, texts, max_prs, progress=stages, memo=memo, build_processes=processes
        )

        def planned(message: Message) -> Iterable[Message]:
            nonlocal planets
            # One process, one memo: the indexer answers for every planet merged before.
            indexer = IndexerHandler(
                index, memo, merges=memo, read=read_before, matched_ahead=matching_ahead.value
            )
            outputs = indexer(message)
            for output in outputs:
                if isinstance(output, RunPlanned):
                    planets += output.planets
                    stages.stage("merge", planets)
                elif isinstance(output, PlanetOutcomes):  # answered for by the indexer
                    stages.advance(len(output.remembered))
            ahead.start(outputs)
            return outputs

        for queue, handler in subscribers:
            bus.subscribe(queue, handler)
        bus.subscribe(topology.INDEXER, planned)
        bus.subscribe(topology.MERGER, each_planet(remembering(memo, merge_handler, ahead.value)))
        bus.subscribe(topology.PUBLISHER, publisher)
        for message in messages:
            bus.publish(message)
        bus.run_until_idle()
    started = next(m for m in messages if isinstance(m, RunStarted))
    return publisher.run(started.run_id)
