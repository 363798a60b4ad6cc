"""Incremental runs: what earlier runs computed is remembered (common/memo.py), and a run
whose inputs did not change costs look-ups, yet gives exactly what ``--full`` gives."""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import common.memo
from common import gitrepo, matching
from common.catalogues import fields, read_catalogue_file
from common.matching import Match, MatchKind
from common.memo import Store
from common.messages import (
    Message,
    PlanetMatched,
    PlanetRemembered,
    PlanetUnchanged,
    SystemChanged,
)
from common.oec import render
from common.oec.index import AliasIndex
from common.proposals import Refusal, new_system_proposals
from common.records import PlanetRecord
from runtime.bus import Handler
from runtime.memo import Memo
from services import embedded
from services.cli import app
from tests.gitutil import IDENTITY, git, make_repo
from tests.paths import FIXTURES
from tests.test_embedded import EU, NASA, run


def branch_trees(repo: Path) -> dict[str, tuple[str, str, str]]:
    """Each oec-sync branch: (tree, parent, message) — what a reviewer sees of it."""
    out = git(
        repo,
        "for-each-ref",
        "--format=%(refname:short)%00%(tree)%00%(parent)%00%(contents)%00",
        "refs/heads/oec-sync",
    )
    fields = out.split("\0")
    return {
        fields[i].strip(): (fields[i + 1], fields[i + 2], fields[i + 3])
        for i in range(0, len(fields) - 4, 4)
    }


def drafts(outbox: Path) -> dict[str, str]:
    return {p.name: p.read_text(encoding="utf-8") for p in sorted(outbox.iterdir())}


def stateless(systems: list[dict[str, object]]) -> list[dict[str, object]]:
    return [{k: v for k, v in system.items() if k != "state"} for system in systems]


def assert_same_as_full(
    incremental: Path, full: Path, report: dict[str, Any], full_report: dict[str, Any]
) -> None:
    """The incremental run's branches, drafts and report are the ``--full`` run's; only the
    states differ (the full run's checkout had no branches yet)."""
    assert branch_trees(incremental) == branch_trees(full)
    assert drafts(incremental.parent / "outbox") == drafts(full.parent / "outbox")
    assert stateless(report["systems"]) == stateless(full_report["systems"])
    for key in ("conflicts", "refused", "not_added", "catalogues"):
        assert report[key] == full_report[key]


def edited_eu(target: Path, rows: int, planet: str = "") -> Path:
    """The sample's exoplanet.eu download with the orbital period of ``rows`` planets
    (named ``planet``, if given) changed, as a newer download would change it."""
    with open(EU, newline="", encoding="utf-8") as f:
        table = list(csv.reader(f))
    column = table[0].index("orbital_period")
    edited = 0
    for row in table[1:]:
        if edited < rows and row[column] and row[0].startswith(planet):
            row[column] = f"{float(row[column]) * 1.0001:.6f}"
            edited += 1
    assert edited == rows
    with open(target, "w", newline="", encoding="utf-8") as f:
        csv.writer(f, lineterminator="\n").writerows(table)
    return target


