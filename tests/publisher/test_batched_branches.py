"""write_branches_batched writes exactly the commits write_branches writes."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

from common.gitrepo import (
    BranchCommit,
    branch_name,
    head_commit,
    write_branches,
    write_branches_batched,
)
from tests.gitutil import git, make_repo

from .conftest import ODD_NAMES, SYSTEMS, edit_value

WHEN = dt.datetime(2026, 8, 22, 6, 0, tzinfo=dt.UTC)


def commits_for(repo: Path, base: str) -> list[BranchCommit]:
    files = sorted(f"systems/{p.name}" for p in SYSTEMS.glob("*.xml"))[:12]
    commits = [
        BranchCommit(
            branch_name(f),
            base,
            f,
            edit_value((repo / f).read_text(encoding="utf-8"), "3")[0],
            f"{f}: update\n",
        )
        for f in files
    ]
    template = (repo / files[0]).read_text(encoding="utf-8")
    for f in [*ODD_NAMES, "systems/HD 1/2 (A'B) ü.xml", "systems/new one.xml", "ROOTFILE.xml"]:
        commits.append(BranchCommit(branch_name(f), base, f, template, f"add {f}\n"))
    return commits


def refs(repo: Path) -> dict[str, str]:
    out = git(repo, "for-each-ref", "--format=%(refname) %(objectname)")
    return dict(line.rsplit(" ", 1) for line in out.splitlines())


def test_same_commits_as_write_branches(tmp_path: Path) -> None:
    one = make_repo(tmp_path / "one")
    two = tmp_path / "two"
    shutil.copytree(one, two)
    base = head_commit(one)
    # A branch that already holds an older change is moved, as write_branches does.
    stale = commits_for(one, base)[3]
    older = BranchCommit(stale.branch, base, stale.file, stale.text + "\n", "older\n")
    write_branches(one, [older], WHEN)
    write_branches(two, [older], WHEN)

    written_one = write_branches(one, commits_for(one, base), WHEN)
    written_two = write_branches_batched(two, commits_for(two, base), WHEN)

    assert written_one == written_two and len(written_two) == 19
    assert refs(one) == refs(two)
    assert not any("scratch" in ref for ref in refs(two))
    # Nothing to do the second time, for either.
    assert write_branches_batched(two, commits_for(two, base), WHEN) == []


def test_two_bases(tmp_path: Path) -> None:
    one = make_repo(tmp_path / "one")
    first = head_commit(one)
    (one / "systems" / "Kepler-11.xml").write_text("changed\n", encoding="utf-8")
    git(one, "commit", "--quiet", "-am", "second")
    second = head_commit(one)
    two = tmp_path / "two"
    shutil.copytree(one, two)
    commits = commits_for(one, first)[:3] + commits_for(one, second)[3:6]
    commits = [BranchCommit(c.branch, c.base, c.file, c.text, c.message) for c in commits]
    assert write_branches(one, commits, WHEN) == write_branches_batched(two, commits, WHEN)
    assert refs(one) == refs(two)


def test_parallel_workers_write_the_same_commits(tmp_path: Path) -> None:
    one = make_repo(tmp_path / "one")
    two = tmp_path / "two"
    shutil.copytree(one, two)
    base = head_commit(one)
    files = sorted(f"systems/{p.name}" for p in SYSTEMS.glob("*.xml"))
    # 250 branches over the sample's files: several branches change the same file.
    commits = [
        BranchCommit(
            f"oec-sync/b{n}",
            base,
            files[n % len(files)],
            edit_value((one / files[n % len(files)]).read_text(encoding="utf-8"), str(n))[0],
            f"change {n}\n",
        )
        for n in range(250)
    ]
    assert write_branches(one, commits, WHEN) == write_branches_batched(
        two, commits, WHEN, workers=2
    )
    assert refs(one) == refs(two)
