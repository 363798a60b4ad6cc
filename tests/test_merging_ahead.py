"""An embedded run matching, merging, building and writing drafts with a child process
(runtime/forked.py) gives what one process gives, a planet or file failing there is done
again by the run (a planet failing there too fails the usual way: tests/test_embedded.py),
and no child outlives its run."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from common import proposals
from common.gitwrite import Writer
from common.interrupts import Interrupted
from common.messages import CatalogueDownloaded, Message, PlanetMatched
from common.oec.index import AliasIndex, index_cache
from common.records import Source
from runtime import forked
from services import embedded
from services.indexer import ahead as indexer_ahead
from services.indexer import handler as indexer_handler
from services.merger import ahead
from services.publisher import ahead as publisher_ahead
from services.publisher import local
from tests.gitutil import make_repo
from tests.test_embedded import branches, run
from tests.test_incremental import branch_trees, drafts


@pytest.fixture
def one_process(
    twins: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> tuple[Path, dict[str, Any]]:
    """The sample run in the run's own process on the first of two identical checkouts:
    the checkout and its report."""
    monkeypatch.setenv("OEC_SYNC_PROCESSES", "1")
    repo = twins[0]
    code, report = run(repo, repo.parent, "--max-prs", "0")
    assert code == 0 and report["systems"]
    return repo, report


@pytest.fixture
def done_in_run(monkeypatch: pytest.MonkeyPatch) -> set[str]:
    """The keys of the items the run did ahead itself while it waited for a child (what
    it answers for like a child's), from now on."""
    run_pid = os.getpid()
    done: set[str] = set()
    real = forked._worked

    def worked(work: Any, group: Any) -> forked.Results:
        if os.getpid() == run_pid:
            done.update(key for key, _ in group)
        return real(work, group)

    monkeypatch.setattr(forked, "_worked", worked)
    return done


@pytest.fixture
def from_children(monkeypatch: pytest.MonkeyPatch, done_in_run: set[str]) -> list[str]:
    """Two merging processes (the run and a child) for every catalogue, however small; the
    planets whose outcome came from the child, from now on."""
    monkeypatch.setenv("OEC_SYNC_PROCESSES", "2")
    monkeypatch.setattr(ahead, "MIN_PLANETS", 1)
    answered: list[str] = []
    real = ahead.MergingAhead.value

    def value(self: ahead.MergingAhead, planet: PlanetMatched) -> bytes | None:
        outcome = real(self, planet)
        if outcome is not None and planet.message_id not in done_in_run:
            answered.append(planet.record.name)
        return outcome

    monkeypatch.setattr(ahead.MergingAhead, "value", value)
    return answered


def same_run(repo: Path, report: dict[str, Any], other: Path, other_report: dict[str, Any]) -> None:
    assert branch_trees(repo) == branch_trees(other)
    assert drafts(repo.parent / "outbox") == drafts(other.parent / "outbox")
    for key in ("systems", "conflicts", "refused", "not_added", "catalogues", "failed_planets"):
        assert report[key] == other_report[key]


def test_merging_with_a_child_gives_what_one_process_gives(
    one_process: tuple[Path, dict[str, Any]], from_children: list[str], twins: tuple[Path, Path]
) -> None:
    repo = twins[1]

    code, report = run(repo, repo.parent, "--max-prs", "0")

    assert code == 0
    assert from_children  # how the run and a child share: tests/test_forked.py
    same_run(repo, report, *one_process)
    assert multiprocessing.active_children() == []


def test_what_fails_or_dies_in_a_child_is_merged_by_the_run(
    one_process: tuple[Path, dict[str, Any]],
    from_children: list[str],
    twins: tuple[Path, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real_merge = embedded.merge_handler
    run_pid = os.getpid()

    def merge(message: Message) -> list[Message]:
        assert isinstance(message, PlanetMatched)
        if os.getpid() != run_pid:  # one child per catalogue
            if message.record.source is Source.NASA:
                raise ValueError("a bug only NASA's child has")
            os.kill(os.getpid(), signal.SIGKILL)  # exoplanet.eu's dies, as by the OOM killer
        return real_merge(message)

    monkeypatch.setattr(embedded, "merge_handler", merge)
    repo = twins[1]

    code, report = run(repo, repo.parent, "--max-prs", "0")

    assert code == 0
    assert from_children == []
    assert report["failed_planets"] == []
    same_run(repo, report, *one_process)
    assert multiprocessing.active_children() == []


@pytest.fixture
def matched_in_children(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Two processes for a first run's matching, however few the records: the number of
    matches each download's child sent back, from now on."""
    monkeypatch.setenv("OEC_SYNC_PROCESSES", "2")
    monkeypatch.setattr(indexer_ahead, "MIN_RECORDS", 1)
    sent: list[int] = []
    real = indexer_ahead.MatchingAhead.value

    def value(self: indexer_ahead.MatchingAhead, key: str) -> bytes | None:
        matches = real(self, key)
        if matches is not None:
            sent.append(len(indexer_handler.KnownMatches.model_validate_json(matches).by_digest))
        return matches

    monkeypatch.setattr(indexer_ahead.MatchingAhead, "value", value)
    return sent


def test_matching_the_later_catalogue_in_a_child_gives_what_one_process_gives(
    one_process: tuple[Path, dict[str, Any]],
    matched_in_children: list[int],
    twins: tuple[Path, Path],
) -> None:
    repo = twins[1]

    code, report = run(repo, repo.parent, "--max-prs", "0")

    assert code == 0
    # exoplanet.eu's records (the sample's second catalogue), all matched in the child
    assert matched_in_children == [report["catalogues"]["exoplanet.eu"]["records"]]
    same_run(repo, report, *one_process)
    assert multiprocessing.active_children() == []


def test_a_catalogue_whose_matching_dies_in_the_child_is_matched_by_the_run(
    one_process: tuple[Path, dict[str, Any]],
    matched_in_children: list[int],
    twins: tuple[Path, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def matched(records: Any) -> bytes:
        os.kill(os.getpid(), signal.SIGKILL)  # as by the OOM killer
        raise AssertionError("killed")

    monkeypatch.setattr(indexer_ahead, "_matched", matched)
    repo = twins[1]

    code, report = run(repo, repo.parent, "--max-prs", "0")

    assert code == 0
    assert matched_in_children == []
    same_run(repo, report, *one_process)
    assert multiprocessing.active_children() == []


def test_an_interrupted_run_leaves_no_child_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, from_children: list[str]
) -> None:
    started: list[int] = []
    real_start = ahead.MergingAhead.start

    def start(self: ahead.MergingAhead, messages: Any) -> None:
        real_start(self, messages)
        started.append(len(multiprocessing.active_children()))

    def value(self: ahead.MergingAhead, planet: PlanetMatched) -> bytes | None:
        raise Interrupted(signal.SIGINT)  # Ctrl-C while the run waits for a child

    monkeypatch.setattr(ahead.MergingAhead, "start", start)
    monkeypatch.setattr(ahead.MergingAhead, "value", value)
    repo = make_repo(tmp_path / "oec")

    code, _ = run(repo, tmp_path, "--max-prs", "0")

    assert code == 130
    assert started and started[0] == 1
    assert multiprocessing.active_children() == []
    assert branches(repo) == {}


@pytest.fixture
def built_in_children(monkeypatch: pytest.MonkeyPatch, done_in_run: set[str]) -> list[str]:
    """Two building processes (the run and a child) for any number of files, a group per
    file; the files whose build came from the child, from now on."""
    monkeypatch.setenv("OEC_SYNC_PROCESSES", "2")
    monkeypatch.setattr(publisher_ahead, "MIN_FILES", 1)
    monkeypatch.setattr(publisher_ahead, "GROUP", 1)
    answered: list[str] = []
    real = publisher_ahead.BuildingAhead.value

    def value(self: publisher_ahead.BuildingAhead, file: str) -> bytes | None:
        built = real(self, file)
        if built is not None and file not in done_in_run:
            answered.append(file)
        return built

    monkeypatch.setattr(publisher_ahead.BuildingAhead, "value", value)
    return answered


def edited_files(report: dict[str, Any]) -> list[str]:
    return [s["file"] for s in report["systems"] if not s["new"]]


def test_building_with_a_child_gives_what_one_process_gives(
    one_process: tuple[Path, dict[str, Any]],
    built_in_children: list[str],
    twins: tuple[Path, Path],
) -> None:
    repo = twins[1]

    code, report = run(repo, repo.parent, "--max-prs", "0")

    assert code == 0
    edited = set(edited_files(report))
    assert edited & set(built_in_children)  # the child built some
    same_run(repo, report, *one_process)
    assert multiprocessing.active_children() == []


def test_a_file_whose_build_fails_in_the_child_is_built_by_the_run(
    one_process: tuple[Path, dict[str, Any]],
    built_in_children: list[str],
    twins: tuple[Path, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real_build = proposals.build_file
    run_pid = os.getpid()

    def build_file(file: str, *args: Any) -> proposals.FileBuilt:
        if os.getpid() != run_pid:
            raise ValueError("a bug only the child has")
        return real_build(file, *args)

    monkeypatch.setattr(proposals, "build_file", build_file)
    repo = twins[1]

    code, report = run(repo, repo.parent, "--max-prs", "0")

    assert code == 0
    assert built_in_children == []
    same_run(repo, report, *one_process)


def test_a_first_run_builds_its_index_in_a_child_while_it_reads_the_catalogues(
    one_process: tuple[Path, dict[str, Any]],
    twins: tuple[Path, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OEC_SYNC_PROCESSES", "2")
    repo = twins[1]
    run_pid = os.getpid()
    built_here: list[str] = []
    read_before: list[str] = []
    real_build, real_read = AliasIndex.build, indexer_handler.read_download

    def build(repo: Path, commit: str | None = None) -> AliasIndex:
        if os.getpid() == run_pid:
            built_here.append(str(repo))
        return real_build(repo, commit)

    def read_download(message: CatalogueDownloaded, memo: Any) -> indexer_handler.Read:
        read_before.append(message.source.value)  # before the run has an index
        assert not index_cache(repo).exists()
        time.sleep(0.3)  # as long as the full data's take: the child is at work by then
        return real_read(message, memo)

    monkeypatch.setattr(AliasIndex, "build", staticmethod(build))
    monkeypatch.setattr(embedded, "read_download", read_download)

    code, report = run(repo, repo.parent, "--max-prs", "0")

    assert code == 0
    assert built_here == []
    assert sorted(read_before) == ["exoplanet.eu", "nasa"]
    assert index_cache(repo).exists()
    same_run(repo, report, *one_process)
    assert multiprocessing.active_children() == []


@pytest.fixture
def drafts_by_child(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Two processes for a run's drafts, however few: a child writes them while the run
    writes the branches. Each process that writes drafts leaves a file named by its pid in
    the folder returned."""
    monkeypatch.setenv("OEC_SYNC_PROCESSES", "2")
    monkeypatch.setattr(local, "MIN_FORKED_WRITES", 1)
    writers = tmp_path / "writers"
    writers.mkdir()
    real = local._write_all

    def write_all(files: list[tuple[str, bytes]]) -> bytes:
        (writers / str(os.getpid())).touch()
        return real(files)

    monkeypatch.setattr(local, "_write_all", write_all)
    return writers


def test_writing_drafts_in_a_child_gives_what_one_process_gives(
    one_process: tuple[Path, dict[str, Any]], drafts_by_child: Path, twins: tuple[Path, Path]
) -> None:
    repo = twins[1]

    code, report = run(repo, repo.parent, "--max-prs", "0")

    assert code == 0
    assert {p.name for p in drafts_by_child.iterdir()} - {str(os.getpid())}  # a child wrote
    same_run(repo, report, *one_process)
    assert multiprocessing.active_children() == []


def test_drafts_a_child_failed_to_write_are_written_by_the_run(
    one_process: tuple[Path, dict[str, Any]],
    drafts_by_child: Path,
    twins: tuple[Path, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = local._write_all
    run_pid = os.getpid()

    def write_all(files: list[tuple[str, bytes]]) -> bytes:
        if os.getpid() != run_pid:
            real(files[: len(files) // 2])  # half the drafts written, then the disk is full
            raise OSError("No space left on device")
        return real(files)

    monkeypatch.setattr(local, "_write_all", write_all)
    repo = twins[1]

    code, report = run(repo, repo.parent, "--max-prs", "0")

    assert code == 0
    same_run(repo, report, *one_process)
    assert not list((repo.parent / "outbox").glob("*.tmp"))
    assert multiprocessing.active_children() == []


def test_a_run_interrupted_while_its_child_writes_drafts_leaves_none(
    drafts_by_child: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outbox = tmp_path / "outbox"
    real_stage = Writer.stage

    def stage(self: Writer, *args: Any, **kwargs: Any) -> dict[str, str]:
        real_stage(self, *args, **kwargs)
        deadline = time.monotonic() + 30
        while not list(outbox.glob("*.tmp")):  # the child has begun
            assert time.monotonic() < deadline
            time.sleep(0.001)
        raise Interrupted(signal.SIGINT)  # Ctrl-C once the branches' objects are written

    monkeypatch.setattr(Writer, "stage", stage)
    repo = make_repo(tmp_path / "oec")

    code, _ = run(repo, tmp_path, "--max-prs", "0")

    assert code == 130
    assert list(outbox.iterdir()) == []
    assert branches(repo) == {}
    assert multiprocessing.active_children() == []
