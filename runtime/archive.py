"""The snapshot archive: every catalogue download, gzip-compressed, addressed by its sha256.

    <dir>/objects/ab/ab12…ef.gz    the bytes exactly as downloaded; the name is the sha256 of
                                   the uncompressed bytes, so a catalogue that did not change
                                   between two days is stored once
    <dir>/manifest.sqlite3         one row per download: url, source, time, size, hash, rows,
                                   run, state; plus the rows the indexer rejected

A snapshot's state follows its run::

    pending ──run.completed──────────────────────────▶ finished
       └────catalogue.failed, or no run.completed ───▶ unfinished
            within the run timeout

Retention (``prune``) deletes *finished* snapshots older than ``max_age_days`` or beyond the
newest ``max_count`` finished ones of their catalogue. Pending and unfinished snapshots are
never deleted (they are the ones someone may need to reprocess), nor the newest finished one
of each catalogue. An object file goes with the last manifest row that refers to it.

The archive learns about runs from the bus: ``Recorder`` is the handler of
``common.topology.ARCHIVE`` (catalogue.downloaded carries the bytes), so it works wherever the
archive's volume is mounted, without a filesystem shared with the fetcher.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import os
import sqlite3
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, Field

from common.messages import (
    CatalogueDownloaded,
    CatalogueFailed,
    Message,
    RunCompleted,
    RunPlanned,
)
from common.records import RejectedRow, Source

__all__ = [
    "Archive",
    "ArchiveError",
    "Recorder",
    "Snapshot",
    "SnapshotState",
]

DEFAULT_RUN_TIMEOUT = dt.timedelta(days=1)
# A hash prefix shorter than this could be a manifest id; git uses the same minimum.
MIN_HASH_PREFIX = 7

_SCHEMA = """
CREATE TABLE IF NOT EXISTS snapshots (
    id          INTEGER PRIMARY KEY,
    sha256      TEXT NOT NULL,
    source      TEXT NOT NULL,
    url         TEXT NOT NULL,
    fetched_at  TEXT NOT NULL,          -- ISO 8601, UTC: sorts as text
    size        INTEGER NOT NULL,       -- bytes as downloaded
    stored_size INTEGER NOT NULL,       -- bytes of the .gz object
    run_id      TEXT NOT NULL,
    rows        INTEGER,                -- data rows the indexer read; NULL until it reports
    state       TEXT NOT NULL DEFAULT 'pending',
    detail      TEXT,                   -- why a snapshot is unfinished
    UNIQUE (run_id, source, sha256)
);
CREATE INDEX IF NOT EXISTS snapshots_sha256 ON snapshots (sha256);
CREATE TABLE IF NOT EXISTS rejected_rows (
    snapshot_id INTEGER NOT NULL REFERENCES snapshots (id) ON DELETE CASCADE,
    file        TEXT NOT NULL,
    row         INTEGER NOT NULL,
    col         TEXT,
    reason      TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS rejected_rows_snapshot ON rejected_rows (snapshot_id);
"""


class ArchiveError(Exception):
    """A snapshot that is not there, is ambiguous, or whose object is damaged."""


class SnapshotState(StrEnum):
    PENDING = "pending"
    FINISHED = "finished"
    UNFINISHED = "unfinished"


class Snapshot(BaseModel):
    """One download as the manifest records it."""

    id: int
    sha256: str
    source: Source
    url: str
    fetched_at: dt.datetime
    size: int = Field(description="bytes as downloaded")
    stored_size: int = Field(description="bytes of the gzip object")
    run_id: str
    rows: int | None = None
    state: SnapshotState
    detail: str | None = None
    rejected: int = 0


def _iso(moment: dt.datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("archive times must be timezone-aware")
    return moment.astimezone(dt.UTC).isoformat(timespec="microseconds")


class Archive:
    """The archive in ``root``; every method opens its own connection, so threads may share it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.objects = root / "objects"
        self.objects.mkdir(parents=True, exist_ok=True)
        self.manifest = root / "manifest.sqlite3"
        with self._db() as db:
            # WAL lets `oec-sync snapshots list` read while the service writes.
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(_SCHEMA)

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        with closing(sqlite3.connect(self.manifest, timeout=30)) as db:
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA foreign_keys=ON")
            with db:  # one transaction: committed on success, rolled back on error
                yield db

    def object_path(self, sha256: str) -> Path:
        return self.objects / sha256[:2] / f"{sha256}.gz"

    # -- writing -------------------------------------------------------------------------

    def store(
        self, source: Source, url: str, data: bytes, fetched_at: dt.datetime, run_id: str
    ) -> Snapshot:
        """Keep ``data`` (pending); storing the same download of the same run again is a no-op."""
        when = _iso(fetched_at)
        sha256 = hashlib.sha256(data).hexdigest()
        path = self.object_path(sha256)
        with self._db() as db:
            # The manifest's write lock, taken first, keeps prune from deleting the object
            # between the check below and the row that refers to it.
            db.execute("BEGIN IMMEDIATE")
            if not path.exists():
                self._write_object(path, gzip.compress(data, mtime=0))
            db.execute(
                "INSERT OR IGNORE INTO snapshots"
                " (sha256, source, url, fetched_at, size, stored_size, run_id)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (sha256, source.value, url, when, len(data), path.stat().st_size, run_id),
            )
            row = db.execute(
                "SELECT id FROM snapshots WHERE run_id = ? AND source = ? AND sha256 = ?",
                (run_id, source.value, sha256),
            ).fetchone()
        return self.get(row["id"])

    def _write_object(self, path: Path, compressed: bytes) -> None:
        # Write beside the target and rename: a reader never sees half an object.
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(compressed)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def record_plan(
        self, run_id: str, source: Source, rows: int, rejected: Sequence[RejectedRow]
    ) -> None:
        """What the indexer read from the run's download of ``source``: rows, rejected rows."""
        with self._db() as db:
            ids = [
                r["id"]
                for r in db.execute(
                    "SELECT id FROM snapshots WHERE run_id = ? AND source = ?",
                    (run_id, source.value),
                )
            ]
            for snapshot_id in ids:
                db.execute("UPDATE snapshots SET rows = ? WHERE id = ?", (rows, snapshot_id))
                db.execute("DELETE FROM rejected_rows WHERE snapshot_id = ?", (snapshot_id,))
                db.executemany(
                    "INSERT INTO rejected_rows (snapshot_id, file, row, col, reason)"
                    " VALUES (?, ?, ?, ?, ?)",
                    [(snapshot_id, r.file, r.row, r.column, r.reason) for r in rejected],
                )

    def finish_run(self, run_id: str) -> int:
        """Mark the run's pending snapshots finished; how many changed."""
        with self._db() as db:
            return db.execute(
                "UPDATE snapshots SET state = ?, detail = NULL WHERE run_id = ? AND state = ?",
                (SnapshotState.FINISHED, run_id, SnapshotState.PENDING),
            ).rowcount

    def mark_unfinished(self, run_id: str, source: Source | None, detail: str) -> int:
        """Mark the run's snapshots (of ``source``, or all) unfinished; how many changed."""
        query = "UPDATE snapshots SET state = ?, detail = ? WHERE run_id = ? AND state != ?"
        args: list[object] = [SnapshotState.UNFINISHED, detail, run_id, SnapshotState.FINISHED]
        if source is not None:
            query += " AND source = ?"
            args.append(source.value)
        with self._db() as db:
            return db.execute(query, args).rowcount

    def expire(self, now: dt.datetime, run_timeout: dt.timedelta = DEFAULT_RUN_TIMEOUT) -> int:
        """Pending snapshots older than ``run_timeout`` become unfinished; how many."""
        with self._db() as db:
            return db.execute(
                "UPDATE snapshots SET state = ?, detail = ? WHERE state = ? AND fetched_at < ?",
                (
                    SnapshotState.UNFINISHED,
                    f"no run.completed within {run_timeout}",
                    SnapshotState.PENDING,
                    _iso(now - run_timeout),
                ),
            ).rowcount

    # -- reading -------------------------------------------------------------------------

    _SELECT = (
        "SELECT s.*, (SELECT COUNT(*) FROM rejected_rows r WHERE r.snapshot_id = s.id)"
        " AS rejected FROM snapshots s"
    )

    def snapshots(
        self,
        source: Source | None = None,
        state: SnapshotState | None = None,
        limit: int | None = None,
    ) -> list[Snapshot]:
        """Newest first."""
        where: list[str] = []
        args: list[object] = []
        if source is not None:
            where.append("s.source = ?")
            args.append(source.value)
        if state is not None:
            where.append("s.state = ?")
            args.append(state.value)
        query = self._SELECT + (" WHERE " + " AND ".join(where) if where else "")
        query += " ORDER BY s.fetched_at DESC, s.id DESC"
        if limit is not None:
            query += " LIMIT ?"
            args.append(limit)
        with self._db() as db:
            return [Snapshot.model_validate(dict(r)) for r in db.execute(query, args)]

    def get(self, snapshot_id: int) -> Snapshot:
        with self._db() as db:
            row = db.execute(self._SELECT + " WHERE s.id = ?", (snapshot_id,)).fetchone()
        if row is None:
            raise ArchiveError(f"no snapshot {snapshot_id}")
        return Snapshot.model_validate(dict(row))

    def resolve(self, ref: str) -> Snapshot:
        """A snapshot by manifest id, or by sha256 prefix (at least 7 hex digits).

        A hash downloaded more than once names its newest download.
        """
        ref = ref.strip().lower()
        if ref.isdigit() and len(ref) < MIN_HASH_PREFIX:
            return self.get(int(ref))
        if len(ref) < MIN_HASH_PREFIX or any(c not in "0123456789abcdef" for c in ref):
            raise ArchiveError(f"{ref!r} is neither an id nor a sha256 prefix of 7+ hex digits")
        with self._db() as db:
            rows = db.execute(
                "SELECT id, sha256 FROM snapshots WHERE sha256 LIKE ? ORDER BY fetched_at DESC",
                (ref + "%",),
            ).fetchall()
        hashes = {r["sha256"] for r in rows}
        if not hashes:
            raise ArchiveError(f"no snapshot with hash {ref}")
        if len(hashes) > 1:
            raise ArchiveError(f"{ref} is ambiguous: " + ", ".join(sorted(hashes)))
        return self.get(rows[0]["id"])

    def rejected_rows(self, snapshot_id: int) -> list[RejectedRow]:
        with self._db() as db:
            rows = db.execute(
                "SELECT file, row, col, reason FROM rejected_rows WHERE snapshot_id = ?"
                " ORDER BY row",
                (snapshot_id,),
            ).fetchall()
        return [
            RejectedRow(file=r["file"], row=r["row"], column=r["col"], reason=r["reason"])
            for r in rows
        ]

    def read(self, snapshot: Snapshot) -> bytes:
        """The bytes as downloaded; raises ArchiveError if the object is missing or damaged."""
        path = self.object_path(snapshot.sha256)
        try:
            data = gzip.decompress(path.read_bytes())
        except (OSError, EOFError, gzip.BadGzipFile) as exc:
            raise ArchiveError(f"snapshot {snapshot.id}: cannot read {path}: {exc}") from exc
        if hashlib.sha256(data).hexdigest() != snapshot.sha256:
            raise ArchiveError(f"snapshot {snapshot.id}: {path} does not match its hash")
        return data

    def message(self, snapshot: Snapshot, run_id: str) -> CatalogueDownloaded:
        """The snapshot as a catalogue.downloaded of ``run_id``, with its original URL and time
        (the indexer dates rows by the download, so a reprocess must not look newer)."""
        return CatalogueDownloaded.from_bytes(
            run_id, snapshot.source, snapshot.url, self.read(snapshot), snapshot.fetched_at
        )

    # -- retention -----------------------------------------------------------------------

    def prune(
        self,
        now: dt.datetime,
        max_age_days: int,
        max_count: int,
        run_timeout: dt.timedelta = DEFAULT_RUN_TIMEOUT,
        dry_run: bool = False,
    ) -> list[Snapshot]:
        """Apply retention (see the module docstring); the snapshots deleted (or that would be).

        ``max_age_days`` and ``max_count`` of 0 switch that limit off.
        """
        if not dry_run:
            self.expire(now, run_timeout)
        cutoff = now - dt.timedelta(days=max_age_days)
        doomed: list[Snapshot] = []
        for source in Source:
            finished = self.snapshots(source=source, state=SnapshotState.FINISHED)
            for rank, snapshot in enumerate(finished):
                if rank == 0:
                    continue  # the newest finished download of a catalogue always stays
                too_old = max_age_days > 0 and snapshot.fetched_at < cutoff
                too_many = max_count > 0 and rank >= max_count
                if too_old or too_many:
                    doomed.append(snapshot)
        if dry_run or not doomed:
            return doomed
        with self._db() as db:
            db.executemany("DELETE FROM snapshots WHERE id = ?", [(s.id,) for s in doomed])
            still_used = {r["sha256"] for r in db.execute("SELECT DISTINCT sha256 FROM snapshots")}
            # Inside the transaction: a concurrent store() waits, then writes the object anew.
            for sha256 in {s.sha256 for s in doomed} - still_used:
                self.object_path(sha256).unlink(missing_ok=True)
        return doomed


class Recorder:
    """A bus handler that keeps the archive in step with the runs; produces no messages.

    After every run.completed it applies retention, so the archive needs no timer of its own.
    """

    def __init__(
        self,
        archive: Archive,
        max_age_days: int,
        max_count: int,
        run_timeout: dt.timedelta = DEFAULT_RUN_TIMEOUT,
    ) -> None:
        self.archive = archive
        self.max_age_days = max_age_days
        self.max_count = max_count
        self.run_timeout = run_timeout

    def __call__(self, message: Message) -> list[Message]:
        if isinstance(message, CatalogueDownloaded):
            self.archive.store(
                message.source, message.url, message.content(), message.fetched_at, message.run_id
            )
        elif isinstance(message, RunPlanned):
            self.archive.record_plan(
                message.run_id, message.source, message.counts.rows, message.rejected
            )
        elif isinstance(message, CatalogueFailed):
            self.archive.mark_unfinished(message.run_id, message.source, message.error)
        elif isinstance(message, RunCompleted):
            self.archive.finish_run(message.run_id)
            self.archive.prune(
                message.produced_at, self.max_age_days, self.max_count, self.run_timeout
            )
        return []
