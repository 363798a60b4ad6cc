"""What a run computed, remembered by what it was computed from, so that the next run redoes
only what changed.

Three kinds of entry, each keyed by a digest of every input of the step it saves:

``catalogue``  a download read and matched: its bytes, source, name and date, the index's
               matching content (not its commit, so a commit that edits values only keeps
               it) -> the catalogue's records and their matches
``merge``      one planet merged: its record, its match and the blob of its file -> the
               merger's outcome messages
``build``      one file's proposal: its blob and the digests of the merges that patched it
               -> the proposal or refusal and the file's conflicts

Every key also holds :data:`CODE_VERSION`, a digest of the code that computes outcomes
(``common/`` and the merger), so a change of rules, readers or PR text invalidates every
entry without anybody remembering to bump a number. One entry is kept per unit (the
download's source, the planet's row, the file), the newest, so the store stays the size of
one run. Values are the JSON of the pydantic models they hold (compressed): loading them
validates them, and nothing in the store can run code.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
import time
import zlib
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType

_ROOT = Path(__file__).resolve().parents[1]


def _code_version() -> str:
    digest = hashlib.sha256()
    handlers = [_ROOT / "services" / name / "handler.py" for name in ("indexer", "merger")]
    sources = [*sorted((_ROOT / "common").rglob("*.py")), *handlers]
    for path in sources:
        digest.update(path.relative_to(_ROOT).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


CODE_VERSION = _code_version()
AUTOSAVE_ENTRIES = 500
AUTOSAVE_SECONDS = 5.0


def digest(*parts: str | bytes) -> str:
    """A key from its parts, each length-prefixed so that no two part lists collide."""
    hashed = hashlib.sha256(CODE_VERSION.encode())
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        hashed.update(len(data).to_bytes(8, "big"))
        hashed.update(data)
    return hashed.hexdigest()


class Memo:
    """A SQLite file of remembered results; ``reading=False`` (``--full``) recomputes
    everything but still remembers it. ``path=None`` remembers nothing. A run saves once
    at its end; a service, which has no end, with ``autosave`` saves every few hundred
    entries or seconds (an entry lost when it stops is only computed again)."""

    def __init__(self, path: Path | None, reading: bool = True, autosave: bool = False) -> None:
        self.path = path
        self.reading = reading
        self.autosave = autosave
        self.hits = 0
        self.misses = 0
        self._pending: list[tuple[str, str, str, bytes]] = []
        self._saved_at = time.monotonic()
        self._db: sqlite3.Connection | None = None
        # A service's handlers and its finisher thread share one memo.
        self._lock = threading.Lock()
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, check_same_thread=False, timeout=30)
            # A cache: an entry lost in a crash is computed again, so no fsync per save.
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=OFF")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS memo ("
                " kind TEXT, unit TEXT, key TEXT, value BLOB, PRIMARY KEY (kind, unit))"
            )

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
        row = None
        if self._db is not None and self.reading:
            with self._lock:
                row = self._db.execute(
                    "SELECT value FROM memo WHERE kind = ? AND unit = ? AND key = ?",
                    (kind, unit, key),
                ).fetchone()
        if row is None:
            self.misses += 1
            return None
        self.hits += 1
        return zlib.decompress(row[0])

    def put(self, kind: str, unit: str, key: str, value: bytes) -> None:
        """Remember ``value`` for ``unit``, replacing what it had; written by :meth:`save`."""
        if self._db is not None:
            with self._lock:
                self._pending.append((kind, unit, key, zlib.compress(value, 1)))
            if self.autosave and (
                len(self._pending) >= AUTOSAVE_ENTRIES
                or time.monotonic() - self._saved_at >= AUTOSAVE_SECONDS
            ):
                self.save()

    def put_many(self, kind: str, items: Iterable[tuple[str, str, bytes]]) -> None:
        for unit, key, value in items:
            self.put(kind, unit, key, value)

    def save(self) -> None:
        """Write what was remembered since the last save, in one transaction."""
        with self._lock:
            if self._db is None or not self._pending:
                return
            with self._db:
                self._db.executemany(
                    "INSERT OR REPLACE INTO memo (kind, unit, key, value) VALUES (?, ?, ?, ?)",
                    self._pending,
                )
            self._pending = []
            self._saved_at = time.monotonic()

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None