def counting_merges(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The files of the planets merged from now on (not answered from the memo)."""
    merged: list[str] = []
    real = embedded.merge_handler

    def merge(message: Message) -> list[Message]:
        assert isinstance(message, PlanetMatched)
        merged.append(message.match.file or "(new)")
        return list(real(message))

    monkeypatch.setattr(embedded, "merge_handler", merge)
    return merged


def counting_sent_to_mergers(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The planets sent to a merger from now on (the indexer answers for the others)."""
    sent: list[str] = []
    real = embedded.remembering

    def remembering(memo: Store, merge: Handler, *merged: Any) -> Handler:
        handle = real(memo, merge, *merged)

        def counted(message: Message) -> Iterable[Message]:
            assert isinstance(message, PlanetMatched)
            sent.append(message.record.name)
            return handle(message)

        return counted

    monkeypatch.setattr(embedded, "remembering", remembering)
    return sent


def counting_rows_read(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many rows each catalogue read from now on turned into records."""
    read: list[int] = []
    real = fields.Columns.__init__

    def init(self: fields.Columns, rows: Any, *args: Any, **kwargs: Any) -> None:
        read.append(len(rows))
        real(self, rows, *args, **kwargs)

    monkeypatch.setattr(fields.Columns, "__init__", init)
    return read


def counting_matches(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the records matched from now on (not taken from an earlier download)."""
    matched: list[str] = []
    real = matching.match

    def match(index: AliasIndex, record: PlanetRecord) -> Match:
        matched.append(record.name)
        return real(index, record)

    monkeypatch.setattr(matching, "match", match)
    return matched


def maintainer_edit(repo: Path) -> None:
    """One upstream commit touching one system, identical (same id) in every checkout."""
    path = repo / "systems" / "11 Com.xml"
    path.write_text(path.read_text("utf-8").replace("G8 III<", "G8 IIIb<"), "utf-8")
    dated = {
        "GIT_AUTHOR_DATE": "2026-01-01T00:00:00Z",
        "GIT_COMMITTER_DATE": "2026-01-01T00:00:00Z",
    }
    subprocess.run(
        ["git", "-C", str(repo), *IDENTITY, "commit", "--quiet", "-am", "11 Com: spectral type"],
        env={**os.environ, **dated},
        check=True,
    )


@pytest.fixture
def after_one_run(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    """A checkout of the sample after one uncapped run, and that run's report."""
    repo = make_repo(tmp_path / "oec")
    code, report = run(repo, tmp_path, "--max-prs", "0")
    assert code == 0 and report["systems"]
    return repo, report


def test_a_run_with_nothing_changed_merges_nothing_and_writes_nothing(
    after_one_run: tuple[Path, dict[str, Any]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo, first = after_one_run
    refs = git(repo, "for-each-ref", "refs/heads/oec-sync")
    written = {p: p.stat().st_mtime_ns for p in (tmp_path / "outbox").iterdir()}
    merged = counting_merges(monkeypatch)
    sent = counting_sent_to_mergers(monkeypatch)

    code, second = run(repo, tmp_path, "--max-prs", "0")

    assert code == 0
    assert merged == []  # every planet answered from the memo
    assert sent == []  # by the indexer, which sent no planet on
    assert git(repo, "for-each-ref", "refs/heads/oec-sync") == refs
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "outbox").iterdir()} == written
    assert second["systems"] == [{**s, "state": "up to date"} for s in first["systems"]]
    for key in ("catalogues", "conflicts", "not_added", "refused"):
        assert second[key] == first[key]


def test_an_unchanged_run_decodes_only_the_outcomes_of_new_systems(
    after_one_run: tuple[Path, dict[str, Any]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo, first = after_one_run
    assert any(s["new"] for s in first["systems"])
    decoded: list[MatchKind] = []
    real = PlanetRemembered.outcome

    def outcome(self: PlanetRemembered) -> SystemChanged | PlanetUnchanged:
        decoded.append(self.match_kind)
        return real(self)

    monkeypatch.setattr(PlanetRemembered, "outcome", outcome)
    args = ["run", "--oec-repo", str(repo), "--nasa", NASA, "--eu", EU, "--max-prs", "0"]
    result = CliRunner().invoke(app, [*args, "--outbox", str(tmp_path / "outbox")])

    assert result.exit_code == 0, result.output
    assert "up to date" in result.output
    # A new system is built from its records; every other planet is counted and keyed by
    # the summary the memo kept, its outcome never decoded.
    assert decoded and set(decoded) == {MatchKind.NONE}


def test_an_unchanged_run_reads_no_file_with_git(
    after_one_run: tuple[Path, dict[str, Any]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo, _ = after_one_run
    asked: list[tuple[str, ...]] = []
    real = gitrepo.git_bytes

    def recording(repo: Path, *args: str, **kwargs: Any) -> bytes:
        asked.append(args)
        return real(repo, *args, **kwargs)

    monkeypatch.setattr(gitrepo, "git_bytes", recording)
    code, second = run(repo, tmp_path, "--max-prs", "0")

    assert code == 0
    assert {s["state"] for s in second["systems"]} == {"up to date"}
    # Neither the system files (named by their git ids in the memo's keys) nor the files on
    # the branches (the CLI's sink remembers the tips it wrote) are read.
    assert not [a for a in asked if a[0] == "cat-file"]


def test_changed_rows_merge_only_their_planets_and_equal_a_full_run(
    twins: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    incremental, full = twins
    download = tmp_path / "eu.csv"  # the same address every day, as the fetcher sees it
    shutil.copy(EU, download)
    run(incremental, incremental.parent, "--max-prs", "0", eu=str(download))
    edited_eu(download, rows=3)
    merged = counting_merges(monkeypatch)
    matched = counting_matches(monkeypatch)
    sent = counting_sent_to_mergers(monkeypatch)
    read = counting_rows_read(monkeypatch)

    _, report = run(incremental, incremental.parent, "--max-prs", "0", eu=str(download))
    assert read == [3]  # the NASA download is unchanged; of exoplanet.eu's, its edited rows
    assert len(merged) == 3  # only the three edited rows were merged again
    assert len(sent) == 3  # the others' outcomes came from the indexer
    assert len(matched) == 3  # and matched again: the other rows repeat the last download
    monkeypatch.undo()
    _, full_report = run(full, full.parent, "--max-prs", "0", "--full", eu=str(download))

    assert_same_as_full(incremental, full, report, full_report)


def test_a_changed_row_of_a_new_system_renders_only_that_system_again(
    twins: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    incremental, full = twins
    download = tmp_path / "eu.csv"
    shutil.copy(EU, download)
    _, first = run(incremental, incremental.parent, "--max-prs", "0", eu=str(download))
    assert sum(bool(s["new"]) for s in first["systems"]) > 1
    edited_eu(download, rows=1, planet="TOI-1135 b")
    rendered: list[str] = []
    real = render.render_new_systems

    def counting(hosts: Sequence[Sequence[PlanetRecord]], known: Store | None) -> list[object]:
        rendered.extend(h[0].host or "" for h in hosts)
        return list(real(hosts, known))

    monkeypatch.setattr(render, "render_new_systems", counting)
    _, report = run(incremental, incremental.parent, "--max-prs", "0", eu=str(download))
    assert rendered == ["TOI-1135"]
    monkeypatch.undo()
    _, full_report = run(full, full.parent, "--max-prs", "0", "--full", eu=str(download))

    assert_same_as_full(incremental, full, report, full_report)


def test_a_commit_to_one_system_moves_only_its_branch_and_equals_a_full_run(
    twins: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    incremental, full = twins
    run(incremental, incremental.parent, "--max-prs", "0")
    run(full, full.parent, "--max-prs", "0", "--full")
    before = branch_trees(incremental)
    assert before == branch_trees(full) and "oec-sync/11_Com" in before
    maintainer_edit(incremental)
    maintainer_edit(full)
    merged = counting_merges(monkeypatch)

    run(incremental, incremental.parent, "--max-prs", "0")
    moved = {b for b, tree in branch_trees(incremental).items() if before[b] != tree}
    assert moved == {"oec-sync/11_Com"}  # the other branches stay on their parent
    assert merged and set(merged) == {"systems/11 Com.xml"}
    monkeypatch.undo()
    run(full, full.parent, "--max-prs", "0", "--full")
    assert branch_trees(incremental) == branch_trees(full)
    assert drafts(incremental.parent / "outbox") == drafts(full.parent / "outbox")


def test_new_code_recomputes_everything(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = make_repo(tmp_path / "oec")
    _, first = run(repo, tmp_path, "--max-prs", "0")
    monkeypatch.setattr(common.memo, "CODE_VERSION", "a rules change")
    merged = counting_merges(monkeypatch)
    _, again = run(repo, tmp_path, "--max-prs", "0")
    planets = sum(c["records"] for c in first["catalogues"].values())
    assert len(merged) == planets
    assert again["systems"] == [{**s, "state": "up to date"} for s in first["systems"]]


def test_full_ignores_the_memo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = make_repo(tmp_path / "oec")
    _, first = run(repo, tmp_path, "--max-prs", "0")
    merged = counting_merges(monkeypatch)
    run(repo, tmp_path, "--max-prs", "0", "--full")
    assert len(merged) == sum(c["records"] for c in first["catalogues"].values())


def test_a_remembered_new_system_is_rebased_and_still_gives_way_to_a_file_of_its_name(
    tmp_path: Path,
) -> None:
    nasa = read_catalogue_file(FIXTURES / "practice" / "nasa.csv")
    rows = [r for r in nasa.records if r.name == "TOI-1248 b"]
    with Memo(tmp_path / "memo.sqlite3") as memo:
        (made,), refused = new_system_proposals(rows, "first", set(), memo)
        assert refused == []
        memo.save()  # as a run saves at its end

        (again,), _ = new_system_proposals(rows, "second", set(), memo)
        taken, refused = new_system_proposals(rows, "second", {made.file}, memo)

        assert memo.hits == 2  # neither rendered again
    assert again == made.model_copy(update={"base_commit": "second"})
    assert taken == []
    assert refused == [Refusal(file=made.file, reason="a system file of that name exists")]


def test_the_merge_bar_moves_as_planets_are_merged_or_answered_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events: list[str] = []
    real_merge = embedded.merge_handler
    real_advance = embedded.Stages.advance

    def merge(message: Message) -> list[Message]:
        events.append("merged")
        return list(real_merge(message))

    def advance(self: embedded.Stages, steps: int = 1) -> None:
        if self.name == "merge":
            events.extend(["advanced"] * steps)
        real_advance(self, steps)

    monkeypatch.setattr(embedded, "merge_handler", merge)
    monkeypatch.setattr(embedded.Stages, "advance", advance)
    repo = make_repo(tmp_path / "oec")
    run(repo, tmp_path, "--max-prs", "0")
    merged = events.count("merged")
    assert merged and events.count("advanced") == merged
    # Counted as each message of planets is merged, not all at the end.
    assert (
        events.index("advanced") < len(events) - events[::-1].index("merged") - 1
    )  # not all at the end

    events.clear()
    run(repo, tmp_path, "--max-prs", "0")  # every planet answered by the indexer
    assert "merged" not in events and events.count("advanced") == merged
