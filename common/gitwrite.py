"""Writing a run's branches so that they appear together or not at all.

    lock    ``<git dir>/oec-sync/write.flock``, an exclusive ``flock``: one writer per
            repository. The kernel releases it when its process ends, however it ends, so
            holding it proves that no other oec-sync process is writing here.
    stage   ``git fast-import`` into ``<git dir>/oec-sync/staging``, a private bare
            repository that borrows the checkout's objects (``objects/info/alternates``).
            Its pack, refs and crash report land there, never in the checkout: fast-import
            updates the refs it was given even when it dies, so it is given no real branch
            and reports each commit's id (``get-mark``) instead.
    move    the finished packs into ``objects/pack``, each index last (git finds a pack by
            its index): objects that nothing refers to yet, invisible to anyone.
    commit  one ``git update-ref --stdin`` transaction (start, update with the expected old
            value, prepare, commit): every branch moves, or none does, and a branch that
            someone else moved meanwhile fails the whole transaction with git's message.

An interrupted writer leaves at most its staging repository; the next writer removes that
and any other leftovers it can prove stale (:meth:`Writer.recover` says how).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

from common.errors import GitError, RepositoryBusyError
from common.gitrepo import (
    AUTHOR,
    BRANCH_PREFIX,
    BranchCommit,
    BranchTip,
    existing_tips,
    git,
    tree_entries,
    up_to_date,
)
from common.interrupts import checkpoint, deferred
from common.progress import QUIET, Progress

ZERO_OID = "0" * 40

# git children get their own process group (process_group=0): a Ctrl-C in the terminal
# reaches only Python, which stops them in order, instead of killing a git process halfway
# through its write.


def _quote_path(path: str) -> bytes:
    """A path as fast-import reads it: C-style quoted when it could be misread."""
    raw = path.encode("utf-8")
    if not (raw.startswith(b'"') or b"\n" in raw or b"\\" in raw):
        return raw
    escaped = raw.replace(b"\\", b"\\\\").replace(b'"', b'\\"').replace(b"\n", b"\\n")
    return b'"' + escaped + b'"'


def _top_level(file: str) -> str | None:
    """The top-level directory of ``file`` (None for a file at the root of the repo)."""
    head, sep, _ = file.partition("/")
    return head if sep else None


def _size(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 100_000 else f"{n / 1e3:.0f} kB"


def _open_files() -> set[str] | None:
    """Every file that some process we may look at has open (Linux ``/proc``); None where
    this cannot be known."""
    if not Path("/proc/self/fd").is_dir():
        return None
    found: set[str] = set()
    for fds in Path("/proc").glob("[0-9]*/fd"):
        try:
            entries = os.listdir(fds)
        except OSError:
            continue
        for entry in entries:
            try:
                found.add(os.readlink(fds / entry))
            except OSError:
                continue
    return found


class RefTransaction:
    """One ``git update-ref --stdin`` transaction over many refs.

    :meth:`prepare` locks every ref and checks every expected old value; :meth:`commit`
    then moves them all. Leaving without a commit (an error, an interrupt, even this
    process being killed: git sees its input end) aborts, and git removes its locks.
    """

    def __init__(self, repo: Path, updates: list[tuple[str, str, str | None]]) -> None:
        """``updates``: (ref, new id, expected old id or None for "must not exist")."""
        self.repo = repo
        self.updates = updates
        self._proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> RefTransaction:
        return self

    def __exit__(self, *exc: object) -> None:
        self._close()

    def _close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        assert proc.stdin is not None
        with contextlib.suppress(BrokenPipeError):
            proc.stdin.close()  # without a commit, end of input aborts the transaction
        proc.wait()

    def _answer(self, expected: str) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        line = self._proc.stdout.readline().decode().strip()
        if line != f"{expected}: ok":
            proc, self._proc = self._proc, None
            assert proc.stderr is not None
            proc.kill()
            err = proc.stderr.read()
            proc.wait()
            raise GitError("update-ref", proc.returncode, err or f"answered {line!r}")

    def prepare(self) -> None:
        lines = ["start"]
        for ref, new, old in self.updates:
            lines.append(f"update {ref} {new} {old or ZERO_OID}")
        lines.append("prepare")
        self._proc = subprocess.Popen(
            ["git", "-C", str(self.repo), "update-ref", "--stdin"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            process_group=0,
        )
        assert self._proc.stdin is not None
        try:
            self._proc.stdin.write(("\n".join(lines) + "\n").encode())
            self._proc.stdin.flush()
        except BrokenPipeError:
            pass  # git stopped at a bad line; its answer below says why
        self._answer("start")
        self._answer("prepare")

    def commit(self) -> None:
        assert self._proc is not None and self._proc.stdin is not None
        try:
            self._proc.stdin.write(b"commit\n")
            self._proc.stdin.flush()
        except BrokenPipeError:
            pass
        self._answer("commit")
        self._close()


class Writer:
    """The right to write branches to one repository; see the module docstring.

    ``with Writer(repo) as writer`` takes the lock (or raises RepositoryBusyError at once),
    cleans up after an interrupted writer (``writer.cleaned`` says what went), and on
    leaving removes its own staging repository and releases the lock.
    """

    def __init__(self, repo: Path) -> None:
        self.repo = repo
        common, objects = git(
            repo, "rev-parse", "--git-common-dir", "--git-path", "objects"
        ).splitlines()
        self.common = (repo / common).resolve()
        self.objects = (repo / objects).resolve()
        self.home = self.common / "oec-sync"
        self.staging = self.home / "staging"
        self.cleaned: list[str] = []
        self.locked_at = 0.0
        self._lock: IO[str] | None = None

    def __enter__(self) -> Writer:
        self.home.mkdir(parents=True, exist_ok=True)
        lock = (self.home / "write.flock").open("a+", encoding="utf-8")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            holder = lock.read().strip() or "?"
            lock.close()
            raise RepositoryBusyError(
                f"{self.repo}: another oec-sync process (pid {holder}) is writing branches "
                "here; try again when it has finished"
            ) from None
        lock.seek(0)
        lock.truncate()
        lock.write(f"{os.getpid()}\n")
        lock.flush()
        self._lock = lock
        self.locked_at = time.time()
        self.cleaned = self.recover()
        return self

    def __exit__(self, *exc: object) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)
        if self._lock is not None:
            self._lock.close()  # closing the file releases the flock
            self._lock = None

    def recover(self) -> list[str]:
        """Remove what a writer that is gone left behind; a phrase for each kind removed.

        Holding the lock means that no oec-sync process is writing here now, so:

        - a staging repository is a dead writer's;
        - a ``.lock`` under ``refs/heads/oec-sync/`` made before we took the lock is stale:
          only oec-sync writers hold locks there for longer than a moment (a person's git
          command on such a branch holds its lock for milliseconds);
        - temporary object files (``tmp_pack_*``, ``tmp_idx_*``, ``tmp_obj_*`` ...) and
          fast-import's ``pack-*.keep`` can come from any git command, so they must also
          be ours (same user) and open in no process: a live fast-import, index-pack or
          pack-objects keeps its file open. Where open files cannot be listed (no
          ``/proc``) they are left to ``git gc``, which prunes them after two weeks.
        """
        done: list[str] = []
        if self.staging.exists():
            shutil.rmtree(self.staging)
            done.append("a staged write")
        heads = self.common / "refs" / "heads" / BRANCH_PREFIX.rstrip("/")
        locks = [p for p in heads.rglob("*.lock") if self._left_before(p)]
        for path in locks:
            path.unlink(missing_ok=True)
        if locks:
            names = ", ".join(str(p.relative_to(self.common)) for p in locks[:3])
            more = f" and {len(locks) - 3} more" if len(locks) > 3 else ""
            done.append(f"{len(locks)} stale ref lock{'s' * (len(locks) != 1)} ({names}{more})")
        pack = self.objects / "pack"
        candidates = [*pack.glob("tmp_*"), *self.objects.glob("tmp_obj_*")]
        candidates += self.objects.glob("??/tmp_obj_*")
        candidates += [k for k in pack.glob("pack-*.keep") if k.read_bytes() == b"fast-import"]
        candidates = [p for p in candidates if self._left_before(p, mine=True)]
        open_now = _open_files() if candidates else set()
        if candidates and open_now is not None:
            stale = [p for p in candidates if str(p) not in open_now]
            size = sum(p.stat().st_size for p in stale)
            for path in stale:
                path.unlink(missing_ok=True)
            if stale:
                done.append(
                    f"{len(stale)} temporary object file{'s' * (len(stale) != 1)} ({_size(size)})"
                )
        return done

    def _left_before(self, path: Path, mine: bool = False) -> bool:
        """``path`` was last changed before we took the lock (and is this user's)."""
        try:
            info = path.stat()
        except FileNotFoundError:
            return False
        return info.st_mtime < self.locked_at and (not mine or info.st_uid == os.getuid())

    def stage(
        self,
        commits: list[BranchCommit],
        when: dt.datetime | None = None,
        workers: int = 1,
        progress: Progress = QUIET,
    ) -> dict[str, str]:
        """Write the objects of ``commits`` into the repository; each branch's new commit id.

        No ref of the repository changes. See :func:`_fast_import_chain` for how; with
        ``workers`` > 1 the commits are split between that many fast-import processes
        (disjoint branches, each its own pack), for the cores a big run has.
        """
        if not commits:
            return {}
        stamp = int((when or dt.datetime.now(dt.UTC)).timestamp())
        progress.stage("branches", len(commits))
        shutil.rmtree(self.staging, ignore_errors=True)
        git(self.repo, "init", "--quiet", "--bare", "--template=", str(self.staging))
        (self.staging / "objects" / "info").mkdir(parents=True, exist_ok=True)
        (self.staging / "objects" / "info" / "alternates").write_text(f"{self.objects}\n")
        workers = max(1, min(workers, len(commits) // 100))
        chunks = [commits[i::workers] for i in range(workers)]
        ids: dict[str, str] = {}
        if workers == 1:
            ids.update(_fast_import_chain(self.staging, commits, stamp, 0, progress))
        else:
            ids.update(_in_threads(self.staging, chunks, stamp, progress))
        self._move_packs()
        return ids

    def _move_packs(self) -> None:
        """The staging repository's packs into the repository's, each index last."""
        target = self.objects / "pack"
        target.mkdir(parents=True, exist_ok=True)
        for index in sorted((self.staging / "objects" / "pack").glob("pack-*.idx")):
            for suffix in (".pack", ".rev"):
                part = index.with_suffix(suffix)
                if part.exists():
                    os.replace(part, target / part.name)
            os.replace(index, target / index.name)

    def transaction(self, updates: list[tuple[str, str, str | None]]) -> RefTransaction:
        return RefTransaction(self.repo, updates)


def updates_for(
    commits: list[BranchCommit], ids: dict[str, str], tips: dict[str, BranchTip]
) -> list[tuple[str, str, str | None]]:
    """The ref updates that put ``commits`` in place, each expecting the tip seen before."""
    return [
        (f"refs/heads/{c.branch}", ids[c.branch], tips[c.branch].tip if c.branch in tips else None)
        for c in commits
    ]


def write_branches(
    repo: Path,
    commits: list[BranchCommit],
    when: dt.datetime | None = None,
    workers: int = 1,
    progress: Progress = QUIET,
) -> list[BranchCommit]:
    """Write every commit that is not already there, all at once; returns the ones written.

    A branch that exists with another change or base is moved to the new commit (its
    previous proposal is superseded); HEAD, the index and the working tree are untouched.
    """
    tips = existing_tips(repo, commits)
    todo = [c for c in commits if not up_to_date(c, tips)]
    if not todo:
        return []
    with Writer(repo) as writer:
        if writer.cleaned:
            progress.note(cleaned_line(writer.cleaned))
        ids = writer.stage(todo, when, workers, progress)
        with writer.transaction(updates_for(todo, ids, tips)) as refs:
            refs.prepare()
            with deferred():
                refs.commit()
    return todo


def cleaned_line(done: list[str]) -> str:
    return "cleaned up after an interrupted run: removed " + ", ".join(done)


def _in_threads(
    staging: Path, chunks: list[list[BranchCommit]], stamp: int, progress: Progress
) -> dict[str, str]:
    """:func:`_fast_import_chain` on each chunk at once; stops them all on any error."""
    results: list[dict[str, str]] = [{} for _ in chunks]
    errors: list[BaseException] = []
    procs: list[subprocess.Popen[bytes]] = []
    guard = threading.Lock()
    stopped = threading.Event()

    def started(proc: subprocess.Popen[bytes]) -> None:
        with guard:
            procs.append(proc)
            if stopped.is_set():
                proc.kill()

    def run(n: int) -> None:
        try:
            results[n] = _fast_import_chain(staging, chunks[n], stamp, n, progress, started)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(len(chunks))]
    for thread in threads:
        thread.start()
    try:
        for thread in threads:
            thread.join()
    except BaseException:
        # Interrupted in the main thread: stop the other fast-imports, then go.
        with guard:
            stopped.set()
            for proc in procs:
                proc.kill()
        for thread in threads:
            thread.join()
        raise
    if errors:
        raise errors[0]
    return {branch: oid for result in results for branch, oid in result.items()}


def _fast_import_chain(
    staging: Path,
    todo: list[BranchCommit],
    stamp: int,
    worker: int,
    progress: Progress,
    started: Callable[[subprocess.Popen[bytes]], None] | None = None,
) -> dict[str, str]:
    """One fast-import in ``staging`` writes the commits of ``todo``; their ids by branch.

    One commit per branch straight from the base makes fast-import load and store the
    whole directory tree (OEC's ``systems/`` holds 4,000 entries) for every branch, in
    full. Instead one fast-import first walks a scratch chain that changes one file at a
    time (each tree stored as a small delta of the previous one, the big tree parsed once)
    and reports each resulting directory tree (``ls``); then every branch's commit is the
    base commit with that directory swapped in. Same commits and trees; 1,000 branches of
    OEC take ~4 s and 3 MB instead of ~28 s and 100 MB.
    """
    scratch = f"refs/scratch-{worker}"
    staged = f"refs/staged-{worker}"
    by_base: dict[str, list[BranchCommit]] = {}
    for c in todo:
        by_base.setdefault(c.base, []).append(c)

    # Phase 1: per base, one scratch chain; after each link, ask for its top-level tree.
    chain = bytearray()
    mark = 0
    marks: list[BranchCommit] = []
    for base, group in by_base.items():
        group = [c for c in group if _top_level(c.file) is not None]
        if not group:
            continue
        files = tree_entries(staging, base)
        if files is None:
            raise GitError("ls-tree", 128, f"fatal: not a valid commit: {base}")
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
            marks.append(c)
            previous = c

    # unpackLimit=0: a small pack stays a pack (not loose objects) so that it can be moved.
    proc = subprocess.Popen(
        [
            *("git", f"--git-dir={staging}", "-c", "fastimport.unpackLimit=0"),
            *("fast-import", "--quiet", "--force", "--done"),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        process_group=0,
    )
    try:
        if started is not None:
            started(proc)
        return _feed(proc, chain, marks, todo, stamp, staged, mark, progress)
    except BaseException:
        proc.kill()
        proc.wait()
        raise


def _failed(proc: subprocess.Popen[bytes], note: str) -> GitError:
    proc.kill()
    assert proc.stderr is not None
    err = proc.stderr.read()
    proc.wait()
    return GitError("fast-import", proc.returncode or 1, err or note)


def _feed(
    proc: subprocess.Popen[bytes],
    chain: bytearray,
    marks: list[BranchCommit],
    todo: list[BranchCommit],
    stamp: int,
    staged: str,
    mark: int,
    progress: Progress,
) -> dict[str, str]:
    assert proc.stdin is not None and proc.stdout is not None

    def feed() -> None:
        try:
            assert proc.stdin is not None
            proc.stdin.write(bytes(chain))
            proc.stdin.flush()
        except (BrokenPipeError, ValueError):
            pass  # fast-import died or was stopped; its stderr says why

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    trees: dict[str, str] = {}
    for n, c in enumerate(marks):
        answer = proc.stdout.readline().decode("utf-8")
        kind = answer.split(" ", 2)
        if len(kind) < 3 or kind[1] != "tree":
            writer.join()
            raise _failed(proc, f"unexpected answer: {answer!r}")
        trees[c.branch] = kind[2].split("\t", 1)[0]
        progress.advance()
        if n == len(marks) // 2:
            checkpoint("branches")
    writer.join()

    # Phase 2: the real commits, on a staging ref; get-mark reports each one's id.
    stream = bytearray()
    first = mark + 1
    for c in todo:
        mark += 1
        message = c.message.encode("utf-8")
        stream += f"commit {staged}\nmark :{mark}\n".encode()
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
        stream += f"get-mark :{mark}\n".encode()
    out, err = proc.communicate(bytes(stream) + b"done\n")
    if proc.returncode != 0:
        raise GitError("fast-import", proc.returncode, err)
    ids = out.decode().split()
    if len(ids) != mark - first + 1:
        raise GitError("fast-import", 1, f"expected {mark - first + 1} commit ids, got {len(ids)}")
    progress.advance(len(todo) - len(marks))  # files at the root of the repo
    return {c.branch: oid for c, oid in zip(todo, ids, strict=True)}
