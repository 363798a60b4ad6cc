"""Branches without checkouts: one ``git fast-import`` writes every system's branch.

A checkout plus a commit costs ~66 ms per branch here; fast-import writes thousands of
one-file commits on top of a base commit in one process, and never touches HEAD, the index
or the working tree.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import subprocess
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

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


def git(repo: Path, *args: str, input: bytes | None = None) -> str:
    """Run git in ``repo``; its stdout. Raises CalledProcessError with stderr on failure."""
    done = subprocess.run(
        ["git", "-C", str(repo), *args], input=input, capture_output=True, check=False
    )
    if done.returncode != 0:
        raise subprocess.CalledProcessError(
            done.returncode, done.args, done.stdout, done.stderr.decode(errors="replace")
        )
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


def existing_tips(repo: Path, commits: list[BranchCommit]) -> dict[str, tuple[str, str, str]]:
    """For each branch that exists: (tip, parent of tip, blob of its file) in one git call."""
    if not commits:
        return {}
    query = "".join(
        f"refs/heads/{c.branch}\nrefs/heads/{c.branch}^\nrefs/heads/{c.branch}:{c.file}\n"
        for c in commits
    )
    lines = git(repo, "cat-file", "--batch-check=%(objectname)", input=query.encode())
    answers = lines.splitlines()
    found: dict[str, tuple[str, str, str]] = {}
    for i, commit in enumerate(commits):
        tip, parent, blob = answers[3 * i : 3 * i + 3]
        if "missing" not in tip:
            found[commit.branch] = (tip, parent, blob)
    return found


def up_to_date(commit: BranchCommit, tips: dict[str, tuple[str, str, str]]) -> bool:
    """The branch already holds exactly this change on this base: nothing to write."""
    tip = tips.get(commit.branch)
    return (
        tip is not None
        and tip[1] == commit.base
        and tip[2] == blob_sha(commit.text.encode("utf-8"))
    )


def _quote_path(path: str) -> bytes:
    """A path as fast-import reads it: C-style quoted when it could be misread."""
    raw = path.encode("utf-8")
    if not (raw.startswith(b'"') or b"\n" in raw or b"\\" in raw):
        return raw
    escaped = raw.replace(b"\\", b"\\\\").replace(b'"', b'\\"').replace(b"\n", b"\\n")
    return b'"' + escaped + b'"'


def read_blobs(repo: Path, oids: Iterable[str]) -> dict[str, bytes]:
    """Blob contents by object id, read with one ``git cat-file --batch`` process."""
    wanted = list(dict.fromkeys(oids))
    if not wanted:
        return {}
    out = subprocess.run(
        ["git", "-C", str(repo), "cat-file", "--batch"],
        input="\n".join(wanted).encode() + b"\n",
        capture_output=True,
        check=True,
    ).stdout
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


SCRATCH_REF = "refs/oec-sync-scratch"


def _top_level(file: str) -> str | None:
    """The top-level directory of ``file`` (None for a file at the root of the repo)."""
    head, sep, _ = file.partition("/")
    return head if sep else None


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


def write_branches(
    repo: Path, commits: list[BranchCommit], when: dt.datetime | None = None, workers: int = 1
) -> list[BranchCommit]:
    """Write every commit that is not already there; returns the ones written.

    A branch that exists with another change or base is moved to the new commit (its
    previous proposal is superseded); HEAD, the index and the working tree are untouched.

    One commit per branch straight from the base makes fast-import load and store the
    whole directory tree (OEC's ``systems/`` holds 4,000 entries) for every branch, in
    full. Instead one fast-import first walks a scratch chain that changes one file at a
    time (each tree stored as a small delta of the previous one, the big tree parsed once)
    and reports each resulting directory tree (``ls``); then every branch's commit is the
    base commit with that directory swapped in. Same commits, trees and refs; 1,000
    branches of OEC take ~4 s and 3 MB instead of ~28 s and 100 MB.

    With ``workers`` > 1 the commits are split between that many fast-import processes
    (disjoint branches, each its own pack and scratch ref), for the cores a big run has.
    """
    tips = existing_tips(repo, commits)
    todo = [c for c in commits if not up_to_date(c, tips)]
    if not todo:
        return []
    stamp = int((when or dt.datetime.now(dt.UTC)).timestamp())
    workers = max(1, min(workers, len(todo) // 100))
    if workers > 1:
        chunks = [todo[i::workers] for i in range(workers)]
        errors: list[BaseException] = []

        def run(n: int) -> None:
            try:
                _fast_import_chain(repo, chunks[n], stamp, f"{SCRATCH_REF}-{n}")
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=run, args=(n,)) for n in range(workers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            raise errors[0]
        return todo
    _fast_import_chain(repo, todo, stamp, SCRATCH_REF)
    return todo


def _fast_import_chain(repo: Path, todo: list[BranchCommit], stamp: int, scratch: str) -> None:
    """One fast-import: the scratch chain of ``todo``, then its commits (see above)."""
    by_base: dict[str, list[BranchCommit]] = {}
    for c in todo:
        by_base.setdefault(c.base, []).append(c)
    nested = [c for c in todo if _top_level(c.file) is not None]

    # Phase 1: per base, one scratch chain; after each link, ask for its top-level tree.
    chain = bytearray()
    mark = 0
    marks: list[tuple[BranchCommit, str]] = []
    for base, group in by_base.items():
        group = [c for c in group if _top_level(c.file) is not None]
        if not group:
            continue
        files = tree_entries(repo, base)
        if files is None:
            raise subprocess.CalledProcessError(128, ["git", "ls-tree", base], b"", "bad base")
        previous: BranchCommit | None = None
        for c in group:
            mark += 1
            chain += f"commit {scratch}\nmark :{mark}\n".encode()
            chain += f"committer {AUTHOR} {stamp} +0000\ndata 0\n".encode()
            if previous is None:
                chain += f"from {base}\n".encode()
            elif previous.file != c.file:
                # Put the previous link's file back as the base has it.
                if previous.file in files:
                    mode, oid = files[previous.file]
                    chain += f"M {mode} {oid} ".encode() + _quote_path(previous.file) + b"\n"
                else:
                    chain += b"D " + _quote_path(previous.file) + b"\n"
            content = c.text.encode("utf-8")
            chain += b"M 100644 inline " + _quote_path(c.file) + b"\n"
            chain += b"data %d\n%s\n\n" % (len(content), content)
            chain += f"ls :{mark} ".encode() + _quote_path(_top_level(c.file) or "") + b"\n"
            marks.append((c, f":{mark}"))
            previous = c
        chain += f"reset {scratch}\nfrom {'0' * 40}\n\n".encode()

    proc = subprocess.Popen(
        ["git", "-C", str(repo), "fast-import", "--quiet", "--force", "--done"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdin is not None and proc.stdout is not None

    def feed() -> None:
        try:
            assert proc.stdin is not None
            proc.stdin.write(bytes(chain))
            proc.stdin.flush()
        except BrokenPipeError:
            pass  # fast-import died; its stderr says why

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    trees: dict[str, str] = {}
    for c, _ in marks:
        answer = proc.stdout.readline().decode("utf-8")
        kind = answer.split(" ", 2)
        if len(kind) < 3 or kind[1] != "tree":
            writer.join()
            proc.kill()
            _, err = proc.communicate()
            raise subprocess.CalledProcessError(
                proc.returncode or 1,
                ["git", "fast-import"],
                b"",
                err.decode(errors="replace") or f"unexpected answer: {answer!r}",
            )
        trees[c.branch] = kind[2].split("\t", 1)[0]
    writer.join()

    # Phase 2: the real commits, exactly as write_branches writes them.
    stream = bytearray()
    for c in todo:
        message = c.message.encode("utf-8")
        stream += f"commit refs/heads/{c.branch}\n".encode()
        stream += f"author {AUTHOR} {stamp} +0000\n".encode()
        stream += f"committer {AUTHOR} {stamp} +0000\n".encode()
        stream += b"data %d\n%s\n" % (len(message), message)
        stream += f"from {c.base}\n".encode()
        top = _top_level(c.file)
        if top is None:
            content = c.text.encode("utf-8")
            stream += b"M 100644 inline " + _quote_path(c.file) + b"\n"
            stream += b"data %d\n%s\n" % (len(content), content)
        else:
            stream += f"M 040000 {trees[c.branch]} ".encode() + _quote_path(top) + b"\n"
    _, err = proc.communicate(bytes(stream) + b"done\n")
    if proc.returncode != 0:
        raise subprocess.CalledProcessError(
            proc.returncode, ["git", "fast-import"], b"", err.decode(errors="replace")
        )
    assert len(trees) == len(nested)
