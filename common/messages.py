"""Every event on the bus, versioned, with deterministic ids.

JSON on the wire. ``message_id`` is derived from the content that makes a message what it
is (run, catalogue, row ...), never from the clock, so a redelivery or a replay carries the
same id and consumers can recognise it.
"""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import hashlib
from collections.abc import Iterable
from enum import StrEnum
from typing import ClassVar, TypeVar

from pydantic import BaseModel, Field, PrivateAttr, field_serializer

from common.changes import SystemPatch
from common.matching import Match, MatchKind
from common.records import PlanetRecord, RejectedRow, Source

SCHEMA_VERSION = 1


class RoutingKey(StrEnum):
    RUN_STARTED = "run.started"
    CATALOGUE_DOWNLOADED = "catalogue.downloaded"
    CATALOGUE_FAILED = "catalogue.failed"
    RUN_PLANNED = "run.planned"
    PLANET_MATCHED = "planet.matched"
    PLANETS_MATCHED = "planets.matched"
    PLANET_FAILED = "planet.failed"
    SYSTEM_CHANGED = "system.changed"
    PLANET_UNCHANGED = "planet.unchanged"
    PLANET_REMEMBERED = "planet.remembered"
    PLANET_OUTCOMES = "planet.outcomes"
    RUN_COMPLETED = "run.completed"


def stable_id(*parts: object) -> str:
    """A short hash of the parts: the same parts always give the same id."""
    return hashlib.sha256("\x1f".join(map(str, parts)).encode()).hexdigest()[:32]


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Message(BaseModel):
    routing_key: ClassVar[RoutingKey]

    schema_version: int = SCHEMA_VERSION
    message_id: str = ""
    run_id: str
    produced_at: dt.datetime = Field(default_factory=utcnow)

    def model_post_init(self, __context: object) -> None:
        if not self.message_id:
            self.message_id = stable_id(self.routing_key, self.run_id, *self.identity())

    def identity(self) -> tuple[object, ...]:
        """What makes this message unique within its run."""
        return ()


class RunStarted(Message):
    routing_key = RoutingKey.RUN_STARTED
    catalogues: list[Source]  # the catalogue events the publisher must wait for


class CatalogueDownloaded(Message):
    """One catalogue download; carries the bytes so a replay works without shared disks."""

    routing_key = RoutingKey.CATALOGUE_DOWNLOADED
    source: Source
    url: str
    sha256: str
    size: int
    fetched_at: dt.datetime
    # The bytes, gzipped, on the wire only: made when the message is serialised (the
    # embedded run hands the bytes on as they are; compressing both cost every run 0.08 s).
    content_gzip_b64: str
    _content: bytes | None = PrivateAttr(default=None)

    def identity(self) -> tuple[object, ...]:
        return (self.source, self.sha256)

    @classmethod
    def from_bytes(
        cls, run_id: str, source: Source, url: str, data: bytes, fetched_at: dt.datetime
    ) -> CatalogueDownloaded:
        message = cls(
            run_id=run_id,
            source=source,
            url=url,
            sha256=cls.digest(data),
            size=len(data),
            fetched_at=fetched_at,
            content_gzip_b64="",
        )
        message._content = data
        return message

    @field_serializer("content_gzip_b64")
    def _on_the_wire(self, packed: str) -> str:
        if packed or self._content is None:
            return packed
        # Level 1: a fifteenth of level 9's time (0.04 s for 3 MB), a quarter larger.
        return base64.b64encode(gzip.compress(self._content, compresslevel=1, mtime=0)).decode()

    @staticmethod
    def digest(data: bytes) -> str:
        return hashlib.sha256(data).hexdigest()

    def content(self) -> bytes:
        if self._content is None:
            self._content = gzip.decompress(base64.b64decode(self.content_gzip_b64))
        return self._content


class CatalogueFailed(Message):
    routing_key = RoutingKey.CATALOGUE_FAILED
    source: Source
    url: str
    error: str

    def identity(self) -> tuple[object, ...]:
        return (self.source, self.url)


