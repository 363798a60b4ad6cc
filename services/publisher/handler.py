"""Publisher: collect a run's outcomes, and once every planet is accounted for, publish.

A run is complete when every catalogue announced in run.started has either failed or been
planned (run.planned says how many planets follow) and that many outcomes have arrived.
Outcomes are keyed by message id, so a redelivered or replayed outcome counts once.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel

from common.changes import SystemPatch
from common.gitrepo import read_files
from common.matching import MatchKind
from common.messages import (
    CatalogueCounts,
    CatalogueFailed,
    Message,
    PlanetFailed,
    PlanetOutcome,
    PlanetUnchanged,
    RunCompleted,
    RunPlanned,
    RunStarted,
    SystemChanged,
)
from common.proposals import Proposal, Refusal, build
from common.records import Source
from services.publisher.model import Published, Sink


class RunState(BaseModel):
    run_id: str
    catalogues: list[Source] | None = None
    planned: dict[Source, RunPlanned] = {}
    failed: dict[Source, str] = {}
    outcomes: dict[str, SystemChanged | PlanetUnchanged | PlanetFailed] = {}
    published: list[Published] = []
    refusals: list[Refusal] = []
    completed: bool = False

    def accounted(self) -> bool:
        if self.catalogues is None:
            return False
        per_source: dict[Source, int] = {}
        for outcome in self.outcomes.values():
            per_source[outcome.source] = per_source.get(outcome.source, 0) + 1
        return all(
            source in self.failed
            or (
                source in self.planned and per_source.get(source, 0) >= self.planned[source].planets
            )
            for source in self.catalogues
        )

    def patches(self) -> list[SystemPatch]:
        return [o.patch for o in self.outcomes.values() if isinstance(o, SystemChanged)]

    def counts(self) -> dict[Source, CatalogueCounts]:
        """Per catalogue: what the indexer saw plus what the mergers decided."""
        result: dict[Source, CatalogueCounts] = {}
        for source, planned in self.planned.items():
            counts = planned.counts.model_copy()
            for outcome in self.outcomes.values():
                if outcome.source is not source:
                    continue
                if isinstance(outcome, PlanetFailed):
                    counts.failed += 1
                elif isinstance(outcome, PlanetUnchanged):
                    counts.unchanged += outcome.match_kind is MatchKind.PLANET
                elif outcome.match_kind is MatchKind.PLANET:
                    counts.changed += 1
                elif outcome.match_kind is MatchKind.HOST:
                    counts.new_planets += 1
                elif outcome.match_kind is MatchKind.NONE:
                    counts.new_systems += 1
            result[source] = counts
        return result


TextReader = Callable[[str, list[str]], dict[str, str | None]]


def git_reader(repo: Path) -> TextReader:
    return lambda commit, files: read_files(repo, commit, files)


class PublisherHandler:
    def __init__(self, sink: Sink, read_texts: TextReader, max_prs: int) -> None:
        self.sink = sink
        self.read_texts = read_texts
        self.max_prs = max_prs
        self.runs: dict[str, RunState] = {}

    def run(self, run_id: str) -> RunState:
        return self.runs.setdefault(run_id, RunState(run_id=run_id))

    def __call__(self, message: Message) -> list[Message]:
        state = self.run(message.run_id)
        if state.completed:
            return []
        if isinstance(message, RunStarted):
            state.catalogues = list(message.catalogues)
        elif isinstance(message, RunPlanned):
            state.planned[message.source] = message
        elif isinstance(message, CatalogueFailed):
            state.failed[message.source] = message.error
        elif isinstance(message, PlanetOutcome):
            state.outcomes.setdefault(message.message_id, message)  # type: ignore[arg-type]
        if not state.accounted():
            return []
        return [self.finish(state)]

    def proposals(self, state: RunState) -> tuple[list[Proposal], list[Refusal]]:
        patches = state.patches()
        commits = {p.base_commit for p in patches} | {p.commit for p in state.planned.values()}
        base = next(iter(sorted(commits)), "")
        if len(commits) > 1:
            raise RuntimeError(f"run {state.run_id} mixes index commits {sorted(commits)}")
        files = sorted({p.file for p in patches if not p.new_system})
        texts = self.read_texts(base, files) if base else {}
        return build(patches, lambda f: texts[f] if f in texts else self._read(base, f), base)

    def _read(self, base: str, file: str) -> str | None:
        return self.read_texts(base, [file]).get(file)

    def finish(self, state: RunState) -> RunCompleted:
        proposals, refusals = self.proposals(state)
        state.published = self.sink.publish(proposals, self.max_prs)
        state.refusals = refusals
        state.completed = True
        written = sum(p.state in {"opened", "updated"} for p in state.published)
        queued = sum(p.state == "queued" for p in state.published)
        return RunCompleted(
            run_id=state.run_id, systems=len(proposals), branches_written=written, queued=queued
        )
