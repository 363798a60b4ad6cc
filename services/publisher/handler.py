"""Publisher: collect a run's outcomes, and once every planet is accounted for, publish.

A run is complete when every catalogue announced in run.started has either failed or been
planned (run.planned says how many planets follow) and that many outcomes have arrived.
Outcomes are kept one per planet (catalogue, row, name), so a redelivered or replayed outcome
counts once; a planet that failed (planet.failed: a merger gave up on it) and succeeded after
all (its dead letter replayed after a fix) counts as succeeded. A run with failed planets
completes with them listed (``failed_planets``) and an alert.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel

from common.changes import Conflict, PatchRef, SystemPatch
from common.gitrepo import read_files, tree_entries
from common.matching import MatchKind
from common.memo import Store
from common.messages import (
    CatalogueCounts,
    CatalogueFailed,
    Message,
    PatchSummary,
    PlanetFailed,
    PlanetOutcomes,
    PlanetRemembered,
    PlanetUnchanged,
    RunCompleted,
    RunPlanned,
    RunStarted,
    SystemChanged,
)
from common.progress import QUIET, Progress
from common.proposals import Built, Refusal, build
from common.records import Source
from runtime import alerts
from services.publisher.ahead import BuildingAhead
from services.publisher.model import CapsInFileOrder, Published, PublishState, Sink

Outcome = SystemChanged | PlanetUnchanged | PlanetRemembered | PlanetFailed


def unchanged(outcome: Outcome) -> bool:
    """Whether a planet's outcome is planet.unchanged (or was, remembered)."""
    if isinstance(outcome, PlanetRemembered):
        return not outcome.changed
    return isinstance(outcome, PlanetUnchanged)


def planet_key(outcome: Outcome) -> str:
    """Which planet of the run an outcome is about, whatever the outcome."""
    return f"{outcome.source.value}/{outcome.row}/{outcome.planet}"


class RunState(BaseModel):
    run_id: str
    catalogues: list[Source] | None = None
    planned: dict[Source, RunPlanned] = {}
    failed: dict[Source, str] = {}
    outcomes: dict[str, Outcome] = {}  # by planet_key
    received: dict[Source, int] = {}  # distinct planets per catalogue, kept with `outcomes`
    published: list[Published] = []
    refusals: list[Refusal] = []
    conflicts: list[Conflict] = []
    deferred: list[str] = []  # edited files left unbuilt: the cap was full before them
    completed: bool = False

    def accounted(self) -> bool:
        """Every catalogue of the run has failed or delivered all its planned outcomes."""
        if self.catalogues is None:
            return False
        return all(
            source in self.failed
            or (
                source in self.planned
                and self.received.get(source, 0) >= self.planned[source].planets
            )
            for source in self.catalogues
        )

    def add_outcome(self, outcome: Outcome) -> None:
        """Count each planet once, however often its outcome is delivered; a success replaces
        a failure, never the other way round."""
        key = planet_key(outcome)
        known = self.outcomes.get(key)
        if known is None:
            self.outcomes[key] = outcome
            self.received[outcome.source] = self.received.get(outcome.source, 0) + 1
        elif isinstance(known, PlanetFailed) and not isinstance(outcome, PlanetFailed):
            self.outcomes[key] = outcome

    def replaced_failure(self, message: Message) -> PlanetFailed | None:
        """The recorded failure of the planet ``message`` reports a success for, if any."""
        if not isinstance(message, SystemChanged | PlanetUnchanged | PlanetRemembered):
            return None
        known = self.outcomes.get(planet_key(message))
        return known if isinstance(known, PlanetFailed) else None

    def moot(self, message: Message) -> bool:
        """Whether a failure would change nothing: a planet.failed for a planet with an
        outcome already, a catalogue.failed for a planned catalogue (a replay that failed
        after the original had succeeded, or the same failure again)."""
        if isinstance(message, PlanetFailed):
            return planet_key(message) in self.outcomes
        return isinstance(message, CatalogueFailed) and message.source in self.planned

    def record(self, message: Message) -> None:
        """Take in one input of the publisher; a repeated message changes nothing."""
        if isinstance(message, RunStarted):
            self.catalogues = list(message.catalogues)
        elif isinstance(message, RunPlanned):
            self.planned[message.source] = message
        elif isinstance(message, CatalogueFailed):
            if not self.moot(message):
                self.failed[message.source] = message.error
        elif isinstance(message, SystemChanged | PlanetUnchanged | PlanetRemembered | PlanetFailed):
            self.add_outcome(message)

    def failed_planets(self) -> list[PlanetFailed]:
        """The planets no merger could handle, in catalogue and row order."""
        rank = {source: i for i, source in enumerate(Source)}
        failed = [o for o in self.outcomes.values() if isinstance(o, PlanetFailed)]
        return sorted(failed, key=lambda o: (rank[o.source], o.row, o.planet))

    def patches(self) -> list[SystemPatch | PatchRef]:
        """The run's patches in catalogue, then row order, whatever order they arrived in
        (mergers finish in any order; the fold must not depend on which was faster). Those
        of unchanged planets hold only what the row said and its conflicts. A remembered
        planet's patch is a :class:`PatchRef`, loaded if its file is built again (a new
        system's is loaded now: building new systems reads their records)."""
        rank = {source: i for i, source in enumerate(Source)}
        keyed: list[tuple[tuple[int, int, str, str], SystemPatch | PatchRef]] = []
        for o in self.outcomes.values():
            patch: SystemPatch | PatchRef | None = None
            if isinstance(o, PlanetRemembered) and o.patch is not None:
                patch = o.outcome().patch if o.patch.new_system else _reference(o, o.patch)
            elif isinstance(o, SystemChanged | PlanetUnchanged):
                patch = o.patch
            if patch is not None:
                keyed.append(((rank[o.source], o.row, o.planet, o.message_id), patch))
        return [patch for _, patch in sorted(keyed, key=lambda item: item[0])]

    def loaded_patches(self) -> list[SystemPatch]:
        """:meth:`patches`, every one loaded (what the quality report compares)."""
        return [p.load() if isinstance(p, PatchRef) else p for p in self.patches()]

    def not_added(self) -> list[PlanetUnchanged]:
        """New planets and systems the mergers refused (no OEC discovery method, a host-less
        brown dwarf, a Controversial row ...), in catalogue and row order."""
        rank = {source: i for i, source in enumerate(Source)}
        refused = [
            o.outcome() if isinstance(o, PlanetRemembered) else o
            for o in self.outcomes.values()
            if unchanged(o) and o.match_kind in (MatchKind.HOST, MatchKind.NONE)
        ]
        kept = [o for o in refused if isinstance(o, PlanetUnchanged)]
        return sorted(kept, key=lambda o: (rank[o.source], o.row, o.planet))

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
                elif unchanged(outcome):
                    counts.unchanged += outcome.match_kind is MatchKind.PLANET
                elif outcome.match_kind is MatchKind.PLANET:
                    counts.changed += 1
                elif outcome.match_kind is MatchKind.HOST:
                    counts.new_planets += 1
                elif outcome.match_kind is MatchKind.NONE:
                    counts.new_systems += 1
            result[source] = counts
        return result


