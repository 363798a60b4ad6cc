"""write_branches (packs written by common.gitpack) writes exactly the commits that the
plain one-commit-per-branch git fast-import stream below writes: the oracle is git itself."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from common.errors import GitError
from common.gitpack import _TREE, FILE_MODE, Tree, object_id
from common.gitrepo import (
    AUTHOR,
    BranchCommit,
    branch_name,
    existing_tips,
    head_commit,
    up_to_date,
)
from common.gitrepo import (
    git as run_git,
)
from common.gitwrite import Writer, write_branches
from testing.proposals import edit_value
from tests.gitutil import git, make_repo

from .conftest import ODD_NAMES, SYSTEMS

WHEN = dt.datetime(2026, 8, 22, 6, 0, tzinfo=dt.UTC)


def _quote_path(path: str) -> bytes:
    """A path as fast-import reads it: C-style quoted when it could be misread."""
    raw = path.encode("utf-8")
    if not (raw.startswith(b'"') or b"\n" in raw or b"\\" in raw):
        return raw
    escaped = raw.replace(b"\\", b"\\\\").replace(b'"', b'\\"').replace(b"\n", b"\\n")
    return b'"' + escaped + b'"'


def plain_write_branches(
    repo: Path, commits: list[BranchCommit], when: dt.datetime
) -> list[BranchCommit]:
    """Each branch one commit straight from its base: slow for big trees, obviously right."""
    tips = existing_tips(repo, commits)
    todo = [c for c in commits if not up_to_date(c, tips)]
    if not todo:
        return []
    stamp = int(when.timestamp())
    stream = bytearray()
    for c in todo:
        message = c.message.encode("utf-8")
        content = c.text.encode("utf-8")
        stream += f"commit refs/heads/{c.branch}\n".encode()
        stream += f"author {AUTHOR} {stamp} +0000\n".encode()
        stream += f"committer {AUTHOR} {stamp} +0000\n".encode()
        stream += b"data %d\n%s\n" % (len(message), message)
        stream += f"from {c.base}\n".encode()
        stream += b"M 100644 inline " + _quote_path(c.file) + b"\n"
        stream += b"data %d\n%s\n" % (len(content), content)
    run_git(repo, "fast-import", "--quiet", "--force", "--done", input=bytes(stream) + b"done\n")
    return todo


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


def test_same_commits_as_the_plain_stream(tmp_path: Path) -> None:
    one = make_repo(tmp_path / "one")
    two = tmp_path / "two"
    shutil.copytree(one, two)
    base = head_commit(one)
    # A branch that already holds an older change is moved, as write_branches does.
    stale = commits_for(one, base)[3]
    older = BranchCommit(stale.branch, base, stale.file, stale.text + "\n", "older\n")
    plain_write_branches(one, [older], WHEN)
    plain_write_branches(two, [older], WHEN)

    written_one = plain_write_branches(one, commits_for(one, base), WHEN)
    written_two = write_branches(two, commits_for(two, base), WHEN)

    assert written_one == written_two and len(written_two) == 19
    assert refs(one) == refs(two)
    git(two, "fsck", "--strict", "--no-dangling")  # every pack and index as git wants them
    assert not any("scratch" in ref for ref in refs(two))
    # Nothing to do the second time, for either.
    assert write_branches(two, commits_for(two, base), WHEN) == []


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
    assert plain_write_branches(one, commits, WHEN) == write_branches(two, commits, WHEN)
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
    assert plain_write_branches(one, commits, WHEN) == write_branches(two, commits, WHEN, workers=2)
    assert refs(one) == refs(two)


def test_a_sha256_repository_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    repo = tmp_path / "oec"
    shutil.copytree(make_repo(tmp_path / "sha1"), repo, ignore=shutil.ignore_patterns(".git"))
    git(repo, "init", "--quiet", "--object-format=sha256", "--initial-branch=master")
    git(repo, "add", "-A")
    git(repo, "commit", "--quiet", "-m", "OEC snapshot")
    commits = commits_for(repo, head_commit(repo))

    with pytest.raises(GitError, match="writes branches only into SHA-1 repositories"):
        write_branches(repo, commits, WHEN)

    assert list(refs(repo)) == ["refs/heads/master"]  # no branch was written


def test_new_branches_join_packed_refs_and_keep_what_it_held(tmp_path: Path) -> None:
    """New branches go into packed-refs in one rename; the refs it held (a peeled tag) stay
    as they were, and git reads the result as it reads its own."""
    one = make_repo(tmp_path / "one")
    git(one, "tag", "-a", "-m", "release", "v1")
    git(one, "branch", "maintainer/work")
    git(one, "pack-refs", "--all")
    two = tmp_path / "two"
    shutil.copytree(one, two)
    base = head_commit(one)

    assert plain_write_branches(one, commits_for(one, base), WHEN) == write_branches(
        two, commits_for(two, base), WHEN
    )

    assert refs(one) == refs(two)
    assert git(two, "rev-parse", "v1^{}").strip() == base  # the tag still peels
    loose = two / ".git" / "refs" / "heads" / "oec-sync"
    assert not loose.exists() or not any(p.is_file() for p in loose.rglob("*"))
    assert not (two / ".git" / "packed-refs.lock").exists()
    git(two, "fsck", "--strict", "--no-dangling")
    git(two, "pack-refs", "--all")  # git rewrites the file it finds without complaint
    assert refs(one) == refs(two)


def test_a_packed_refs_lock_another_git_holds_fails_the_write(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "oec")
    lock = repo / ".git" / "packed-refs.lock"
    with lock.open("w"):  # open: a live git command's, however old
        os.utime(lock, (0, 0))
        with pytest.raises(GitError, match=r"Unable to create .*packed-refs.lock': File exists"):
            write_branches(repo, commits_for(repo, head_commit(repo)), WHEN)
    assert lock.exists()  # not ours to remove
    assert list(refs(repo)) == ["refs/heads/master"]


def test_a_killed_writers_packed_refs_lock_is_removed_by_the_next(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "oec")
    lock = repo / ".git" / "packed-refs.lock"
    lock.write_text("half a file", encoding="utf-8")
    os.utime(lock, (time.time() - 60, time.time() - 60))
    base = head_commit(repo)

    with Writer(repo) as writer:
        assert writer.cleaned == ["a stale packed-refs.lock"]
    assert len(write_branches(repo, commits_for(repo, base), WHEN)) == 19
    assert len(refs(repo)) == 20


def test_a_trees_id_hashed_on_from_its_base_is_gits_id_of_its_bytes(tmp_path: Path) -> None:
    """Tree.id_of hashes a changed tree from where its base's hash was at the changed
    entry; git's id is the SHA-1 of the whole object, whichever entry changed."""
    repo = make_repo(tmp_path / "oec")
    raw = subprocess.run(
        ["git", "-C", str(repo), "cat-file", "tree", "HEAD:systems"],
        check=True,
        capture_output=True,
    ).stdout
    tree = Tree.parse(raw)
    oid = bytes(range(20))
    names = [k.rstrip(b"/") for k in tree.keys]
    # Every entry replaced (same size: hashed on), then names new before, among and after.
    for name in [*names, b"00 first.xml", names[3] + b"x", b"zzz last.xml"]:
        pieces = tree.with_entry(FILE_MODE, name, oid)
        data = b"".join(tree.raw[p[0] : p[0] + p[1]] if isinstance(p, tuple) else p for p in pieces)
        assert tree.id_of(pieces, len(data)) == object_id(_TREE, data), name
