"""The memo's store: a SQLite file beside a run's other state (see common/memo.py)."""

from __future__ import annotations

import sqlite3
import threading
import time
import zlib
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import cast

import lz4.frame

AUTOSAVE_ENTRIES = 500
AUTOSAVE_SECONDS = 5.0
# Values are compressed in batches on a thread of their own (the compressor lets go of the
# GIL), so that a cold run's 30,000 values (160 MB) are compressed beside its other work. A
# batch goes when it holds BATCH values or BATCH_BYTES: a catalogue's entries (two of 30 MB)
# must not wait for the save, which would then wait for their compression.
BATCH = 256
BATCH_BYTES = 4 << 20
# LZ4 frames: on the merges' and builds' 95 MB, 31 MB kept against zlib's 23 MB, but 0.08 s
# to compress instead of 0.83 s (CPU a first run's two processes want) and 0.04 s to
# decompress instead of 0.25 s (most of what an unchanged run decompresses). A memo an
# earlier version wrote holds zlib streams, told apart by the frame's magic number.
_LZ4_MAGIC = b"\x04\x22\x4d\x18"

Row = tuple[str, str, str, bytes]
_ALL = "SELECT kind, unit, key, value FROM memo"
_VALUE = "SELECT value FROM memo WHERE kind = ? AND unit = ? AND key = ?"


def _compressed(rows: list[Row]) -> list[Row]:
    return [(kind, unit, key, lz4.frame.compress(value)) for kind, unit, key, value in rows]


def _decompressed(stored: bytes) -> bytes:
    if stored[:4] == _LZ4_MAGIC:
        return cast(bytes, lz4.frame.decompress(stored))
    return zlib.decompress(stored)


class Memo:
    """A SQLite file of remembered results; ``reading=False`` (``--full``) recomputes
    everything but still remembers it. ``path=None`` remembers nothing. The file is made
    on first use. A run saves when its publisher has built (the publisher service has no
    end) and at its end; a service with ``autosave`` also saves every few hundred entries or
    seconds (an entry lost when it stops is only computed again)."""

    def __init__(self, path: Path | None, reading: bool = True, autosave: bool = False) -> None:
        self.path = path
        self.reading = reading
        self.autosave = autosave
        self.hits = 0
        self.misses = 0
        self._raw: list[Row] = []  # not yet handed to the compressor
        self._raw_bytes = 0
        self._batches: list[Future[list[Row]]] = []
        self._unsaved = 0  # entries put since the last save
        self._compressor: ThreadPoolExecutor | None = None
        self._saved_at = time.monotonic()
        self._db: sqlite3.Connection | None = None
        # A run's memo reads the whole store at its first look-up (one query, 25 MB
        # compressed, instead of 16,000); a service's lives for days beside other writers
        # and asks SQLite each time.
        self._entries: dict[tuple[str, str], tuple[str, bytes]] | None = None
        # A service's handlers and its finisher thread share one memo.
        self._lock = threading.Lock()

    def _connection(self) -> sqlite3.Connection:
        """The open store (call with the lock held and a path set)."""
        if self._db is None:
            assert self.path is not None
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=30)
            # A cache: an entry lost in a crash is computed again, so no fsync per save.
            # The services share their store, and WAL (kept by the file once set) lets them
            # read while one writes. A run's store is its own: WAL would write each page
            # twice (the log, then the file), and a first run's save took 0.2 s, not 0.1 s.
            if self.autosave:
                self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=OFF")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS memo ("
                " kind TEXT, unit TEXT, key TEXT, value BLOB, PRIMARY KEY (kind, unit))"
            )
        return self._db

    def __enter__(self) -> Memo:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # An interrupted run saves nothing more on its way out (each saved entry is right
        # for its key whenever it was saved).
        if exc_type is None:
            self.save()
        self.close()

    def get(self, kind: str, unit: str, key: str) -> bytes | None:
        """The value remembered for ``unit`` if it was computed from ``key``."""
        value = self._stored(kind, unit, key)
        if value is None:
            self.misses += 1
            return None
        self.hits += 1
        return _decompressed(value)

    def holds(self, kind: str, unit: str, key: str) -> bool:
        """Whether :meth:`get` would answer, without decompressing the answer."""
        return self._stored(kind, unit, key) is not None

    def _stored(self, kind: str, unit: str, key: str) -> bytes | None:
        """The compressed value for ``unit`` if it was computed from ``key``."""
        if self.path is None or not self.reading:
            return None
        with self._lock:
            db = self._connection()
            if self.autosave:
                row = db.execute(_VALUE, (kind, unit, key)).fetchone()
                return row[0] if row is not None else None
            if self._entries is None:
                self._entries = {(k, u): (sk, v) for k, u, sk, v in db.execute(_ALL)}
            entry = self._entries.get((kind, unit))
            return entry[1] if entry is not None and entry[0] == key else None

    def put(self, kind: str, unit: str, key: str, value: bytes) -> None:
        """Remember ``value`` for ``unit``, replacing what it had; written by :meth:`save`."""
        if self.path is None:
            return
        with self._lock:
            self._raw.append((kind, unit, key, value))
            self._raw_bytes += len(value)
            self._unsaved += 1
            if len(self._raw) >= BATCH or self._raw_bytes >= BATCH_BYTES:
                self._compress()
            pending = self._unsaved
        if self.autosave and (
            pending >= AUTOSAVE_ENTRIES or time.monotonic() - self._saved_at >= AUTOSAVE_SECONDS
        ):
            self.save()

    def _compress(self) -> None:
        """Hand what was put since the last batch to the compressor (call with the lock)."""
        if self._compressor is None:
            self._compressor = ThreadPoolExecutor(1, thread_name_prefix="memo-compress")
        rows, self._raw, self._raw_bytes = self._raw, [], 0
        self._batches.append(self._compressor.submit(_compressed, rows))

    def save(self) -> None:
        """Write what was remembered since the last save, in one transaction."""
        with self._lock:
            if self.path is None or not (self._raw or self._batches):
                return
            if self._raw:
                self._compress()
            rows = [row for batch in self._batches for row in batch.result()]
            self._batches, self._unsaved = [], 0
            with self._connection() as db:
                db.executemany(
                    "INSERT OR REPLACE INTO memo (kind, unit, key, value) VALUES (?, ?, ?, ?)",
                    rows,
                )
            if self._entries is not None:
                self._entries.update({(kind, unit): (key, v) for kind, unit, key, v in rows})
            self._saved_at = time.monotonic()

    def close(self) -> None:
        """Close the store; what was put since the last save is dropped."""
        with self._lock:
            if self._compressor is not None:
                self._compressor.shutdown(wait=True, cancel_futures=True)
                self._compressor = None
            self._raw, self._raw_bytes, self._batches, self._unsaved = [], 0, [], 0
            if self._db is not None:
                self._db.close()
                self._db = None
            self._entries = None
