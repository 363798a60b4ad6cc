"""Merging a catalogue's planets in forked processes, ahead of the embedded run's bus.

When the indexer has matched a catalogue, the planets it sends to be merged are merged in
child processes (runtime/forked.py) while the run reads and matches the other catalogue.
Each outcome comes back as the memo keeps it (:func:`common.memo.outcome_value`), and the
run takes it as it takes a remembered outcome, as if an earlier run had merged the planet.
"""

from __future__ import annotations

from collections.abc import Iterable

from common.memo import outcome_value
from common.messages import Message, PlanetMatched, PlanetsMatched, PlanetUnchanged, SystemChanged
from runtime.bus import Handler
from runtime.forked import Ahead

# Fewer planets than this are merged in the run's own process: a fork and its pipe cost more
# than they save (a run after 1 % of the rows changed merges ~100 planets).
MIN_PLANETS = 1000


class MergingAhead:
    """Merges what :meth:`start` is given with ``merge`` (services/merger/handler.py
    :func:`handle`) in ``processes`` - 1 children; the run merges the rest itself, as it
    merges every planet with fewer than two processes. :meth:`value` is a planet's outcome."""

    def __init__(self, processes: int, merge: Handler) -> None:
        def merged(planet: PlanetMatched) -> bytes:
            (outcome,) = merge(planet)
            assert isinstance(outcome, SystemChanged | PlanetUnchanged)
            return outcome_value(outcome)

        self.ahead = Ahead(processes, merged, "merger")

    def __enter__(self) -> MergingAhead:
        return self

    def __exit__(self, *exc: object) -> None:
        self.ahead.close()

    def start(self, messages: Iterable[Message]) -> None:
        """Merge ahead the planets of these planets.matched (the indexer's output for one
        catalogue), a message's planets sent back together. While the run reads and matches
        another catalogue, the children merge all of them."""
        groups = [
            [(planet.message_id, planet) for planet in message.planets]
            for message in messages
            if isinstance(message, PlanetsMatched)
        ]
        if sum(len(group) for group in groups) >= MIN_PLANETS:
            self.ahead.start(groups)

    def value(self, planet: PlanetMatched) -> bytes | None:
        """The planet's outcome as the memo keeps it, merged in a child (waiting for it);
        None if no child was given it (the run merges it) or its merge failed there."""
        return self.ahead.value(planet.message_id)
