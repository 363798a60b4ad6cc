"""Running git (:func:`run_git`, the one runner), reading an OEC checkout with a few git
processes, and the names of its branches.

Branches are written by :mod:`common.gitwrite`.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, NamedTuple

from common.errors import GitError

if TYPE_CHECKING:
    from common.memo import Store

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


def run_git(
    repo: Path,
    *args: str,
    input: bytes | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
) -> subprocess.CompletedProcess[bytes]:
    """The one way OEC Sync runs a git command: in ``repo``, output captured, ``env`` added
    to this process's environment. The exit status is the caller's to read; a git that cannot
    start, or runs longer than ``timeout`` seconds (then killed), raises :class:`GitError`.
    (Long-lived git processes fed as they go, fast-import and update-ref, are in gitwrite.)"""
    try:
        return subprocess.run(
            ["git", "-C", str(repo), *args],
            input=input,
            capture_output=True,
            check=False,
            env={**os.environ, **env} if env else None,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as exc:
        raise GitError(args[0], -9, f"killed after {timeout:.0f} s") from exc
    except OSError as exc:
        raise GitError(args[0], 127, str(exc)) from exc


def git_bytes(
    repo: Path,
    *args: str,
    input: bytes | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
) -> bytes:
    """Run git in ``repo``; its stdout. Raises :class:`GitError` on failure."""
    done = run_git(repo, *args, input=input, env=env, timeout=timeout)
    if done.returncode != 0:
        raise GitError(args[0], done.returncode, done.stderr)
    return done.stdout


def git(
    repo: Path,
    *args: str,
    input: bytes | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
) -> str:
    """Run git in ``repo``; its stdout as text. Raises :class:`GitError` on failure."""
    return git_bytes(repo, *args, input=input, env=env, timeout=timeout).decode()


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


def existing_tips(
    repo: Path, commits: list[BranchCommit], known: Store | None = None
) -> dict[str, BranchTip]:
    """Each branch of ``commits`` that exists, as a :class:`BranchTip`: one ``for-each-ref``
    for the tips and parents, one ``ls-tree`` per distinct parent or base (a path looked up
    per branch would scan the 4,000-entry systems/ tree each time).

    The blob of a branch's file at its tip is read with one ``cat-file`` call, unless
    ``known`` holds it (kind ``tip``, see :func:`remember_tip`): a commit id fixes its tree,
    so what was read once is true for ever, and an unchanged run reads none (0.3 s of 4,330
    path look-ups)."""
    if not commits:
        return {}
    wanted = {c.branch for c in commits}
    listed = git(
        repo,
        "for-each-ref",
        "--format=%(refname:lstrip=2)%00%(objectname)%00%(parent)",
        "refs/heads/",
    )
    heads: dict[str, tuple[str, str]] = {}  # branch -> (tip, first parent)
    for line in listed.splitlines():
        branch, tip, parents = line.split("\0")
        if branch in wanted:
            heads[branch] = (tip, parents.split(" ")[0])
    blobs: dict[str, str] = {}
    unknown: list[BranchCommit] = []
    for commit in commits:
        if commit.branch not in heads:
            continue
        stored = None
        if known is not None:
            stored = known.get("tip", commit.branch, _tip_key(heads[commit.branch][0], commit.file))
        if stored is None:
            unknown.append(commit)
        else:
            blobs[commit.branch] = stored.decode()
    if unknown:
        query = "".join(f"{heads[c.branch][0]}:{c.file}\n" for c in unknown)
        lines = git(repo, "cat-file", "--batch-check=%(objectname)", input=query.encode())
        for commit, answer in zip(unknown, lines.splitlines(), strict=True):
            blob = "" if answer.endswith(" missing") else answer
            blobs[commit.branch] = blob
            if known is not None:
                remember_tip(known, commit.branch, heads[commit.branch][0], commit.file, blob)
    trees: dict[str, dict[str, tuple[str, str]]] = {}
    for commit in commits:
        if commit.branch in heads:
            for wanted_commit in (heads[commit.branch][1], commit.base):
                if wanted_commit and wanted_commit not in trees:
                    trees[wanted_commit] = tree_entries(repo, wanted_commit) or {}

    def blob_at(commit: str, file: str) -> str:
        return trees.get(commit, {}).get(file, ("", ""))[1]

    return {
        c.branch: BranchTip(
            heads[c.branch][0],
            heads[c.branch][1],
            blobs[c.branch],
            blob_at(heads[c.branch][1], c.file),
            blob_at(c.base, c.file),
        )
        for c in commits
        if c.branch in heads
    }


def _tip_key(tip: str, file: str) -> str:
    return f"{tip} {file}"


def remember_tip(known: Store, branch: str, tip: str, file: str, blob: str) -> None:
    """Keep in ``known`` that ``file`` at commit ``tip`` of ``branch`` is ``blob`` ("": no
    such file), for :func:`existing_tips`."""
    known.put("tip", branch, _tip_key(tip, file), blob.encode())


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
    return dict(each_blob(repo, oids))


def each_blob(repo: Path, oids: Iterable[str]) -> Iterator[tuple[str, bytes]]:
    """Each blob's object id and contents, in order, as one ``git cat-file --batch`` process
    writes them: the caller works on one while git reads the next on another core (a
    checkout's 7,035 system files: 0.6 s of git beside 1.5 s of parsing). Raises KeyError
    for a missing object, :class:`GitError` when git cannot run."""
    wanted = list(dict.fromkeys(oids))
    if not wanted:
        return
    try:
        process = subprocess.Popen(
            ["git", "-C", str(repo), "cat-file", "--batch"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
    except OSError as exc:
        raise GitError("cat-file", 127, str(exc)) from exc
    assert process.stdin is not None and process.stdout is not None
    # Fed from a thread: git answers as it reads, so a writer that waited for the whole
    # list to go in would block on a full pipe of answers.
    feeder = threading.Thread(target=_feed, args=(process.stdin, wanted), daemon=True)
    feeder.start()
    out = process.stdout
    try:
        for _ in wanted:
            line = out.readline()
            if not line:  # git stopped answering: it failed, and says why
                assert process.stderr is not None
                raise GitError("cat-file", process.wait(), process.stderr.read())
            header = line.split()
            if len(header) != 3:
                name = header[0].decode() if header else "?"
                raise KeyError(f"git cat-file: object {name} is missing")
            data = out.read(int(header[2]))
            out.read(1)  # the newline after the content
            yield header[0].decode(), data
    finally:
        process.kill()
        out.close()
        process.wait()
        feeder.join()
        if process.stderr is not None:
            process.stderr.close()


def _feed(pipe: IO[bytes], oids: list[str]) -> None:
    try:
        pipe.write("\n".join(oids).encode() + b"\n")
        pipe.close()
    except (BrokenPipeError, ValueError):  # git was stopped: its reader gave up
        pass


def read_files(repo: Path, commit: str, files: list[str]) -> dict[str, str | None]:
    """The text of each file at ``commit`` (None where it does not exist).

    Paths are resolved with one ``ls-tree`` and read by object id: ``commit:path`` lookups
    scan OEC's 4,000-entry ``systems/`` tree once per file (~0.7 ms each).
    """
    entries = tree_entries(repo, commit) or {}
    oids = {f: entries[f][1] for f in files if f in entries}
    blobs = read_blobs(repo, oids.values())
    return {f: blobs[oids[f]].decode("utf-8") if f in oids else None for f in files}


def tree_entries(repo: Path, commit: str) -> dict[str, tuple[str, str]] | None:
    """Every file of ``commit``: path -> (mode, blob), one git call; None if it is unknown."""
    done = run_git(repo, "ls-tree", "-r", "-z", "--full-tree", commit)
    if done.returncode != 0:
        return None
    entries: dict[str, tuple[str, str]] = {}
    for record in done.stdout.split(b"\0"):
        if record:
            meta, _, path = record.partition(b"\t")
            mode, _, oid = meta.decode().split(" ")
            entries[path.decode("utf-8")] = (mode, oid)
    return entries
