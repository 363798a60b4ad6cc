"""Matching a later catalogue's records in a forked process while the run matches the first.

A first run builds its index anew, and then matches every record of both catalogues
against it, one catalogue after the other: 0.4 s each on the full data, while the other
core waits for the first catalogue's planets to be merged. The run hands the records of
the catalogues after the first to a child (runtime/forked.py), which matches them while the
run matches the first; each comes back as :func:`~services.indexer.handler.matches_of`'s
JSON, which the indexer takes as it takes the matches an earlier run remembered.
"""

from __future__ import annotations

from collections.abc import Sequence

from common.oec.index import AliasIndex
from common.records import PlanetRecord
from runtime.forked import Ahead
from services.indexer.handler import matches_of

# Fewer records than this are matched in the run's own process: a fork would cost more
# than the ~0.07 ms a record takes to match.
MIN_RECORDS = 1000

MatchJob = tuple[AliasIndex, Sequence[PlanetRecord]]  # records, and the index to match them in


def _matched(job: MatchJob) -> bytes:
    return matches_of(*job)


class MatchingAhead:
    """Matches the records of the downloads after the first in ``processes`` - 1 children
    (none with fewer than two processes); :meth:`value` answers for a download by its
    message id (:class:`~services.indexer.handler.IndexerHandler`'s ``matched_ahead``)."""

    def __init__(self, processes: int) -> None:
        self.ahead = Ahead(processes, _matched, "matcher")

    def __enter__(self) -> MatchingAhead:
        return self

    def __exit__(self, *exc: object) -> None:
        self.ahead.close()

    def start(self, index: AliasIndex, downloads: Sequence[tuple[str, list[PlanetRecord]]]) -> None:
        """``downloads``: (message id, records) in the order the run matches them."""
        later = [(key, (index, records)) for key, records in downloads[1:]]
        if sum(len(records) for _, (_, records) in later) >= MIN_RECORDS:
            self.ahead.start([[item] for item in later])

    def value(self, key: str) -> bytes | None:
        """The download's matches (waiting for them); None if no child matched it."""
        return self.ahead.value(key)
