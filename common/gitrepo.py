"""Reading an OEC checkout with a few git processes, and the names of its branches.

Branches are written by :mod:`common.gitwrite`.
"""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

BRANCH_PREFIX = "oec-sync/"
AUTHOR = "OEC Sync <oec-sync@users.noreply.github.com>"

# Characters git refuses in a ref name (git-check-ref-format) plus "%" and "_", which the
# encoding itself uses, so that every file name maps to exactly one branch and back.
_REF_UNSAFE = set(' ~^:?*[\\"%_') | {chr(c) for c in range(32)} | {"\x7f"}


def branch_name(file: str) -> str:
    """The branch of a system file: ``systems/11 Com.xml`` -> ``oec-sync/11_Com``.

    Spaces become ``_``; ``_`` itself and every other character git forbids in a ref become
    ``%XX``; so two different files never share a branch, and leading dots or dashes,
    ``..``, ``@{`` and ``.lock`` cannot form.
    """
    stem = Path(file).stem
    out: list[str] = []
    for ch in stem:
        if ch == " ":
            out.append("_")
        elif ch in _REF_UNSAFE or ch == "/":
            out.append("".join(f"%{b:02X}" for b in ch.encode()))
        else:
            out.append(ch)
    name = "".join(out)
    name = name.replace("..", "%2E%2E").replace("@{", "%40{")
    if name[:1] in {".", "-"}:
        name = f"%{ord(name[0]):02X}" + name[1:]
    if name.endswith(".lock") or name.endswith("."):
        name = name[:-1] + f"%{ord(name[-1]):02X}"
    return BRANCH_PREFIX + name


class GitError(subprocess.CalledProcessError):
    """A git command failed. ``str()`` is git's own message (its stderr), which says what
    went wrong in git's words ("cannot lock ref ..."); a Python traceback would not."""

    def __init__(self, command: str, returncode: int, stderr: bytes | str) -> None:
        text = stderr.decode(errors="replace") if isinstance(stderr, bytes) else stderr
        super().__init__(returncode, ["git", command], b"", text)
        self.command = command

    def __str__(self) -> str:
        message = "\n".join(line for line in str(self.stderr).strip().splitlines() if line)
        return f"git {self.command}: {message or f'exit status {self.returncode}'}"


def git(repo: Path, *args: str, input: bytes | None = None) -> str:
    """Run git in ``repo``; its stdout. Raises :class:`GitError` on failure."""
    done = subprocess.run(
        ["git", "-C", str(repo), *args], input=input, capture_output=True, check=False
    )
    if done.returncode != 0:
        raise GitError(args[0], done.returncode, done.stderr)
    return done.stdout.decode()


def head_commit(repo: Path) -> str:
    return git(repo, "rev-parse", "HEAD").strip()


def blob_sha(data: bytes) -> str:
    """The object id git gives a file with these bytes."""
    return hashlib.sha1(b"blob %d\x00" % len(data) + data).hexdigest()


@dataclass(frozen=True)
class BranchCommit:
    """One commit to write: on ``branch``, parent ``base``, touching only ``file``."""

    branch: str
    base: str
    file: str
    text: str
    message: str


class BranchTip(NamedTuple):
    """An existing branch: its tip, the tip's parent, and blobs of the branch's file at the
    tip, at the parent and at the base the run would write on ("" where it is absent)."""

    tip: str
    parent: str
    blob: str
    parent_blob: str
    base_blob: str


def existing_tips(repo: Path, commits: list[BranchCommit]) -> dict[str, BranchTip]:
    """Each branch of ``commits`` that exists, as a :class:`BranchTip`, in two git calls."""
    if commits:
        # Only branches that exist are asked about: each ``commit:path`` scans a 4,000-entry
        # tree, and a first run (4,400 branches, none there yet) spent 6 s on them.
        listed = git(repo, "for-each-ref", "--format=%(refname)", "refs/heads/")
        present = set(listed.splitlines())
        commits = [c for c in commits if f"refs/heads/{c.branch}" in present]
    if not commits:
        return {}
    query = "".join(
        f"refs/heads/{c.branch}\nrefs/heads/{c.branch}^\nrefs/heads/{c.branch}:{c.file}\n"
        f"refs/heads/{c.branch}^:{c.file}\n{c.base}:{c.file}\n"
        for c in commits
    )
    lines = git(repo, "cat-file", "--batch-check=%(objectname)", input=query.encode())
    answers = ["" if "missing" in a else a for a in lines.splitlines()]
    found: dict[str, BranchTip] = {}
    for i, commit in enumerate(commits):
        tip = BranchTip(*answers[5 * i : 5 * i + 5])
        if tip.tip:
            found[commit.branch] = tip
    return found


def up_to_date(commit: BranchCommit, tips: dict[str, BranchTip]) -> bool:
    """The branch already holds exactly this change, on a parent whose copy of the file is
    the base's: nothing to write. A commit elsewhere in OEC does not move every branch (nor,
    on GitHub, every open pull request)."""
    tip = tips.get(commit.branch)
    return (
        tip is not None
        and tip.blob == blob_sha(commit.text.encode("utf-8"))
        and (tip.parent == commit.base or tip.parent_blob == tip.base_blob)
    )


def read_blobs(repo: Path, oids: Iterable[str]) -> dict[str, bytes]:
    """Blob contents by object id, read with one ``git cat-file --batch`` process."""
    wanted = list(dict.fromkeys(oids))
    if not wanted:
        return {}
    done = subprocess.run(
        ["git", "-C", str(repo), "cat-file", "--batch"],
        input="\n".join(wanted).encode() + b"\n",
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        raise GitError("cat-file", done.returncode, done.stderr)
    out = done.stdout
    blobs: dict[str, bytes] = {}
    view = memoryview(out)
    pos = 0
    while pos < len(out):
        end = out.index(b"\n", pos)
        header = out[pos:end].decode().split()
        if len(header) != 3:
            raise KeyError(f"git cat-file: object {header[0]} is missing")
        oid, size = header[0], int(header[2])
        start = end + 1
        blobs[oid] = bytes(view[start : start + size])
        pos = start + size + 1  # content is followed by a newline
    return blobs


def read_files(repo: Path, commit: str, files: list[str]) -> dict[str, str | None]:
    """The text of each file at ``commit`` (None where it does not exist).

    Paths are resolved with one ``ls-tree`` and read by object id: ``commit:path`` lookups
    scan OEC's 4,000-entry ``systems/`` tree once per file (~0.7 ms each).
    """
    entries = tree_entries(repo, commit) or {}
    oids = {f: entries[f][1] for f in files if f in entries}
    blobs = read_blobs(repo, oids.values())
    return {f: blobs[oids[f]].decode("utf-8") if f in oids else None for f in files}


def list_files(repo: Path, commit: str) -> set[str]:
    """Every file path in ``commit``."""
    return set(tree_entries(repo, commit) or {})


def tree_entries(repo: Path, commit: str) -> dict[str, tuple[str, str]] | None:
    """Every file of ``commit``: path -> (mode, blob), one git call; None if it is unknown."""
    done = subprocess.run(
        ["git", "-C", str(repo), "ls-tree", "-r", "-z", "--full-tree", commit],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        return None
    entries: dict[str, tuple[str, str]] = {}
    for record in done.stdout.split(b"\0"):
        if record:
            meta, _, path = record.partition(b"\t")
            mode, _, oid = meta.decode().split(" ")
            entries[path.decode("utf-8")] = (mode, oid)
    return entries
