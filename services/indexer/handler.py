"""Indexer: one catalogue download in, one planet.matched per planet and run.planned out."""

from __future__ import annotations

from collections import Counter

from pydantic import BaseModel

from common import matching
from common.catalogues import read_source
from common.errors import NotACatalogueError
from common.matching import Match, MatchKind
from common.memo import (
    Forgetful,
    Store,
    digest,
    merge_inputs,
    record_digest,
    text_digest,
)
from common.messages import (
    CatalogueCounts,
    CatalogueDownloaded,
    CatalogueFailed,
    Message,
    PlanetMatched,
    RunPlanned,
)
from common.oec.index import AliasIndex
from common.records import Catalogue, Source


class MatchedCatalogue(BaseModel):
    """A download read and every record matched: what the memo keeps of a catalogue."""

    catalogue: Catalogue
    matches: list[Match]
    digests: list[str]  # of each record's JSON, for the merges' keys


class KnownMatches(BaseModel):
    """The matches of a catalogue's last download, by record digest: a new download's rows
    that repeat it are not matched again (matching both catalogues costs 0.6 s)."""

    by_digest: dict[str, Match]


class IndexerHandler:
    def __init__(self, index: AliasIndex, memo: Store | None = None) -> None:
        self.index = index
        self.memo = memo or Forgetful()

    def matched(self, message: CatalogueDownloaded) -> MatchedCatalogue:
        """The download read and matched, or what an earlier run read and matched from the
        same bytes against an index that matches the same way."""
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
            return MatchedCatalogue.model_validate_json(stored)
        catalogue = read_source(
            message.content(), message.url, message.source, message.fetched_at.date()
        )
        digests = [record_digest(r) for r in catalogue.records]
        known_key = digest(self.index.matching_digest())
        stored = self.memo.get("matches", unit, known_key)
        known = KnownMatches.model_validate_json(stored).by_digest if stored else {}
        matches = [
            m if (m := known.get(d)) is not None else matching.match(self.index, r)
            for r, d in zip(catalogue.records, digests, strict=True)
        ]
        result = MatchedCatalogue(catalogue=catalogue, matches=matches, digests=digests)
        self.memo.put("catalogue", unit, key, result.model_dump_json().encode())
        remembered = KnownMatches(by_digest=dict(zip(digests, matches, strict=True)))
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
        outputs: list[Message] = []
        kinds: Counter[MatchKind] = Counter()
        ambiguous: list[str] = []
        catalogue, matches = matched.catalogue, matched.matches
        texts = self.index.system_texts(sorted({m.file for m in matches if m.file}))
        text_digests = {f: text_digest(t) for f, t in texts.items()}
        no_text = text_digest(None)
        for record, match, digested in zip(
            catalogue.records, matches, matched.digests, strict=True
        ):
            kinds[match.kind] += 1
            if match.kind is MatchKind.AMBIGUOUS:
                ambiguous.append(f"{record.name} (row {record.row}): {'; '.join(match.candidates)}")
            text = texts[match.file] if match.file else None
            outputs.append(
                PlanetMatched(
                    run_id=run_id,
                    record=record,
                    match=match,
                    commit=self.index.commit,
                    system_text=text,
                    inputs=merge_inputs(
                        digested,
                        match,
                        text_digests[match.file] if match.file else no_text,
                    ),
                )
            )
        counts = CatalogueCounts(
            rows=catalogue.rows,
            records=len(catalogue.records),
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
            planets=len(outputs),
            counts=counts,
            rejected=catalogue.rejected,
            ambiguous=ambiguous,
        )
        return [planned, *outputs]
