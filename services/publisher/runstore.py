"""The publisher's runs, durable in SQLite, so a restart (or a redelivery) loses nothing.

``RunStore`` keeps, per run, every input the publisher took (run.started, run.planned,
catalogue.failed and each planet outcome, keyed by message id) and the result of its last
publication; ``services/publisher/durable.py`` is the handler that records into it.

A run's state::

    collecting ──every planet accounted for, branches written──▶ complete   (final)
        │                                                           ▲
        └──run_timeout without news──▶ incomplete ──late outcomes───┘
                                       (published what it had; a later timeout publishes again)

A complete run ignores everything that arrives for it (redeliveries, replays), except a
run.planned for a catalogue it recorded as failed, or the outcome of a planet it recorded as
failed: a replay after a fix (``oec-sync dead-letters replay``) reopens the run, which is
then published again with the catalogue or planet in it.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

from common.changes import Conflict
from common.messages import (
    Message,
    RoutingKey,
    decode,
)
from common.proposals import Refusal
from services.publisher.handler import RunState
from services.publisher.model import Published

log = logging.getLogger(__name__)

MEMORY_RUNS = 8  # finished runs kept in memory besides the unfinished ones

Announce = Callable[[list[Message]], None]
"""Publishes run.completed (confirmed by the broker) or raises."""

_published = TypeAdapter(list[Published])
_refusals = TypeAdapter(list[Refusal])
_conflicts = TypeAdapter(list[Conflict])

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id        TEXT PRIMARY KEY,
    state         TEXT NOT NULL,
    first_seen    REAL NOT NULL,
    last_activity REAL NOT NULL,
    finished_at   REAL,
    published     TEXT,
    refusals      TEXT,
    conflicts     TEXT,
    systems       TEXT
);
CREATE TABLE IF NOT EXISTS inputs (
    run_id      TEXT NOT NULL,
    message_id  TEXT NOT NULL,
    routing_key TEXT NOT NULL,
    source      TEXT,
    body        TEXT NOT NULL,
    received_at REAL NOT NULL,
    PRIMARY KEY (run_id, message_id)
);
-- What /runs counts per catalogue, without reading the bodies: 45 ms a call on a run of
-- 11,739 outcomes otherwise, under the lock the thread that records them needs.
CREATE INDEX IF NOT EXISTS inputs_by_kind ON inputs (run_id, routing_key, source);
"""


class RunPhase(StrEnum):
    COLLECTING = "collecting"
    COMPLETE = "complete"
    INCOMPLETE = "incomplete"


