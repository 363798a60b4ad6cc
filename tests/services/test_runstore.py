"""The publisher's durable run state: restarts, redeliveries, replays, the run timeout."""

from __future__ import annotations

from pathlib import Path

from common.matching import MatchKind
from common.messages import (
    CatalogueCounts,
    CatalogueFailed,
    Message,
    PlanetFailed,
    PlanetUnchanged,
    RunCompleted,
    RunPlanned,
    RunStarted,
)
from common.proposals import Proposal
from common.records import Source
from runtime import alerts
from services.publisher.durable import DurablePublisher
from services.publisher.handler import PublisherHandler, RunState
from services.publisher.model import Published, PublishState
from services.publisher.runstore import RunPhase, RunStore

RUN = "20260822-abcdef01"
COMMIT = "a" * 40


class Sink:
    def __init__(self) -> None:
        self.calls = 0

    def publish(
        self, proposals: list[Proposal], max_prs: int, progress: object = None
    ) -> list[Published]:
        self.calls += 1
        return []


class Texts:
    def read(self, commit: str, files: list[str]) -> dict[str, str | None]:
        return dict.fromkeys(files)

    def blobs(self, commit: str) -> dict[str, str]:
        return {}


def publisher(path: Path, sink: Sink, timeout: float = 3600) -> DurablePublisher:
    handler = PublisherHandler(sink, Texts(), max_prs=0)  # type: ignore[arg-type]
    return DurablePublisher(handler, RunStore(path), timeout)


def planned(source: Source, planets: int) -> RunPlanned:
    return RunPlanned(
        run_id=RUN,
        source=source,
        catalogue=f"{source}.csv",
        commit=COMMIT,
        planets=planets,
        counts=CatalogueCounts(rows=planets, records=planets),
    )


def outcome(source: Source, row: int) -> PlanetUnchanged:
    return PlanetUnchanged(
        run_id=RUN, source=source, row=row, planet=f"P-{row} b", match_kind=MatchKind.PLANET
    )


def feed(target: DurablePublisher, *messages: Message) -> list[Message]:
    """Hand messages to the publisher as the bus does, then let its finisher run; returns
    the run.completed messages announced."""
    for message in messages:
        assert target(message) == []  # recorded, acknowledged at once
    announced: list[Message] = []
    target.finish_ready(announced.extend)
    return announced


def test_a_restarted_publisher_loses_nothing_and_counts_each_outcome_once(tmp_path: Path) -> None:
    db = tmp_path / "runs.sqlite3"
    first = publisher(db, Sink())
    started = RunStarted(run_id=RUN, catalogues=[Source.NASA])
    assert feed(first, started, planned(Source.NASA, 3), outcome(Source.NASA, 1)) == []
    assert feed(first, outcome(Source.NASA, 1)) == []  # a redelivery
    first.store.close()

    sink = Sink()
    second = publisher(db, sink)  # a new process on the same data dir
    assert feed(second, outcome(Source.NASA, 2), outcome(Source.NASA, 1)) == []
    (done,) = feed(second, outcome(Source.NASA, 3))
    assert isinstance(done, RunCompleted)
    assert sink.calls == 1
    assert second.store.phase(RUN) is RunPhase.COMPLETE
    (summary,) = second.store.summaries()
    assert summary["state"] == "complete"
    assert summary["progress"]["nasa"]["planned"] == 3
    assert summary["progress"]["nasa"]["outcomes"] == 3


def test_a_run_accounted_for_when_the_process_died_is_published_after_the_restart(
    tmp_path: Path,
) -> None:
    db = tmp_path / "runs.sqlite3"
    first = publisher(db, Sink())
    for message in (
        RunStarted(run_id=RUN, catalogues=[Source.NASA]),
        planned(Source.NASA, 1),
        outcome(Source.NASA, 1),
    ):
        first(message)
    assert first.ready.is_set()  # ... and then the process is killed before publishing
    first.store.close()

    sink = Sink()
    second = publisher(db, sink)
    announced: list[Message] = []
    assert second.finish_ready(announced.extend) == 1
    assert isinstance(announced[0], RunCompleted) and sink.calls == 1


def test_a_complete_run_ignores_redeliveries_and_replays(tmp_path: Path) -> None:
    sink = Sink()
    target = publisher(tmp_path / "runs.sqlite3", sink)
    messages = [
        RunStarted(run_id=RUN, catalogues=[Source.NASA]),
        planned(Source.NASA, 1),
        outcome(Source.NASA, 1),
    ]
    assert len(feed(target, *messages)) == 1
    assert feed(target, *messages) == []
    target.handler.runs.clear()  # also after a restart: the store says complete
    assert feed(target, *messages) == []
    assert sink.calls == 1