class CatalogueCounts(BaseModel):
    rows: int = 0
    records: int = 0
    skipped_status: int = 0
    rejected: int = 0
    matched: int = 0
    new_planets: int = 0
    new_systems: int = 0
    ambiguous: int = 0
    unchanged: int = 0
    changed: int = 0
    failed: int = 0


class RunPlanned(Message):
    """The indexer's promise: this many planets follow for the catalogue (in planets.matched
    to the mergers, or answered for in planet.outcomes)."""

    routing_key = RoutingKey.RUN_PLANNED
    source: Source
    catalogue: str
    commit: str
    planets: int
    counts: CatalogueCounts
    rejected: list[RejectedRow] = []
    ambiguous: list[str] = []

    def identity(self) -> tuple[object, ...]:
        return (self.source,)


class PlanetMatched(Message):
    routing_key = RoutingKey.PLANET_MATCHED
    record: PlanetRecord
    match: Match
    commit: str
    system_text: str | None = None  # the matched file at `commit`, so mergers need no checkout
    # A digest of the record, its match and the file's text: all a merge reads but the commit.
    inputs: str = ""

    def identity(self) -> tuple[object, ...]:
        return (self.record.source, self.record.row, self.record.name)


class PlanetsMatched(Message):
    """Several planet.matched of one run in one delivery: the indexer sends planets to the
    mergers in groups (:data:`PLANETS_PER_MESSAGE`), since every message costs the broker and
    each consumer far more than merging one planet does (0.4 and 0.6 ms against 0.3 ms)."""

    routing_key = RoutingKey.PLANETS_MATCHED
    planets: list[PlanetMatched]

    def identity(self) -> tuple[object, ...]:
        return tuple(p.message_id for p in self.planets)


# Enough to make the per-message costs small beside the merges (~20 ms of merging per
# message), few enough that two mergers share a catalogue evenly (~230 messages a run).
PLANETS_PER_MESSAGE = 50


class PlanetOutcome(Message):
    source: Source
    row: int
    planet: str
    match_kind: MatchKind

    def identity(self) -> tuple[object, ...]:
        return (self.source, self.row, self.planet)


class SystemChanged(PlanetOutcome):
    routing_key = RoutingKey.SYSTEM_CHANGED
    patch: SystemPatch


class PlanetUnchanged(PlanetOutcome):
    routing_key = RoutingKey.PLANET_UNCHANGED
    reason: str = ""
    # No change, but what the row says of OEC's values and any conflicts it raised: the fold
    # needs both to judge the other catalogue's changes of the same system.
    patch: SystemPatch | None = None


class PatchSummary(BaseModel):
    """What the publisher needs of a patch until its file is built again: the file, the
    digest of the merge's inputs (the build's key), whether it changes anything."""

    file: str
    inputs: str
    empty: bool
    new_system: bool


class PlanetRemembered(PlanetOutcome):
    """A planet merged before from the same inputs, sent (in a planet.outcomes, never alone)
    instead of planet.matched by an indexer that shares the mergers' memo (the embedded run;
    common/memo.py): what the publisher counts and keys builds by, with the merger's outcome
    (system.changed when ``changed``, else planet.unchanged) as JSON, decoded only if the
    planet's file is built again or the outcome is reported (decoding all 11,739 cost an
    unchanged run 0.9 s)."""

    routing_key = RoutingKey.PLANET_REMEMBERED
    changed: bool
    patch: PatchSummary | None = None
    commit: str = ""  # the index commit of this run, the outcome's base commit
    outcome_json: str = ""

    def outcome(self) -> SystemChanged | PlanetUnchanged:
        """The merger's outcome, made this run's."""
        kind = SystemChanged if self.changed else PlanetUnchanged
        return restamped(kind.model_validate_json(self.outcome_json), self.run_id, self.commit)


_Outcome = TypeVar("_Outcome", bound=PlanetOutcome)