class RunStore:
    """SQLite under DATA_DIR; one connection, serialised by a lock (the API reads it too)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._pending: list[tuple[str, str, str, str | None, str, float]] = []  # not committed
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        # WAL + synchronous=NORMAL: a committed input survives a crash of the process (what a
        # SIGKILL'd pod is); only a power cut may lose the last ones, which the broker
        # redelivers because their acks had not been sent.
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(runs)")}
        if "conflicts" not in columns:  # a store written before conflicts were kept
            self._db.execute("ALTER TABLE runs ADD COLUMN conflicts TEXT")
        if "systems" not in columns:  # a store written before the counts were kept apart
            self._db.execute("ALTER TABLE runs ADD COLUMN systems TEXT")

    def close(self) -> None:
        with self._lock:
            self._flush()
            self._db.close()

    def add(self, message: Message, now: float | None = None) -> None:
        """Record an input, durable once :meth:`flush` returns (a repeated message id is
        recorded once). The bus acknowledges a delivery only after that flush, so a crash
        before it loses nothing: the broker delivers the input again."""
        now = now or time.time()
        source = getattr(message, "source", None)
        row = (
            message.run_id,
            message.message_id,
            message.routing_key.value,
            str(source) if source is not None else None,
            message.model_dump_json(),
            now,
        )
        with self._lock:
            self._pending.append(row)

    def flush(self) -> None:
        """Commit every input added so far, in one transaction: a commit per input costs the
        publisher service a third of its time while outcomes arrive (SQLite lets go of the
        GIL three times per input, and each time the other threads keep it for a while)."""
        with self._lock:
            self._flush()

    def _flush(self) -> None:
        """:meth:`flush` with the lock held; every other use of the database calls it first,
        so what it reads includes every input added."""
        if not self._pending:
            return
        rows, self._pending = self._pending, []
        activity: dict[str, tuple[float, float]] = {}
        for run_id, *_, now in rows:
            first, last = activity.get(run_id, (now, now))
            activity[run_id] = (min(first, now), max(last, now))
        runs = [(run_id, RunPhase.COLLECTING.value, *times) for run_id, times in activity.items()]
        # The connection commits each statement on its own (isolation_level=None) unless a
        # transaction is begun: one commit for them all is the point.
        self._db.execute("BEGIN")
        try:
            self._db.executemany(
                "INSERT INTO runs (run_id, state, first_seen, last_activity) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (run_id) DO UPDATE SET last_activity = excluded.last_activity",
                runs,
            )
            self._db.executemany("INSERT OR IGNORE INTO inputs VALUES (?, ?, ?, ?, ?, ?)", rows)
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    def finished(self, state: RunState, phase: RunPhase, now: float | None = None) -> None:
        with self._lock, self._db:
            self._flush()
            self._db.execute(
                "UPDATE runs SET state = ?, finished_at = ?, published = ?, refusals = ?,"
                " conflicts = ?, systems = ? WHERE run_id = ?",
                (
                    phase.value,
                    now or time.time(),
                    _published.dump_json(state.published).decode(),
                    _refusals.dump_json(state.refusals).decode(),
                    _conflicts.dump_json(state.conflicts).decode(),
                    json.dumps(Counter(p.state.value for p in state.published)),
                    state.run_id,
                ),
            )

    def reopen(self, run_id: str, source: str) -> None:
        """Forget a catalogue's failure: it is being processed after all."""
        with self._lock, self._db:
            self._flush()
            self._db.execute(
                "DELETE FROM inputs WHERE run_id = ? AND routing_key = ? AND source = ?",
                (run_id, RoutingKey.CATALOGUE_FAILED.value, source),
            )
            self._db.execute(
                "UPDATE runs SET state = ? WHERE run_id = ?", (RunPhase.COLLECTING.value, run_id)
            )

    def forget_failure(self, run_id: str, message_id: str) -> None:
        """Forget a planet's failure: it succeeded after all. A complete run is collecting
        again (to be published with the planet)."""
        with self._lock, self._db:
            self._flush()
            self._db.execute(
                "DELETE FROM inputs WHERE run_id = ? AND message_id = ?", (run_id, message_id)
            )
            self._db.execute(
                "UPDATE runs SET state = ? WHERE run_id = ? AND state = ?",
                (RunPhase.COLLECTING.value, run_id, RunPhase.COMPLETE.value),
            )

    def phase(self, run_id: str) -> RunPhase | None:
        with self._lock:
            self._flush()
            row = self._db.execute("SELECT state FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        return RunPhase(row[0]) if row else None

    def load(self, run_id: str) -> RunState | None:
        """The run as it stands, rebuilt from its inputs and its last publication."""
        with self._lock:
            self._flush()
            run = self._db.execute(
                "SELECT state, published, refusals, conflicts FROM runs WHERE run_id = ?",
                (run_id,),
            ).fetchone()
            if run is None:
                return None
            inputs = self._db.execute(
                "SELECT routing_key, body FROM inputs WHERE run_id = ? ORDER BY rowid", (run_id,)
            ).fetchall()
        state = RunState(run_id=run_id)
        for routing_key, body in inputs:
            state.record(decode(routing_key, body.encode()))
        if run[1]:
            state.published = _published.validate_json(run[1])
        if run[2]:
            state.refusals = _refusals.validate_json(run[2])
        if run[3]:
            state.conflicts = _conflicts.validate_json(run[3])
        state.completed = run[0] == RunPhase.COMPLETE.value
        return state

    def unfinished(self) -> list[tuple[str, float, float | None]]:
        """(run id, last activity, last publication) of every run not complete."""
        with self._lock:
            self._flush()
            rows = self._db.execute(
                "SELECT run_id, last_activity, finished_at FROM runs WHERE state != ?",
                (RunPhase.COMPLETE.value,),
            ).fetchall()
        return [(r[0], float(r[1]), r[2]) for r in rows]

    def summaries(self, limit: int = 20, run_id: str | None = None) -> list[dict[str, Any]]:
        """Newest runs first: state, times, and how far each catalogue has come."""
        with self._lock:
            self._flush()
            where, args = ("WHERE run_id = ?", (run_id,)) if run_id else ("", ())
            runs = self._db.execute(
                # A run's publication holds every proposal (43 MB for a first run): /runs
                # reads only its counts, unless the store is older than them.
                "SELECT run_id, state, first_seen, last_activity, finished_at,"
                f" coalesce(systems, published) FROM runs {where}"
                " ORDER BY first_seen DESC LIMIT ?",
                (*args, limit),
            ).fetchall()
            summaries = []
            for rid, state, first, last, finished, systems in runs:
                counts = self._db.execute(
                    "SELECT routing_key, source, count(*), NULL FROM inputs WHERE run_id = ?"
                    " AND routing_key NOT IN (?, ?, ?) GROUP BY routing_key, source",
                    (rid, *_RUN_KEYS),
                ).fetchall()
                bodies = self._db.execute(
                    "SELECT routing_key, source, 1, body FROM inputs WHERE run_id = ?"
                    " AND routing_key IN (?, ?, ?)",
                    (rid, *_RUN_KEYS),
                ).fetchall()
                rows = [*bodies, *counts]
                summaries.append(_summary(rid, state, first, last, finished, systems, rows))
        return summaries


_RUN_KEYS = (RoutingKey.RUN_STARTED, RoutingKey.RUN_PLANNED, RoutingKey.CATALOGUE_FAILED)


def _iso(timestamp: float | None) -> str | None:
    return (
        None if timestamp is None else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(timestamp))
    )


def _summary(
    run_id: str,
    state: str,
    first: float,
    last: float,
    finished: float | None,
    systems: str | None,
    rows: list[tuple[str, str | None, int, str | None]],
) -> dict[str, Any]:
    catalogues: list[str] | None = None
    per_source: dict[str, dict[str, Any]] = {}
    for routing_key, source, count, body in rows:
        if routing_key == RoutingKey.RUN_STARTED and body:
            catalogues = json.loads(body)["catalogues"]
            continue
        entry = per_source.setdefault(source or "?", {"planned": None, "outcomes": 0})
        if routing_key == RoutingKey.RUN_PLANNED and body:
            entry["planned"] = json.loads(body)["planets"]
        elif routing_key == RoutingKey.CATALOGUE_FAILED and body:
            entry["failed"] = json.loads(body)["error"]
        else:
            entry["outcomes"] += count
            entry[routing_key] = count
    counts = json.loads(systems) if systems else {}
    if isinstance(counts, list):  # the publication itself, from a store older than the counts
        counts = Counter(item["state"] for item in counts)
    failed = sum(entry.get(RoutingKey.PLANET_FAILED.value, 0) for entry in per_source.values())
    return {
        "run_id": run_id,
        "state": state,
        "failed_planets": failed,
        "first_seen": _iso(first),
        "last_activity": _iso(last),
        "published_at": _iso(finished),
        "catalogues": catalogues,
        "progress": per_source,
        "systems": dict(counts),
    }