def test_a_quiet_run_is_published_incomplete_and_completed_by_late_outcomes(
    tmp_path: Path,
) -> None:
    sink = Sink()
    target = publisher(tmp_path / "runs.sqlite3", sink, timeout=10)
    feed(
        target,
        RunStarted(run_id=RUN, catalogues=[Source.NASA]),
        planned(Source.NASA, 2),
        outcome(Source.NASA, 1),
    )
    last = target.store.unfinished()[0][1]
    announced: list[Message] = []
    assert target.sweep(announced.extend, now=last + 5) == 0  # not quiet long enough
    assert target.sweep(announced.extend, now=last + 11) == 1
    assert isinstance(announced[0], RunCompleted)
    assert target.store.phase(RUN) is RunPhase.INCOMPLETE
    assert target.sweep(announced.extend, now=last + 30) == 0  # nothing new since
    assert sink.calls == 1

    (done,) = feed(target, outcome(Source.NASA, 2))
    assert isinstance(done, RunCompleted)
    assert target.store.phase(RUN) is RunPhase.COMPLETE
    assert sink.calls == 2


def test_a_catalogue_that_failed_and_is_replayed_after_a_fix_reopens_its_run(
    tmp_path: Path,
) -> None:
    sink = Sink()
    target = publisher(tmp_path / "runs.sqlite3", sink)
    failed = CatalogueFailed(run_id=RUN, source=Source.NASA, url="nasa.csv", error="bad header")
    (first,) = feed(
        target,
        RunStarted(run_id=RUN, catalogues=[Source.NASA, Source.EU]),
        failed,
        planned(Source.EU, 1),
        outcome(Source.EU, 1),
    )
    assert isinstance(first, RunCompleted)
    assert feed(target, planned(Source.NASA, 1)) == []  # reopened, waiting for NASA
    assert target.store.phase(RUN) is RunPhase.COLLECTING
    (second,) = feed(target, outcome(Source.NASA, 1))
    assert isinstance(second, RunCompleted)
    assert sink.calls == 2
    state = target.store.load(RUN)
    assert state is not None and not state.failed and len(state.outcomes) == 2


def test_patches_come_in_catalogue_then_row_order_whatever_the_arrival() -> None:
    from common.changes import SystemPatch
    from common.messages import SystemChanged
    from services.publisher.handler import RunState

    def changed(source: Source, row: int) -> SystemChanged:
        patch = SystemPatch(file=f"systems/{source}-{row}.xml", base_commit=COMMIT)
        return SystemChanged(
            run_id=RUN,
            source=source,
            row=row,
            planet=f"P-{row} b",
            match_kind=MatchKind.PLANET,
            patch=patch,
        )

    arrivals = [changed(Source.EU, 2), changed(Source.NASA, 9), changed(Source.EU, 1)]
    files = []
    for order in (arrivals, arrivals[::-1]):
        state = RunState(run_id=RUN)
        for message in order:
            state.add_outcome(message)
        files.append([p.file for p in state.patches()])
    assert (
        files[0]
        == files[1]
        == [
            "systems/nasa-9.xml",
            "systems/exoplanet.eu-1.xml",
            "systems/exoplanet.eu-2.xml",
        ]
    )


def test_news_for_a_run_being_published_is_recorded_and_folded_in_afterwards(
    tmp_path: Path,
) -> None:
    sink = Sink()
    target = publisher(tmp_path / "runs.sqlite3", sink, timeout=10)
    feed(
        target,
        RunStarted(run_id=RUN, catalogues=[Source.NASA]),
        planned(Source.NASA, 2),
        outcome(Source.NASA, 1),
    )
    target._finishing.add(RUN)  # the timeout sweep is publishing it right now
    assert target(outcome(Source.NASA, 2)) == []
    assert len(target.state(RUN).outcomes) == 1  # the state being published is left alone
    target._finishing.discard(RUN)
    target.handler.runs.pop(RUN)  # as _publish does after a timed-out publication
    assert len(target.state(RUN).outcomes) == 2


def failure(source: Source, row: int) -> PlanetFailed:
    return PlanetFailed(
        run_id=RUN,
        source=source,
        row=row,
        planet=f"P-{row} b",
        match_kind=MatchKind.PLANET,
        error="oec-sync.merger refused it",
    )


