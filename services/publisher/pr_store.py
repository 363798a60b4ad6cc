"""What the publisher remembers between runs: its pull requests and its queue (SQLite).

GitHub is the truth about which pull requests are open; this store adds what GitHub cannot
say cheaply: which change set (fingerprint) a closed pull request carried, so a change a
maintainer rejected is not proposed again, and since when a system has waited under the
per-run cap, so the queue drains in a stable first-come order.

The database lives under ``OEC_SYNC_DATA_DIR`` (a persistent volume on Kubernetes). Losing it
is not a disaster: open pull requests are re-adopted from GitHub with the fingerprint their
body carries; only memory of rejected changes is lost.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from common.proposals import Proposal

SCHEMA_VERSION = 1

# Bookkeeping OEC Sync writes alongside every proposal; it is not a value a maintainer
# accepts or rejects, and counting it would make every run's fingerprint new.
_NOT_PROPOSED = frozenset({"lastupdate"})

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS pulls (
    number INTEGER PRIMARY KEY,
    branch TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    state TEXT NOT NULL,
    head_sha TEXT NOT NULL DEFAULT '',
    url TEXT NOT NULL DEFAULT '',
    opened_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    closed_at TEXT,
    branch_deleted INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS pulls_branch ON pulls (branch, state);
CREATE TABLE IF NOT EXISTS queue (
    branch TEXT PRIMARY KEY,
    run INTEGER NOT NULL,
    first_seen TEXT NOT NULL
);
"""


class PullState(StrEnum):
    OPEN = "open"
    CLOSED = "closed"  # closed without merging: the maintainer said no
    MERGED = "merged"


def fingerprint(proposal: Proposal) -> str:
    """The identity of a change set: file + sorted (object, field, new value), hex sha256.

    The same values from a later download give the same fingerprint, whatever the source's
    row numbers or dates; any new value (including its uncertainties or limits) gives
    another. New planets count as (planet, "planet", all their values).
    """
    items: list[list[str]] = [
        [c.object, c.field, _canonical(c.new.fields())]
        for c in proposal.changes
        if c.field not in _NOT_PROPOSED
    ]
    for planet in proposal.new_planets:
        values = {
            group: {k: v.fields() for k, v in getattr(planet, group).items()}
            for group in ("planet", "star", "system")
        }
        items.append([planet.name, "planet", _canonical(values)])
    payload = _canonical({"file": proposal.file, "changes": sorted(items)})
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def _canonical(value: object) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


@dataclass(frozen=True)
class StoredPull:
    number: int
    branch: str
    fingerprint: str
    state: PullState
    head_sha: str
    url: str
    branch_deleted: bool


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


class PrStore:
    """The publisher's SQLite database; one instance per process, not shared across threads."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        # WAL + NORMAL survives a process crash; a power cut may lose the last transaction,
        # which the next run re-learns from GitHub.
        self._db.execute("PRAGMA synchronous=NORMAL")
        # executescript commits on its own; every statement of the schema is idempotent.
        self._db.executescript(_SCHEMA)
        with self.transaction():
            self._db.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)",
                (str(SCHEMA_VERSION),),
            )

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # -- pull requests ---------------------------------------------------------------------

    def _pulls(self, where: str, args: tuple[object, ...] = ()) -> list[StoredPull]:
        rows = self._db.execute(
            "SELECT number, branch, fingerprint, state, head_sha, url, branch_deleted "
            f"FROM pulls WHERE {where} ORDER BY number",
            args,
        ).fetchall()
        return [StoredPull(n, b, f, PullState(s), h, u, bool(d)) for n, b, f, s, h, u, d in rows]

    def open_pulls(self) -> list[StoredPull]:
        return self._pulls("state = 'open'")

    def pull(self, number: int) -> StoredPull | None:
        found = self._pulls("number = ?", (number,))
        return found[0] if found else None

    def branches_to_delete(self) -> list[StoredPull]:
        """Merged or closed pull requests whose branch may still be on the fork."""
        return self._pulls("state != 'open' AND branch_deleted = 0")

    def rejected(self, branch: str, fingerprint: str) -> bool:
        """A maintainer closed a pull request with exactly this change set unmerged."""
        row = self._db.execute(
            "SELECT 1 FROM pulls WHERE branch = ? AND fingerprint = ? AND state = 'closed'",
            (branch, fingerprint),
        ).fetchone()
        return row is not None

    def rejected_set(self) -> set[tuple[str, str]]:
        rows = self._db.execute("SELECT branch, fingerprint FROM pulls WHERE state = 'closed'")
        return {(b, f) for b, f in rows}

    def record_open(
        self, number: int, branch: str, fingerprint: str, head_sha: str, url: str
    ) -> None:
        """A pull request we opened, updated or adopted; it is open now."""
        now = _now()
        self._db.execute(
            "INSERT INTO pulls (number, branch, fingerprint, state, head_sha, url, opened_at,"
            " updated_at) VALUES (?, ?, ?, 'open', ?, ?, ?, ?)"
            " ON CONFLICT (number) DO UPDATE SET branch = excluded.branch,"
            " fingerprint = excluded.fingerprint, state = 'open', head_sha = excluded.head_sha,"
            " url = excluded.url, updated_at = excluded.updated_at, closed_at = NULL,"
            " branch_deleted = 0",
            (number, branch, fingerprint, head_sha, url, now, now),
        )

    def record_closed(
        self, number: int, branch: str, fingerprint: str, merged: bool, head_sha: str, url: str
    ) -> None:
        now = _now()
        state = PullState.MERGED if merged else PullState.CLOSED
        self._db.execute(
            "INSERT INTO pulls (number, branch, fingerprint, state, head_sha, url, opened_at,"
            " updated_at, closed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (number) DO UPDATE SET state = excluded.state,"
            " head_sha = CASE WHEN excluded.head_sha = '' THEN pulls.head_sha"
            " ELSE excluded.head_sha END,"
            " updated_at = excluded.updated_at, closed_at = excluded.closed_at",
            (number, branch, fingerprint, state.value, head_sha, url, now, now, now),
        )

    def mark_branch_deleted(self, numbers: Iterable[int]) -> None:
        self._db.executemany(
            "UPDATE pulls SET branch_deleted = 1 WHERE number = ?", [(n,) for n in numbers]
        )

    # -- the queue -------------------------------------------------------------------------

    def queue_order(self) -> dict[str, int]:
        """branch -> the number of the run that first held it back (smaller waited longer)."""
        return dict(self._db.execute("SELECT branch, run FROM queue"))

    def enqueue(self, branches: Iterable[str]) -> None:
        """Remember ``branches`` as waiting; a branch already waiting keeps its place."""
        (run,) = self._db.execute("SELECT COALESCE(MAX(run), 0) + 1 FROM queue").fetchone()
        now = _now()
        self._db.executemany(
            "INSERT OR IGNORE INTO queue (branch, run, first_seen) VALUES (?, ?, ?)",
            [(b, run, now) for b in branches],
        )

    def dequeue(self, branches: Iterable[str]) -> None:
        self._db.executemany("DELETE FROM queue WHERE branch = ?", [(b,) for b in branches])
