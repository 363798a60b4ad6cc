"""Indexer: one catalogue download in; run.planned and the planets, a planets.matched for
every :data:`~common.messages.PLANETS_PER_MESSAGE` of them, out."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable

from pydantic import BaseModel, PrivateAttr

from common import matching
from common.catalogues import read_source
from common.errors import NotACatalogueError
from common.matching import Match, MatchKind
from common.memo import (
    Forgetful,
    Store,
    digest,
    merge_inputs,
    merge_unit,
    record_digest,
    remembered_summary,
    text_digest,
)
from common.messages import (
    PLANETS_PER_MESSAGE,
    CatalogueCounts,
    CatalogueDownloaded,
    CatalogueFailed,
    Message,
    PlanetMatched,
    PlanetOutcomes,
    PlanetRemembered,
    PlanetsMatched,
    RunPlanned,
)
from common.oec.index import AliasIndex
from common.records import Catalogue, PlanetRecord, Source


class MatchedCatalogue(BaseModel):
    """A download read and every record matched: what the memo keeps of a catalogue.

    The records stay JSON text (``records``; ``catalogue.records`` is left empty) until a
    row has to be merged: decoding all 11,739 costs an unchanged run 1 s, and such a run
    merges none. A record's digest is that of its text (:func:`common.memo.text_digest`, the
    same as :func:`common.memo.record_digest` of the record).
    """

    catalogue: Catalogue
    records: list[str] = []
    rows: list[int]
    matches: list[Match]
    _read: dict[int, PlanetRecord] = PrivateAttr(default_factory=dict)  # read this run

    def record(self, i: int) -> PlanetRecord:
        read = self._read.get(i)
        return read if read is not None else PlanetRecord.model_validate_json(self.records[i])

    # Kept as the rest's JSON, then one record per line: inside the JSON every record's
    # quotes would be escaped, which cost a cold run 0.3 s to write and 0.1 s to read.
    def value(self) -> bytes:
        return "\n".join([self.model_dump_json(exclude={"records"}), *self.records]).encode()

    @classmethod
    def from_value(cls, value: bytes) -> MatchedCatalogue:
        head, *records = value.decode().split("\n")
        matched = cls.model_validate_json(head)
        matched.records = records
        return matched


def known_rows_value(by_key: dict[str, str]) -> bytes:
    """The records of a catalogue's download by row key (Catalogue.row_keys), as the memo
    keeps them: a line per row, its key, a space and its record's JSON (which holds no
    newline)."""
    return "\n".join(f"{key} {text}" for key, text in by_key.items()).encode()


def known_rows(value: bytes) -> dict[str, str]:
    """What :func:`known_rows_value` wrote."""
    return dict(line.split(" ", 1) for line in value.decode().split("\n") if line)


# The memo's key for the rows of a catalogue's last download: the readers' code (CODE_VERSION).
ROWS_KEY = digest("rows")

Read = tuple[Catalogue, dict[str, str]]  # a download read, and the last one's rows by key


def read_download(message: CatalogueDownloaded, memo: Store) -> Read:
    """The download read, and the records of the last download by row key (in ``memo``): a
    new download's rows that repeat them are not read again (reading both catalogues costs
    1.5 s)."""
    stored = memo.get("rows", message.source.value, ROWS_KEY)
    known = known_rows(stored) if stored else {}
    catalogue = read_source(
        message.content(),
        message.url,
        message.source,
        message.fetched_at.date(),
        known.keys(),
    )
    return catalogue, known


class KnownMatches(BaseModel):
    """The matches of a catalogue's last download, by record digest: a new download's rows
    that repeat it are not matched again (matching both catalogues costs 0.6 s)."""

    by_digest: dict[str, Match]


def matches_of(index: AliasIndex, records: Iterable[PlanetRecord]) -> bytes:
    """The records matched against ``index``, as :class:`KnownMatches` JSON: what
    :meth:`IndexerHandler.matched` finds for them, worked out in another process."""
    by_digest = {record_digest(r): matching.match(index, r) for r in records}
    return KnownMatches(by_digest=by_digest).model_dump_json().encode()


class IndexerHandler:
    """Reads a download, matches its records against ``index`` and sends each planet to a
    merger, or, with ``merges`` (the store the mergers remember in, when this process
    shares it: the embedded run), a planet.remembered (in a planet.outcomes) for a planet
    merged before from the same inputs. ``read`` holds downloads read beforehand
    (:func:`read_download`), by message id; ``matched_ahead``, by message id, what
    :func:`matches_of` answered for a download's records in another process (None if
    nothing was matched there)."""

    def __init__(
        self,
        index: AliasIndex,
        memo: Store | None = None,
        merges: Store | None = None,
        read: dict[str, Read] | None = None,
        matched_ahead: Callable[[str], bytes | None] | None = None,
    ) -> None:
        self.index = index
        self.memo = memo or Forgetful()
        self.merges = merges
        self.read = read or {}
        self.matched_ahead = matched_ahead

    def matched(self, message: CatalogueDownloaded) -> MatchedCatalogue:
        """The download read and matched, or what an earlier run read and matched from the
        same bytes against an index that matches the same way."""
        # Taken out whether or not it is needed: a read the memo makes useless is not held
        # for the rest of the run.
        before = self.read.pop(message.message_id, None)
        # Only NASA's TAP downloads are dated by the day they were fetched.
        fetched = message.fetched_at.date().isoformat() if message.source is Source.NASA else ""
        key = digest(
            message.sha256,
            message.source.value,
            message.url,
            fetched,
            self.index.matching_digest(),
        )
        unit = message.source.value
        if (stored := self.memo.get("catalogue", unit, key)) is not None:
            return MatchedCatalogue.from_value(stored)
        catalogue, known = before if before is not None else read_download(message, self.memo)
        read = {r.row: r for r in catalogue.records}
        texts: list[str] = []
        keys: list[str] = []
        lines: list[int] = []
        decoded: dict[int, PlanetRecord] = {}
        for line, row_key in catalogue.row_keys.items():  # in the reader's order
            record = read.get(line)
            if record is not None:
                decoded[len(texts)] = record
                texts.append(record.model_dump_json())
            elif row_key in known:
                texts.append(known[row_key])
            else:
                continue  # rejected
            keys.append(row_key)
            lines.append(line)
        digests = [text_digest(t) for t in texts]
        known_key = digest(self.index.matching_digest())
        stored = self.memo.get("matches", unit, known_key)
        known_matches = KnownMatches.model_validate_json(stored).by_digest if stored else {}
        if self.matched_ahead is not None and (ahead := self.matched_ahead(message.message_id)):
            known_matches.update(KnownMatches.model_validate_json(ahead).by_digest)
        result = MatchedCatalogue(
            catalogue=catalogue.model_copy(update={"records": [], "row_keys": {}}),
            records=texts,
            rows=lines,
            matches=[],
        )
        result._read = decoded
        result.matches = [
            m
            if (m := known_matches.get(d)) is not None
            else matching.match(self.index, result.record(i))
            for i, d in enumerate(digests)
        ]
        self.memo.put("catalogue", unit, key, result.value())
        self.memo.put("rows", unit, ROWS_KEY, known_rows_value(dict(zip(keys, texts, strict=True))))
        remembered = KnownMatches(by_digest=dict(zip(digests, result.matches, strict=True)))
        self.memo.put("matches", unit, known_key, remembered.model_dump_json().encode())
        return result

    def __call__(self, message: Message) -> list[Message]:
        assert isinstance(message, CatalogueDownloaded)
        run_id = message.run_id
        try:
            # Read as the catalogue it was given as: a NASA table sent as exoplanet.eu is
            # refused here, not read as NASA under exoplanet.eu's run.planned (whose planets
            # would then never arrive, and the run would never complete).
            matched = self.matched(message)
        except NotACatalogueError as exc:
            return [
                CatalogueFailed(
                    run_id=run_id, source=message.source, url=message.url, error=str(exc)
                )
            ]
        kinds: Counter[MatchKind] = Counter()
        ambiguous: list[str] = []
        source, matches = message.source, matched.matches
        # A file's text is named by its git id: read only for the planets merged again.
        no_text = text_digest(None)
        remembered: list[PlanetRemembered] = []
        merging: list[tuple[int, str]] = []  # (row index, merge inputs) for the mergers
        for i, match in enumerate(matches):
            kinds[match.kind] += 1
            if match.kind is MatchKind.AMBIGUOUS:
                name = matched.record(i).name
                ambiguous.append(f"{name} (row {matched.rows[i]}): {'; '.join(match.candidates)}")
            inputs = merge_inputs(
                text_digest(matched.records[i]),
                match,
                self.index.blob(match.file) if match.file else no_text,
            )
            if self.merges is not None:
                unit = merge_unit(source, matched.rows[i])
                if (stored := self.merges.get("merge", unit, digest(inputs))) is not None:
                    remembered.append(remembered_summary(stored, run_id, self.index.commit))
                    continue
            merging.append((i, inputs))
        texts = self.index.system_texts(sorted({f for i, _ in merging if (f := matches[i].file)}))
        planets = [
            PlanetMatched(
                run_id=run_id,
                record=matched.record(i),
                match=matches[i],
                commit=self.index.commit,
                system_text=texts[file] if (file := matches[i].file) else None,
                inputs=inputs,
            )
            for i, inputs in merging
        ]
        catalogue = matched.catalogue
        counts = CatalogueCounts(
            rows=catalogue.rows,
            records=len(matched.records),
            skipped_status=catalogue.skipped_status,
            rejected=len(catalogue.rejected),
            matched=kinds[MatchKind.PLANET],
            ambiguous=kinds[MatchKind.AMBIGUOUS],
        )
        planned = RunPlanned(
            run_id=run_id,
            source=message.source,
            catalogue=message.url,
            commit=self.index.commit,
            planets=len(matches),
            counts=counts,
            rejected=catalogue.rejected,
            ambiguous=ambiguous,
        )
        step = PLANETS_PER_MESSAGE
        return [
            planned,
            *(
                PlanetsMatched(run_id=run_id, planets=planets[i : i + step])
                for i in range(0, len(planets), step)
            ),
            *(
                PlanetOutcomes.of(run_id, remembered[i : i + step])
                for i in range(0, len(remembered), step)
            ),
        ]