def test_a_failed_planet_completes_its_run_with_the_failure_reported(tmp_path: Path) -> None:
    sink = Sink()
    sent: list[alerts.Alert] = []
    handler = PublisherHandler(sink, Texts(), max_prs=0, alert=sent.append)  # type: ignore[arg-type]
    target = DurablePublisher(handler, RunStore(tmp_path / "runs.sqlite3"), 3600)
    started = RunStarted(run_id=RUN, catalogues=[Source.NASA])
    (done,) = feed(
        target, started, planned(Source.NASA, 2), outcome(Source.NASA, 1), failure(Source.NASA, 2)
    )
    assert isinstance(done, RunCompleted)
    report = target.report(RUN)
    assert report is not None and report["state"] == "complete"
    assert report["failed_planets"] == [
        {"source": "nasa", "row": 2, "planet": "P-2 b", "error": "oec-sync.merger refused it"}
    ]
    assert report["catalogues"]["nasa"]["failed"] == 1
    (summary,) = target.store.summaries()
    assert summary["failed_planets"] == 1
    (alert,) = sent
    assert alert.kind is alerts.AlertKind.PLANETS_FAILED
    assert alert.details == {"nasa row 2": "P-2 b: oec-sync.merger refused it"}


def test_a_failed_planet_that_succeeds_after_a_fix_reopens_its_run(tmp_path: Path) -> None:
    sink = Sink()
    db = tmp_path / "runs.sqlite3"
    target = publisher(db, sink)
    started = RunStarted(run_id=RUN, catalogues=[Source.NASA])
    assert (
        len(
            feed(
                target,
                started,
                planned(Source.NASA, 2),
                outcome(Source.NASA, 1),
                failure(Source.NASA, 2),
            )
        )
        == 1
    )
    assert feed(target, failure(Source.NASA, 2)) == []  # the same failure again: nothing

    # The dead letter is replayed after the fix and the planet comes through: published again.
    (again,) = feed(target, outcome(Source.NASA, 2))
    assert isinstance(again, RunCompleted) and sink.calls == 2
    report = target.report(RUN)
    assert report is not None and report["failed_planets"] == []
    assert report["catalogues"]["nasa"]["unchanged"] == 2
    assert target.store.summaries()[0]["failed_planets"] == 0

    # A replay that fails where the original succeeded changes nothing, after a restart too.
    target.store.close()
    target = publisher(db, sink)
    assert feed(target, failure(Source.NASA, 1), failure(Source.NASA, 2)) == []
    assert sink.calls == 2
    assert target.report(RUN)["failed_planets"] == []  # type: ignore[index]


def test_an_input_is_durable_once_flushed_and_every_read_sees_what_was_added(
    tmp_path: Path,
) -> None:
    db = tmp_path / "runs.sqlite3"
    store = RunStore(db)
    elsewhere = RunStore(db)  # what a restarted process would find
    store.add(RunStarted(run_id=RUN, catalogues=[Source.NASA]))
    store.add(planned(Source.NASA, 2))
    store.add(outcome(Source.NASA, 1))
    assert elsewhere.phase(RUN) is None  # not acknowledged yet: the broker still holds them
    (summary,) = store.summaries()  # the store's own reads include them
    assert summary["progress"]["nasa"]["outcomes"] == 1
    store.add(outcome(Source.NASA, 2))
    store.flush()
    state = elsewhere.load(RUN)
    assert state is not None and state.accounted()


def test_a_runs_summary_counts_its_systems_by_state_in_old_stores_too(tmp_path: Path) -> None:
    def published(name: str, state: PublishState) -> Published:
        proposal = Proposal(
            file=f"systems/{name}.xml",
            system=name,
            branch=f"oec-sync/{name}",
            new=False,
            base_commit=COMMIT,
            text="<system/>\n",
            changes=[],
            new_planets=[],
            title=name,
            body="",
            commit_message=name,
        )
        return Published(proposal=proposal, state=state)

    store = RunStore(tmp_path / "runs.sqlite3")
    store.add(RunStarted(run_id=RUN, catalogues=[Source.NASA]))
    state = RunState(run_id=RUN)
    state.published = [
        published("A", PublishState.OPENED),
        published("B", PublishState.UP_TO_DATE),
        published("C", PublishState.OPENED),
    ]
    store.finished(state, RunPhase.COMPLETE)
    expected = {"opened": 2, "up to date": 1}
    assert store.summaries()[0]["systems"] == expected
    store._db.execute("UPDATE runs SET systems = NULL")  # as a store written before them
    assert store.summaries()[0]["systems"] == expected
