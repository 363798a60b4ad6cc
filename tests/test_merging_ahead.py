"""An embedded run merging and building in child processes (runtime/forked.py) gives what
one process gives, a planet failing there still fails the usual way, and no child outlives
its run."""

from __future__ import annotations

import multiprocessing
import os
import signal
from pathlib import Path
from typing import Any

import pytest

from common import proposals
from common.interrupts import Interrupted
from common.messages import Message, PlanetMatched
from services import embedded
from services.merger import ahead
from services.publisher import ahead as publisher_ahead
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
def from_children(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Two merging processes for every catalogue, however small; the planets whose outcome
    came from a child, from now on."""
    monkeypatch.setenv("OEC_SYNC_PROCESSES", "2")
    monkeypatch.setattr(ahead, "MIN_PLANETS", 1)
    answered: list[str] = []
    real = ahead.MergingAhead.value

    def value(self: ahead.MergingAhead, planet: PlanetMatched) -> bytes | None:
        outcome = real(self, planet)
        if outcome is not None:
            answered.append(planet.record.name)
        return outcome

    monkeypatch.setattr(ahead.MergingAhead, "value", value)
    return answered


def same_run(repo: Path, report: dict[str, Any], other: Path, other_report: dict[str, Any]) -> None:
    assert branch_trees(repo) == branch_trees(other)
    assert drafts(repo.parent / "outbox") == drafts(other.parent / "outbox")
    for key in ("systems", "conflicts", "refused", "not_added", "catalogues", "failed_planets"):
        assert report[key] == other_report[key]


def test_merging_in_children_gives_what_one_process_gives(
    one_process: tuple[Path, dict[str, Any]], from_children: list[str], twins: tuple[Path, Path]
) -> None:
    repo = twins[1]

    code, report = run(repo, repo.parent, "--max-prs", "0")

    assert code == 0
    planets = sum(c["records"] for c in report["catalogues"].values())
    assert len(from_children) == planets  # every planet was merged in a child
    same_run(repo, report, *one_process)
    assert multiprocessing.active_children() == []


def test_a_planet_failing_in_a_child_is_merged_again_here_and_reported_failed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, from_children: list[str]
) -> None:
    real_merge = embedded.merge_handler
    tries: list[int] = []  # the processes that tried 11 Com b (a child's list is its own)

    def merge(message: Message) -> list[Message]:
        assert isinstance(message, PlanetMatched)
        if message.record.name == "11 Com b":
            tries.append(os.getpid())
            raise ValueError("a bug this planet triggers")
        return real_merge(message)

    monkeypatch.setattr(embedded, "merge_handler", merge)
    repo = make_repo(tmp_path / "oec")

    code, report = run(repo, tmp_path, "--max-prs", "0")

    assert code == 0
    (failed,) = report["failed_planets"]
    assert (failed["planet"], failed["error"]) == (
        "11 Com b",
        "ValueError: a bug this planet triggers",
    )
    assert tries and set(tries) == {os.getpid()}  # here too, after the child's try
    assert "11 Com b" not in from_children and from_children
    assert "oec-sync/11_Com" not in " ".join(branches(repo))


def test_the_planets_of_a_child_that_died_are_merged_here(
    one_process: tuple[Path, dict[str, Any]],
    from_children: list[str],
    twins: tuple[Path, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real_merge = embedded.merge_handler
    run_pid = os.getpid()

    def merge(message: Message) -> list[Message]:
        assert isinstance(message, PlanetMatched)
        if os.getpid() != run_pid and message.record.name == "11 Com b":
            os.kill(os.getpid(), signal.SIGKILL)  # as the kernel's OOM killer would
        return real_merge(message)

    monkeypatch.setattr(embedded, "merge_handler", merge)
    repo = twins[1]

    code, report = run(repo, repo.parent, "--max-prs", "0")

    assert code == 0
    planets = sum(c["records"] for c in report["catalogues"].values())
    assert "11 Com b" not in from_children and 0 < len(from_children) < planets
    same_run(repo, report, *one_process)
    assert multiprocessing.active_children() == []


def test_an_interrupted_run_leaves_no_child_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, from_children: list[str]
) -> None:
    started: list[int] = []
    real_start = ahead.MergingAhead.start

    def start(self: ahead.MergingAhead, messages: Any) -> None:
        real_start(self, messages)
        started.append(len(self.ahead._children))

    def value(self: ahead.MergingAhead, planet: PlanetMatched) -> bytes | None:
        raise Interrupted(signal.SIGINT)  # Ctrl-C while the run waits for a child

    monkeypatch.setattr(ahead.MergingAhead, "start", start)
    monkeypatch.setattr(ahead.MergingAhead, "value", value)
    repo = make_repo(tmp_path / "oec")

    code, _ = run(repo, tmp_path, "--max-prs", "0")

    assert code == 130
    assert started and started[0] == 2
    assert multiprocessing.active_children() == []
    assert branches(repo) == {}


@pytest.fixture
def built_in_children(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Two building processes for any number of files; the files whose build came from a
    child, from now on."""
    monkeypatch.setenv("OEC_SYNC_PROCESSES", "2")
    monkeypatch.setattr(publisher_ahead, "MIN_FILES", 1)
    answered: list[str] = []
    real = publisher_ahead.BuildingAhead.value

    def value(self: publisher_ahead.BuildingAhead, file: str) -> bytes | None:
        built = real(self, file)
        if built is not None:
            answered.append(file)
        return built

    monkeypatch.setattr(publisher_ahead.BuildingAhead, "value", value)
    return answered


def test_building_in_children_gives_what_one_process_gives(
    one_process: tuple[Path, dict[str, Any]],
    built_in_children: list[str],
    twins: tuple[Path, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real_build = proposals.build_file
    run_pid = os.getpid()

    def build_file(file: str, *args: Any) -> proposals.FileBuilt:
        if os.getpid() != run_pid and file == "systems/11 Com.xml":
            raise ValueError("a bug only a child has")  # built again in the run's process
        return real_build(file, *args)

    monkeypatch.setattr(proposals, "build_file", build_file)
    repo = twins[1]

    code, report = run(repo, repo.parent, "--max-prs", "0")

    assert code == 0
    edited = [s["file"] for s in report["systems"] if not s["new"]]
    assert "systems/11 Com.xml" in edited and "systems/11 Com.xml" not in built_in_children
    assert set(edited) - {"systems/11 Com.xml"} <= set(built_in_children)
    same_run(repo, report, *one_process)
    assert multiprocessing.active_children() == []
