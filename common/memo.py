"""What a run computed, remembered by what it was computed from, so that the next run redoes
only what changed.

Eight kinds of entry, each keyed by every input of the step it saves (a digest of them):

``catalogue``  a download read and matched: its bytes, source, name and date, the index's
               matching content (not its commit, so a commit that edits values only keeps
               it) -> the catalogue's records (as JSON text, decoded only for rows that
               are merged) and their matches
``rows``       a catalogue's records by row key (what the reader reads a record from: the
               file's name and date, the line, the header, the cells): the rows of a new
               download that repeat the last one are not read again (common/catalogues)
``matches``    a catalogue's matches by record digest, against an index's matching content:
               the rows of a new download that repeat the last one are not matched again
               (services/indexer/handler.py)
``merge``      one planet merged: its record, its match and its file's text (by git id)
               (:func:`merge_inputs`) -> the merger's outcome message, after the
               planet.remembered that summarises it (:func:`outcome_value`). Looked up by
               the merger, and in the embedded run by the indexer first, which then sends
               the summary instead: the record is never decoded, the outcome only if needed
``build``      one file's proposal: its text (by git id) and the merges that patched it
               -> the proposal or refusal and the file's conflicts
               (and one new host's file: its records -> the proposal or refusal)
``tip``        a branch's tip commit and file -> the file's blob there (a fact of git's, kept
               so that an unchanged run need not look up 4,330 paths; common/gitrepo.py)
``constellation``  a new system's RA/Dec text and astropy's version -> its constellation
               (so that a run whose new systems did not move imports no astropy: 0.5 s)
``draft``      a PR draft file of the outbox and the digest of its content -> its size and
               modification time when it held that content (services/publisher/local.py)

Every key but those of facts (a tip, a constellation, a draft) also holds
:data:`CODE_VERSION`, a digest of the code that computes outcomes (``common/`` and the
indexer's and merger's handlers), so a change of rules, readers or PR text invalidates every
entry without anybody remembering to bump a number. One entry is kept per unit (the
download's source, the planet's row, the file), the newest, so the store stays the size of
one run. Values are the JSON of the pydantic models they hold (a tip's: an object id; a
constellation's: its name; a draft's: two numbers): loading them validates them, and nothing
in the store can run code. The store itself is runtime/memo.py (SQLite).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Protocol

from common.matching import Match
from common.messages import (
    PatchSummary,
    PlanetOutcome,
    PlanetRemembered,
    PlanetUnchanged,
    SystemChanged,
    restamped,
)
from common.records import PlanetRecord, Source

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


def digest(*parts: str | bytes) -> str:
    """A key from its parts, each length-prefixed so that no two part lists collide."""
    hashed = hashlib.sha256(CODE_VERSION.encode())
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        hashed.update(len(data).to_bytes(8, "big"))
        hashed.update(data)
    return hashed.hexdigest()


def record_digest(record: PlanetRecord) -> str:
    return hashlib.sha256(record.model_dump_json().encode()).hexdigest()


def text_digest(text: str | None) -> str:
    return hashlib.sha256((text or "").encode()).hexdigest()


def merge_inputs(record: str, match: Match, text: str) -> str:
    """Everything a merge reads but the commit, from the digest of its record and a name of
    its file's text (the indexer gives git's blob id; :func:`text_digest` where a message
    carries no inputs): a commit that leaves the text as it was leaves the outcome as it
    was, apart from the base commit it names."""
    return digest(record, match.model_dump_json(), text)


def merge_unit(source: Source, row: int) -> str:
    """The unit of a planet's merge: its catalogue row."""
    return f"{source.value}:{row}"


def outcome_value(outcome: SystemChanged | PlanetUnchanged) -> bytes:
    """A merge's outcome as the memo keeps it: the JSON of its :class:`PlanetRemembered`
    (what a run that does not build the planet's file again reads), then the outcome's own
    JSON, the first's length before both."""
    patch = outcome.patch
    summary = PlanetRemembered(
        run_id="",
        source=outcome.source,
        row=outcome.row,
        planet=outcome.planet,
        match_kind=outcome.match_kind,
        changed=isinstance(outcome, SystemChanged),
        patch=None
        if patch is None
        else PatchSummary(
            file=patch.file,
            inputs=patch.inputs,
            empty=patch.is_empty,
            new_system=bool(patch.new_system),
        ),
    )
    head = summary.model_dump_json(exclude={"message_id", "produced_at"}).encode()
    return len(head).to_bytes(4, "big") + head + outcome.model_dump_json().encode()


def remembered_summary(value: bytes, run_id: str, commit: str) -> PlanetRemembered:
    """The planet.remembered of an outcome the memo kept (:func:`outcome_value`), this run's."""
    size = int.from_bytes(value[:4], "big")
    summary = PlanetRemembered.model_validate_json(value[4 : 4 + size])
    summary.outcome_json = value[4 + size :].decode()
    summary.commit = commit
    return restamped(summary, run_id, commit)


def remembered_outcome(value: bytes, run_id: str, commit: str) -> PlanetOutcome:
    """The outcome the memo kept (:func:`outcome_value`), made this run's."""
    return remembered_summary(value, run_id, commit).outcome()


class Store(Protocol):
    """Where remembered values are kept (runtime.memo.Memo)."""

    def get(self, kind: str, unit: str, key: str) -> bytes | None:
        """The value remembered for ``unit`` if it was computed from ``key``."""
        ...

    def holds(self, kind: str, unit: str, key: str) -> bool:
        """Whether :meth:`get` would answer."""
        ...

    def put(self, kind: str, unit: str, key: str, value: bytes) -> None:
        """Remember ``value`` for ``unit``, replacing what it had."""
        ...

    def save(self) -> None:
        """Keep what was remembered so far."""
        ...


class Forgetful:
    """A store that remembers nothing: every step is computed."""

    def get(self, kind: str, unit: str, key: str) -> bytes | None:
        return None

    def holds(self, kind: str, unit: str, key: str) -> bool:
        return False

    def put(self, kind: str, unit: str, key: str, value: bytes) -> None:
        return None

    def save(self) -> None:
        return None
