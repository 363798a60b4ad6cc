"""Indexer: one catalogue download in, one planet.matched per planet and run.planned out."""

from __future__ import annotations

from collections import Counter

from common import matching
from common.catalogues import read_source
from common.errors import NotACatalogueError
from common.matching import MatchKind
from common.messages import (
    CatalogueCounts,
    CatalogueDownloaded,
    CatalogueFailed,
    Message,
    PlanetMatched,
    RunPlanned,
)
from common.oec.index import AliasIndex


class IndexerHandler:
    def __init__(self, index: AliasIndex) -> None:
        self.index = index

    def __call__(self, message: Message) -> list[Message]:
        assert isinstance(message, CatalogueDownloaded)
        run_id = message.run_id
        try:
            # Read as the catalogue it was given as: a NASA table sent as exoplanet.eu is
            # refused here, not read as NASA under exoplanet.eu's run.planned (whose planets
            # would then never arrive, and the run would never complete).
            catalogue = read_source(
                message.content(), message.url, message.source, message.fetched_at.date()
            )
        except NotACatalogueError as exc:
            return [
                CatalogueFailed(
                    run_id=run_id, source=message.source, url=message.url, error=str(exc)
                )
            ]
        outputs: list[Message] = []
        kinds: Counter[MatchKind] = Counter()
        ambiguous: list[str] = []
        matches = [matching.match(self.index, record) for record in catalogue.records]
        texts = self.index.system_texts(sorted({m.file for m in matches if m.file}))
        for record, match in zip(catalogue.records, matches, strict=True):
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