def restamped(outcome: _Outcome, run_id: str, commit: str) -> _Outcome:
    """An outcome computed in an earlier run, made this run's in place: its run id, message
    id and base commit (it was just decoded and is nobody else's; copies cost 0.3 s of an
    unchanged run)."""
    outcome.run_id = run_id
    outcome.message_id = ""
    patch = getattr(outcome, "patch", None)
    if isinstance(patch, SystemPatch):  # a planet.remembered's summary names no commit
        patch.base_commit = commit
    outcome.model_post_init(None)
    return outcome


class PlanetFailed(PlanetOutcome):
    routing_key = RoutingKey.PLANET_FAILED
    error: str


class PlanetOutcomes(Message):
    """Several planets' outcomes in one delivery: a merger's answer to a planets.matched,
    or what the embedded run's indexer answers for planets merged before. The publisher
    takes each as if it had come alone."""

    routing_key = RoutingKey.PLANET_OUTCOMES
    changed: list[SystemChanged] = Field(default_factory=list)
    unchanged: list[PlanetUnchanged] = Field(default_factory=list)
    remembered: list[PlanetRemembered] = Field(default_factory=list)
    failed: list[PlanetFailed] = Field(default_factory=list)

    @classmethod
    def of(cls, run_id: str, outcomes: Iterable[Message]) -> PlanetOutcomes:
        items = list(outcomes)
        batch = cls(
            run_id=run_id,
            changed=[o for o in items if isinstance(o, SystemChanged)],
            unchanged=[o for o in items if isinstance(o, PlanetUnchanged)],
            remembered=[o for o in items if isinstance(o, PlanetRemembered)],
            failed=[o for o in items if isinstance(o, PlanetFailed)],
        )
        if len(batch.outcomes()) != len(items):
            raise TypeError(f"not a planet's outcome: {sorted({type(o).__name__ for o in items})}")
        return batch

    def outcomes(self) -> list[PlanetOutcome]:
        return [*self.changed, *self.unchanged, *self.remembered, *self.failed]

    def identity(self) -> tuple[object, ...]:
        return tuple(o.message_id for o in self.outcomes())


class RunCompleted(Message):
    routing_key = RoutingKey.RUN_COMPLETED
    systems: int
    branches_written: int
    queued: int


MESSAGE_TYPES: dict[RoutingKey, type[Message]] = {
    m.routing_key: m
    for m in (
        RunStarted,
        CatalogueDownloaded,
        CatalogueFailed,
        RunPlanned,
        PlanetMatched,
        PlanetsMatched,
        SystemChanged,
        PlanetUnchanged,
        PlanetRemembered,
        PlanetFailed,
        PlanetOutcomes,
        RunCompleted,
    )
}


def failure_of(
    message: Message, error: str
) -> PlanetFailed | PlanetOutcomes | CatalogueFailed | None:
    """The event that accounts for ``message`` in its run when a service gives up on it: a
    planet.matched becomes planet.failed, a planets.matched the planet.failed of each
    planet, a catalogue.downloaded catalogue.failed. None for the rest: nothing waits for
    them to be counted."""
    if isinstance(message, PlanetsMatched):
        failures = [failure_of(planet, error) for planet in message.planets]
        return PlanetOutcomes.of(message.run_id, (f for f in failures if f is not None))
    if isinstance(message, PlanetMatched):
        record = message.record
        return PlanetFailed(
            run_id=message.run_id,
            source=record.source,
            row=record.row,
            planet=record.name,
            match_kind=message.match.kind,
            error=error,
        )
    if isinstance(message, CatalogueDownloaded):
        return CatalogueFailed(
            run_id=message.run_id, source=message.source, url=message.url, error=error
        )
    return None


def decode(routing_key: str, body: bytes) -> Message:
    """The typed message for a routing key and its JSON body."""
    return MESSAGE_TYPES[RoutingKey(routing_key)].model_validate_json(body)