def _reference(remembered: PlanetRemembered, summary: PatchSummary) -> PatchRef:
    def load() -> SystemPatch:
        patch = remembered.outcome().patch
        assert patch is not None  # the summary says it has one
        return patch

    return PatchRef(summary.file, summary.inputs, summary.empty, remembered.commit, load)


class GitTexts:
    """System files at a commit, read from the OEC checkout in one git call each."""

    def __init__(self, repo: Path) -> None:
        self.repo = repo

    def read(self, commit: str, files: list[str]) -> dict[str, str | None]:
        return read_files(self.repo, commit, files)

    def blobs(self, commit: str) -> dict[str, str]:
        """Every file path at ``commit``, with the git id of its text."""
        return {path: blob for path, (_, blob) in (tree_entries(self.repo, commit) or {}).items()}


class PublisherHandler:
    def __init__(
        self,
        sink: Sink,
        texts: GitTexts,
        max_prs: int,
        alert: Callable[[alerts.Alert], object] | None = None,
        progress: Progress = QUIET,
        memo: Store | None = None,
        build_processes: int = 1,
    ) -> None:
        self.sink = sink
        self.memo = memo
        # Processes a build may use (services/publisher/ahead.py); 1: this one alone.
        self.build_processes = build_processes
        self.texts = texts
        self.alert = alert
        self.progress = progress
        self.max_prs = max_prs
        self.runs: dict[str, RunState] = {}

    def run(self, run_id: str) -> RunState:
        state = self.runs.get(run_id)
        if state is None:  # not setdefault: a RunState per message costs ~0.5 s per run
            state = self.runs[run_id] = RunState(run_id=run_id)
        return state

    def __call__(self, message: Message) -> list[Message]:
        if isinstance(message, PlanetOutcomes):
            return [out for outcome in message.outcomes() for out in self(outcome)]
        state = self.run(message.run_id)
        if state.completed:
            return []
        state.record(message)
        if not state.accounted():
            return []
        return [self.finish(state)]

    def proposals(self, state: RunState) -> Built:
        patches = state.patches()
        commits = {p.base_commit for p in patches} | {p.commit for p in state.planned.values()}
        base = next(iter(sorted(commits)), "")
        if len(commits) > 1:
            raise RuntimeError(f"run {state.run_id} mixes index commits {sorted(commits)}")
        if not base:
            return Built()
        files = sorted({p.file for p in patches if not p.new_system and not p.is_empty})
        self.progress.stage("build", None)
        blobs = self.texts.blobs(base)

        def read(wanted: list[str]) -> dict[str, str | None]:
            return self.texts.read(base, wanted)

        if self.max_prs and isinstance(self.sink, CapsInFileOrder):
            # Such a sink chooses in file order: no need to build past its last slot.
            rule = self.sink.takes_slot(base, files)
            built = build(patches, blobs, read, base, self.progress, self.memo, self.max_prs, rule)
        else:
            with BuildingAhead(self.build_processes) as elsewhere:
                built = build(
                    patches, blobs, read, base, self.progress, self.memo, elsewhere=elsewhere
                )
        if self.memo is not None:
            self.memo.save()
        return built

    def finish(self, state: RunState) -> RunCompleted:
        built = self.proposals(state)
        # A run in which no catalogue could be read touches nothing, not even the fork.
        if state.planned:
            state.published = self.sink.publish(built.proposals, self.max_prs, self.progress)
        state.refusals = built.refusals
        state.conflicts = built.conflicts
        state.deferred = built.deferred
        state.completed = True
        if self.alert is not None:
            for failed in (p for p in state.published if p.state is PublishState.FAILED):
                error = failed.error or "unknown error"
                self.alert(alerts.push_failed(failed.proposal.branch, error, state.run_id))
            if failed_planets := state.failed_planets():
                described = {
                    f"{p.source.value} row {p.row}": f"{p.planet}: {p.error}"
                    for p in failed_planets
                }
                self.alert(alerts.planets_failed(state.run_id, described))
        written = sum(p.state in {"opened", "updated"} for p in state.published)
        queued = sum(p.state == "queued" for p in state.published)
        return RunCompleted(
            run_id=state.run_id,
            systems=len(built.proposals),
            branches_written=written,
            queued=queued + len(built.deferred),
        )
