"""The embedded run end to end on the bundled real sample, as a maintainer would check it."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from common.gitrepo import head_commit, read_files
from common.messages import Message, PlanetMatched
from common.oec import validate
from services.cli import app
from tests.gitutil import git, make_repo
from tests.paths import SAMPLE

NASA = str(SAMPLE / "nasa.csv")
EU = str(SAMPLE / "eu.csv")


def run(repo: Path, tmp: Path, *extra: str, nasa: str = NASA, eu: str = EU) -> tuple[int, dict]:
    report = tmp / "report.json"
    report.unlink(missing_ok=True)
    args = ["run", "--oec-repo", str(repo), "--nasa", nasa, "--eu", eu]
    args += ["--outbox", str(tmp / "outbox"), "--report", str(report), *extra]
    result = CliRunner().invoke(app, args)
    data = json.loads(report.read_text(encoding="utf-8")) if report.exists() else {}
    return result.exit_code, data


def branches(repo: Path) -> dict[str, str]:
    out = git(
        repo, "for-each-ref", "--format=%(refname:short) %(objectname)", "refs/heads/oec-sync"
    )
    return dict(line.split(" ", 1) for line in out.splitlines())


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "oec")


def test_each_changed_system_gets_one_branch_with_one_valid_minimal_commit(
    repo: Path, tmp_path: Path
) -> None:
    head = head_commit(repo)
    code, report = run(repo, tmp_path, "--max-prs", "0")
    assert code == 0
    assert head_commit(repo) == head
    assert git(repo, "status", "--porcelain") == ""
    made = branches(repo)
    assert len(made) == len(report["systems"]) > 10
    for system in report["systems"]:
        branch, file = system["branch"], system["file"]
        assert branch in made
        assert git(repo, "rev-parse", f"{branch}^").strip() == head
        assert git(repo, "diff", "--name-only", head, branch).splitlines() == [file]
        new = read_files(repo, branch, [file])[file]
        assert new is not None
        if system["new"]:
            assert validate.problems(new, file) == []
            continue
        old = (repo / file).read_text(encoding="utf-8")
        assert validate.new_problems(old, new, file) == []
        # Minimal diff: no line is removed unless a field on it changed.
        removed = [
            line
            for line in git(repo, "diff", "-U0", head, branch).splitlines()
            if line.startswith("-\t")
        ]
        changed_fields = {c["field"] for c in system["changes"]}
        for line in removed:
            tag = re.match(r"-\t+<(\w+)", line)
            assert tag and tag.group(1) in changed_fields, line
        message = git(repo, "log", "-1", "--format=%B", branch)
        assert system["title"] in message
        assert (tmp_path / "outbox" / f"{branch.removeprefix('oec-sync/')}.md").exists()


def test_report_counts_and_changes(repo: Path, tmp_path: Path) -> None:
    _, report = run(repo, tmp_path, "--max-prs", "0")
    nasa = report["catalogues"]["nasa"]
    eu = report["catalogues"]["exoplanet.eu"]
    assert nasa["rows"] == 85 and eu["rows"] == 66
    for counts in (nasa, eu):
        accounted = (
            counts["changed"]
            + counts["unchanged"]
            + counts["new_planets"]
            + counts["new_systems"]
            + counts["ambiguous"]
        )
        assert accounted <= counts["records"]
        assert counts["matched"] == counts["changed"] + counts["unchanged"]
    eleven_com = next(s for s in report["systems"] if s["file"] == "systems/11 Com.xml")
    period = next(c for c in eleven_com["changes"] if c["field"] == "period")
    assert period == {
        "object": "11 Com b",
        "path": "/system/star/planet",
        "field": "period",
        "kind": "updated",
        "old": "326.03 ±0.32",
        "new": "323.21 +0.06 −0.05",
        "old_value": {"value": "326.03", "errorminus": "0.32", "errorplus": "0.32"},
        "new_value": {"value": "323.21", "errorminus": "0.05", "errorplus": "0.06"},
        "source": "nasa",
        "source_date": "2024-10-15",
        "source_row": period["source_row"],
    }
    assert any(s["new"] for s in report["systems"])


def test_second_run_on_the_same_inputs_creates_nothing(repo: Path, tmp_path: Path) -> None:
    run(repo, tmp_path, "--max-prs", "0")
    before = branches(repo)
    outbox = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "outbox").iterdir()}
    code, report = run(repo, tmp_path, "--max-prs", "0")
    assert code == 0
    assert branches(repo) == before
    assert {s["state"] for s in report["systems"]} == {"up to date"}
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / "outbox").iterdir()} == outbox


def test_cap_opens_the_first_in_file_order_and_the_rest_in_later_runs(
    repo: Path, tmp_path: Path
) -> None:
    _, everything = run(repo, tmp_path, "--max-prs", "0", "--dry-run")
    in_order = sorted(s["file"] for s in everything["systems"])
    _, first = run(repo, tmp_path, "--max-prs", "5")
    opened = [s["file"] for s in first["systems"] if s["state"] == "opened"]
    assert opened == in_order[:5]
    assert len(branches(repo)) == 5
    # Edited files after the fifth are not even built; new systems (all built) queue.
    assert first["deferred"] and not set(first["deferred"]) & set(opened)
    _, second = run(repo, tmp_path, "--max-prs", "5")
    states = {s["file"]: s["state"] for s in second["systems"]}
    assert all(states[f] == "up to date" for f in opened)
    assert [f for f in sorted(states) if states[f] == "opened"] == in_order[5:10]


def test_a_capped_run_writes_only_what_it_opens_as_an_uncapped_run_would(
    tmp_path: Path,
) -> None:
    capped = make_repo(tmp_path / "capped" / "oec")
    uncapped = tmp_path / "uncapped" / "oec"
    shutil.copytree(capped, uncapped)  # one base commit, so that the drafts can be compared
    run(uncapped, uncapped.parent, "--max-prs", "0")
    run(capped, capped.parent, "--max-prs", "4")

    written = branches(capped)
    assert len(written) == 4
    drafts = sorted(p.name for p in (capped.parent / "outbox").iterdir())
    assert drafts == sorted(
        f"{b.removeprefix('oec-sync/')}.{x}" for b in written for x in ("json", "md")
    )
    for branch in written:
        assert git(capped, "rev-parse", f"{branch}^{{tree}}") == git(
            uncapped, "rev-parse", f"{branch}^{{tree}}"
        )
    for name in drafts:
        assert (capped.parent / "outbox" / name).read_bytes() == (
            uncapped.parent / "outbox" / name
        ).read_bytes()


def test_a_bad_catalogue_publishes_nothing_and_the_good_one_still_runs(
    repo: Path, tmp_path: Path
) -> None:
    garbage = tmp_path / "nasa.csv"
    garbage.write_bytes(b"\x00\x01PK\x03\x04 not a catalogue")
    code, report = run(repo, tmp_path, "--max-prs", "0", nasa=str(garbage))
    assert code == 0
    assert "nasa.csv" in report["catalogues"]["nasa"]["error"]
    sources = {c["source"] for s in report["systems"] for c in s["changes"]}
    assert sources == {"exoplanet.eu"}

    # With no catalogue left the run writes nothing, not even its report.
    code, report = run(repo, tmp_path, "--max-prs", "0", nasa=str(garbage), eu=str(garbage))
    assert code == 1
    assert report == {}


def test_dry_run_shows_what_would_be_opened_and_writes_nothing(repo: Path, tmp_path: Path) -> None:
    code, planned = run(repo, tmp_path, "--max-prs", "3", "--dry-run")
    assert code == 0
    assert branches(repo) == {}
    assert not (tmp_path / "outbox").exists()
    assert planned["dry_run"] is True
    states = [s["state"] for s in planned["systems"]]
    assert states.count("opened") == 3 and states.count("queued") == len(states) - 3

    _, real = run(repo, tmp_path, "--max-prs", "3")
    assert real["dry_run"] is False
    opened = [s["file"] for s in planned["systems"] if s["state"] == "opened"]
    assert [s["file"] for s in real["systems"] if s["state"] == "opened"] == opened


def test_dry_run_prints_each_system_it_would_open_update_or_queue(
    repo: Path, tmp_path: Path
) -> None:
    _, planned = run(repo, tmp_path, "--max-prs", "3", "--dry-run")
    args = ["run", "--oec-repo", str(repo), "--nasa", NASA, "--eu", EU, "--max-prs", "3"]
    printed = CliRunner().invoke(app, [*args, "--dry-run"]).output
    rows = [
        [cell.strip() for cell in line.split("│")[1:-1]]
        for line in printed.splitlines()
        if line.startswith("│ systems/")
    ]
    said = {"opened": "would open", "queued": "queued"}
    assert sorted(rows) == sorted(
        [s["file"], s["branch"], said[s["state"]], ""] for s in planned["systems"]
    )
    assert [state for _, _, state, _ in rows[:3]] == ["would open"] * 3
    queued = len(planned["systems"]) - 3
    assert (
        f"dry run, no branch or draft written; systems: 3 would open, {queued} queued;" in printed
    )
    assert "opened" not in printed


@pytest.mark.parametrize("processes", ["1", "2"], ids=["one process", "with a child"])
def test_a_planet_whose_merge_raises_is_reported_failed_and_the_rest_published(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, processes: str
) -> None:
    from services import embedded
    from services.merger import ahead

    monkeypatch.setenv("OEC_SYNC_PROCESSES", processes)
    monkeypatch.setattr(ahead, "MIN_PLANETS", 1)  # a child merges even the sample's planets

    _, clean = run(make_repo(tmp_path / "clean" / "oec"), tmp_path / "clean", "--max-prs", "0")
    real_merge = embedded.merge_handler

    def merge(message: Message) -> list[Message]:
        assert isinstance(message, PlanetMatched)
        if message.record.name == "11 Com b":
            raise ValueError("a bug this planet triggers")
        return real_merge(message)

    monkeypatch.setattr(embedded, "merge_handler", merge)
    repo = make_repo(tmp_path / "oec")
    report_path = tmp_path / "report.json"
    args = ["run", "--oec-repo", str(repo), "--nasa", NASA, "--eu", EU, "--max-prs", "0"]
    args += ["--outbox", str(tmp_path / "outbox"), "--report", str(report_path)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    report = json.loads(report_path.read_text(encoding="utf-8"))

    (failed,) = report["failed_planets"]  # 11 Com is in the NASA sample only
    assert (failed["source"], failed["planet"]) == ("nasa", "11 Com b")
    assert failed["error"] == "ValueError: a bug this planet triggers"
    assert report["catalogues"]["nasa"]["failed"] == 1
    assert report["catalogues"]["exoplanet.eu"]["failed"] == 0
    assert f"11 Com b (nasa row {failed['row']}) failed" in result.output
    assert re.search(r"│ nasa +(│ +\d+ +){5}│ +1 +│", result.output)  # the failed column
    rest = [s for s in clean["systems"] if s["file"] != "systems/11 Com.xml"]
    assert len(rest) < len(clean["systems"])
    assert report["systems"] == rest
    assert "oec-sync/11_Com" not in " ".join(branches(repo))


def test_without_outbox_the_drafts_go_where_the_publisher_puts_them(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One default for every sink: OEC_SYNC_OUTBOX, else DATA_DIR/outbox.
    monkeypatch.setenv("OEC_SYNC_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("OEC_SYNC_OUTBOX", raising=False)
    monkeypatch.delenv("OEC_SYNC_GITHUB_TOKEN", raising=False)
    args = ["run", "--oec-repo", str(repo), "--nasa", NASA, "--eu", EU, "--max-prs", "2"]
    assert CliRunner().invoke(app, args).exit_code == 0
    drafts = sorted(p.suffix for p in (tmp_path / "data" / "outbox").iterdir())
    assert drafts == [".json", ".json", ".md", ".md"]
