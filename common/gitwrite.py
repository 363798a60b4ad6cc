"""Writing a run's branches so that they appear together or not at all.

    lock    ``<git dir>/oec-sync/write.flock``, an exclusive ``flock``: one writer per
            repository. The kernel releases it when its process ends, however it ends, so
            holding it proves that no other oec-sync process is writing here.
    stage   the commits' objects written as packs with their indexes
            (:mod:`common.gitpack`) into ``<git dir>/oec-sync/staging``, never straight
            into the checkout.
    move    the finished packs into ``objects/pack``, each index last (git finds a pack by
            its index): objects that nothing refers to yet, invisible to anyone.
    commit  the new branches written into ``packed-refs.lock`` and the moved ones locked by one
            ``git update-ref --stdin`` transaction (start, update with the expected old
            value, prepare), then the lock renamed over ``packed-refs`` and the transaction
            committed (:class:`RefTransaction`): every branch moves, or none does, and a
            branch that someone else created or moved meanwhile fails the whole run with
            git's message.

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
from pathlib import Path
from typing import IO

from common.errors import GitError, RepositoryBusyError
from common.gitpack import write_packs
from common.gitrepo import (
    BRANCH_PREFIX,
    BranchCommit,
    BranchTip,
    existing_tips,
    git,
    up_to_date,
)
from common.interrupts import checkpoint, deferred
from common.progress import QUIET, Progress

# git children get their own process group (process_group=0): a Ctrl-C in the terminal
# reaches only Python, which stops them in order, instead of killing a git process halfway
# through its write.


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
    """Many refs moved together: new branches in ``packed-refs``, existing ones through one
    ``git update-ref --stdin`` transaction.

    :meth:`prepare` checks every expected old value and locks everything it will change:
    the branches that do not exist yet are written, with every ref ``packed-refs`` already
    holds, into ``packed-refs.lock`` (as ``git pack-refs`` does); the others are locked by
    git, each against the tip the run saw. :meth:`commit` renames the lock over
    ``packed-refs`` and commits git's transaction. Leaving without a commit (an error, an
    interrupt, even this process being killed: git sees its input end) aborts; git removes
    its locks and we remove ours (a killed run's is removed by the next, :meth:`Writer.recover`).

    Why not git for the new branches too: git writes each as a loose ref, with a lock file,
    a rename, and checks each against every other: 5.4 s for the 4,330 branches
    of a first run on the full data (0.7 ms a branch), against one file written here.
    """

    def __init__(
        self, repo: Path, updates: list[tuple[str, str, str | None]], git_dir: Path
    ) -> None:
        """``updates``: (ref, new id, expected old id or None for "must not exist");
        ``git_dir``: the repository's common directory (where ``packed-refs`` is)."""
        self.repo = repo
        self.updates = updates
        self.packed = git_dir / "packed-refs"
        self.packed_lock = git_dir / "packed-refs.lock"
        self._locked = False  # packed-refs.lock is ours
        self._created: list[str] = []
        self._proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> RefTransaction:
        return self

    def __exit__(self, *exc: object) -> None:
        self._close()

    def _close(self) -> None:
        if self._locked:
            self.packed_lock.unlink(missing_ok=True)
            self._locked = False
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
        created = {ref: new for ref, new, old in self.updates if old is None}
        moved = [(ref, new, old) for ref, new, old in self.updates if old is not None]
        if created:
            self._prepare_packed(created)
        if moved:
            self._prepare_moved(moved)

    def _prepare_packed(self, created: dict[str, str]) -> None:
        try:
            handle = os.open(self.packed_lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            raise GitError(
                "update-ref",
                128,
                f"fatal: Unable to create '{self.packed_lock}': File exists.\n\n"
                "Another git process seems to be running in this repository; "
                "if none is, remove the file.",
            ) from None
        self._locked = True
        with os.fdopen(handle, "w", encoding="utf-8", newline="\n") as lock:
            existing = set(git(self.repo, "for-each-ref", "--format=%(refname)").split())
            folders = _folders(existing)
            for ref in created:
                if clash := _ref_clash(ref, existing, folders):
                    raise GitError("update-ref", 128, f"fatal: cannot lock ref '{ref}': {clash}")
            header, records = _read_packed(self.packed)
            records.update({ref: [f"{new} {ref}"] for ref, new in created.items()})
            lock.write(header)
            lock.writelines(line + "\n" for ref in sorted(records) for line in records[ref])
            lock.flush()
            os.fsync(lock.fileno())  # as git hardens refs (core.fsync's default)
        self._created = list(created)

    def _prepare_moved(self, moved: list[tuple[str, str, str]]) -> None:
        lines = ["start"]
        for ref, new, old in moved:
            lines.append(f"update {ref} {new} {old}")
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
        if self._locked:
            # A branch someone created as a loose ref since prepare would hide ours.
            git_dir = self.packed.parent
            if late := next((r for r in self._created if (git_dir / r).exists()), None):
                raise GitError(
                    "update-ref", 128, f"fatal: cannot lock ref '{late}': reference already exists"
                )
            os.replace(self.packed_lock, self.packed)
            self._locked = False
        if self._proc is None:
            return
        assert self._proc.stdin is not None
        try:
            self._proc.stdin.write(b"commit\n")
            self._proc.stdin.flush()
        except BrokenPipeError:
            pass
        self._answer("commit")
        self._close()


PACKED_HEADER = "# pack-refs with: peeled fully-peeled sorted \n"


def _read_packed(path: Path) -> tuple[str, dict[str, list[str]]]:
    """``packed-refs``: its header line and each ref's lines (the ref, then its peeled id)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return PACKED_HEADER, {}
    header = PACKED_HEADER
    records: dict[str, list[str]] = {}
    ref = ""
    for line in text.splitlines():
        if line.startswith("# pack-refs with:"):
            header = line + "\n"
        elif line.startswith("^"):
            records[ref].append(line)
        elif line:
            ref = line.split(" ", 1)[1]
            records[ref] = [line]
    return header, records


def _ref_clash(ref: str, existing: set[str], folders: dict[str, str]) -> str:
    """Why ``ref`` cannot be created beside ``existing`` refs (git's words), or ''.
    ``folders``: each folder of an existing ref (``refs/heads/a`` of ``refs/heads/a/b``) ->
    one ref in it."""
    if ref in existing:
        return "reference already exists"
    parts = ref.split("/")
    for end in range(2, len(parts)):
        if (prefix := "/".join(parts[:end])) in existing:
            return f"'{prefix}' exists; cannot create '{ref}'"
    if ref in folders:
        return f"'{folders[ref]}' exists; cannot create '{ref}'"
    return ""


def _folders(refs: set[str]) -> dict[str, str]:
    folders: dict[str, str] = {}
    for ref in refs:
        parts = ref.split("/")
        for end in range(2, len(parts)):
            folders.setdefault("/".join(parts[:end]), ref)
    return folders


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
        - so is a ``packed-refs.lock`` made before we took the lock that no process has
          open (git holds it open for the moment it writes; ours is closed once written);
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
        packed_lock = self.common / "packed-refs.lock"
        old_lock = self._left_before(packed_lock, mine=True)
        candidates = [*pack.glob("tmp_*"), *self.objects.glob("tmp_obj_*")]
        candidates += self.objects.glob("??/tmp_obj_*")
        candidates += [k for k in pack.glob("pack-*.keep") if k.read_bytes() == b"fast-import"]
        candidates = [p for p in candidates if self._left_before(p, mine=True)]
        open_now = _open_files() if candidates or old_lock else set()
        if open_now is None:
            return done
        if old_lock and str(packed_lock) not in open_now:
            packed_lock.unlink(missing_ok=True)
            done.append("a stale packed-refs.lock")
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

        No ref of the repository changes. ``workers`` > 1 splits the commits between that
        many threads (disjoint branches, each its own pack), for the cores a big run has.
        """
        if not commits:
            return {}
        # common/gitpack.py names objects by SHA-1, as OEC's repository (and GitHub) do.
        object_format = git(self.repo, "rev-parse", "--show-object-format").strip()
        if object_format != "sha1":
            raise GitError(
                "rev-parse",
                1,
                f"{self.repo} stores {object_format} objects; OEC Sync writes branches only "
                "into SHA-1 repositories, as OEC's is",
            )
        stamp = int((when or dt.datetime.now(dt.UTC)).timestamp())
        progress.stage("branches", len(commits))
        shutil.rmtree(self.staging, ignore_errors=True)
        packs = self.staging / "objects" / "pack"
        packs.mkdir(parents=True)
        done = 0
        counting = threading.Lock()

        def advance(steps: int) -> None:
            nonlocal done
            with counting:
                progress.advance(steps)
                done += steps
            # Half way, in the thread that signals reach (the others stop when it does).
            if done > len(commits) // 2 and threading.current_thread() is threading.main_thread():
                checkpoint("branches")

        ids = write_packs(self.repo, packs, commits, stamp, workers, advance)
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
        return RefTransaction(self.repo, updates, self.common)


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
