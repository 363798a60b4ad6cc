import os
import subprocess
from pathlib import Path

import pytest

from common.gitrepo import (
    BranchCommit,
    blob_sha,
    branch_name,
    each_blob,
    head_commit,
    read_files,
)
from common.gitwrite import write_branches
from tests.gitutil import git, make_repo


@pytest.mark.parametrize(
    ("file", "branch"),
    [
        ("systems/11 Com.xml", "oec-sync/11_Com"),
        ("systems/Kepler-11.xml", "oec-sync/Kepler-11"),
        ("systems/α Cen.xml", "oec-sync/α_Cen"),
        ("systems/-dash.xml", "oec-sync/%2Ddash"),
        ("systems/a_b c.xml", "oec-sync/a%5Fb_c"),
        ("systems/x..y.xml", "oec-sync/x%2E%2Ey"),
        ("systems/what?.xml", "oec-sync/what%3F"),
    ],
)
def test_branch_names_are_valid_refs_and_distinct(file: str, branch: str) -> None:
    assert branch_name(file) == branch
    subprocess.run(["git", "check-ref-format", f"refs/heads/{branch}"], check=True)


def test_files_differing_only_in_spaces_and_underscores_get_different_branches() -> None:
    assert branch_name("systems/a b.xml") != branch_name("systems/a_b.xml")


def test_write_branches_commits_one_file_and_leaves_head_and_worktree(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "oec")
    head = head_commit(repo)
    file = "systems/11 Com.xml"
    original = (repo / file).read_text(encoding="utf-8")
    edited = original.replace("<period errorminus", "<period  errorminus", 1)
    commit = BranchCommit(branch_name(file), head, file, edited, "11 Com: update period\n")

    written = write_branches(repo, [commit])

    assert written == [commit]
    assert head_commit(repo) == head
    assert git(repo, "status", "--porcelain") == ""
    assert git(repo, "diff", "--name-only", head, "oec-sync/11_Com").splitlines() == [file]
    assert git(repo, "rev-parse", "oec-sync/11_Com^").strip() == head
    assert (
        git(repo, "log", "-1", "--format=%s", "oec-sync/11_Com").strip() == "11 Com: update period"
    )
    assert read_files(repo, "oec-sync/11_Com", [file])[file] == edited
    assert blob_sha(edited.encode()) == git(repo, "rev-parse", f"oec-sync/11_Com:{file}").strip()


def test_second_write_of_the_same_change_writes_nothing(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "oec")
    head = head_commit(repo)
    file = "systems/11 Com.xml"
    text = (repo / file).read_text(encoding="utf-8") + "<!-- -->\n"
    commit = BranchCommit(branch_name(file), head, file, text, "m\n")
    write_branches(repo, [commit])
    tip = git(repo, "rev-parse", "oec-sync/11_Com").strip()

    assert write_branches(repo, [commit]) == []
    assert git(repo, "rev-parse", "oec-sync/11_Com").strip() == tip

    changed = BranchCommit(commit.branch, head, file, text + "<!-- 2 -->\n", "m2\n")
    assert write_branches(repo, [changed]) == [changed]
    assert git(repo, "rev-parse", "oec-sync/11_Com^").strip() == head


def test_read_files_reports_missing_files(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "oec")
    texts = read_files(repo, head_commit(repo), ["systems/11 Com.xml", "systems/nope.xml"])
    assert texts["systems/nope.xml"] is None
    assert texts["systems/11 Com.xml"] == (repo / "systems/11 Com.xml").read_text("utf-8")


def test_every_way_of_running_git_fails_with_one_error_in_gits_words(tmp_path: Path) -> None:
    from common.errors import GitError, OecSyncError
    from common.gitrepo import git as run
    from common.gitrepo import run_git
    from common.oec.index import AliasIndex

    repo = make_repo(tmp_path / "oec")
    missing = "0" * 40
    with pytest.raises(GitError) as reading:
        run(repo, "rev-parse", "--verify", f"{missing}^{{commit}}")
    assert str(reading.value).startswith("git rev-parse: fatal: ")
    assert "\n" not in str(reading.value)  # the CLI prints it as one line
    with pytest.raises(GitError) as indexing:
        AliasIndex.build(repo, missing)
    assert str(indexing.value).startswith("git rev-parse: fatal: ")
    assert isinstance(indexing.value, OecSyncError)
    # A non-zero exit is the caller's to read; a git that cannot run is the same error.
    assert run_git(repo, "cat-file", "-e", missing).returncode != 0
    with pytest.raises(GitError) as nowhere:
        run(tmp_path / "no such folder", "status")
    assert str(nowhere.value).startswith("git status: fatal: ")
    with pytest.raises(GitError) as streaming:
        dict(each_blob(tmp_path / "no such folder", [missing]))
    assert str(streaming.value).startswith("git cat-file: fatal: ")


def test_each_blob_hands_over_every_blob_in_order_exactly(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "oec")
    contents = [p.read_bytes() for p in sorted(repo.rglob("*.xml")) if ".git" not in p.parts]
    oids = [blob_sha(data) for data in contents]
    # More than a pipe holds: git answers while it is still being asked.
    assert sum(map(len, contents)) > 1 << 16
    handed = list(each_blob(repo, [*oids, *oids]))  # an id asked twice comes once
    assert [oid for oid, _ in handed] == list(dict.fromkeys(oids))
    assert dict(handed) == dict(zip(oids, contents, strict=True))


def test_each_blob_names_a_missing_object_and_leaves_no_git_behind(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "oec")
    present = blob_sha((repo / "systems" / "Kepler-11.xml").read_bytes())
    with pytest.raises(KeyError, match=r"object 0{40} is missing"):
        dict(each_blob(repo, [present, "0" * 40]))
    blobs = each_blob(repo, [present, present[::-1]])
    assert next(blobs)[0] == present
    blobs.close()  # a reader that stops early: git is stopped, not left waiting
    children = subprocess.run(
        ["ps", "--ppid", str(os.getpid()), "-o", "comm="], capture_output=True, text=True
    ).stdout.split()
    assert "git" not in children
