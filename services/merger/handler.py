"""Merger: a pure function of its message, record + system text -> field-level patch."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from common import rules
from common.interrupts import interruption
from common.memo import (
    Store,
    digest,
    merge_inputs,
    merge_unit,
    outcome_value,
    record_digest,
    remembered_outcome,
    remembered_summary,
    text_digest,
)
from common.messages import (
    Message,
    PlanetMatched,
    PlanetOutcomes,
    PlanetsMatched,
    PlanetUnchanged,
    SystemChanged,
)
from runtime.bus import Handler

log = logging.getLogger(__name__)


def handle(message: Message) -> list[Message]:
    assert isinstance(message, PlanetMatched)
    record = message.record
    result = rules.merge(record, message.match, message.system_text, message.commit)
    outcome: dict[str, Any] = {
        "run_id": message.run_id,
        "source": record.source,
        "row": record.row,
        "planet": record.name,
        "match_kind": message.match.kind,
    }
    patch = result.patch
    if patch is not None:
        patch.inputs = message.inputs
    if patch is not None and not patch.is_empty:
        return [SystemChanged(**outcome, patch=patch)]
    reason = "; ".join(result.notes) or "nothing newer or missing"
    if patch is not None and not (patch.conflicts or patch.reading):
        patch = None  # no voice and no conflict: nothing for the publisher to fold
    return [PlanetUnchanged(**outcome, reason=reason, patch=patch)]


def merge_key(message: PlanetMatched) -> str:
    """The message's :func:`~common.memo.merge_inputs` (sent by the indexer, or made here),
    keyed again with this merger's code version."""
    inputs = message.inputs or merge_inputs(
        record_digest(message.record), message.match, text_digest(message.system_text)
    )
    return digest(inputs)


def _not_merged(planet: PlanetMatched) -> bytes | None:
    return None


def remembering(
    memo: Store,
    merge: Handler = handle,
    merged: Callable[[PlanetMatched], bytes | None] = _not_merged,
) -> Handler:
    """``merge`` (:func:`handle`), answered from ``memo`` for a planet merged before from the
    same inputs, or by ``merged`` for one merged elsewhere meanwhile (its outcome as the memo
    keeps it, services/merger/ahead.py); new outcomes are remembered."""

    def handle_remembered(message: Message) -> list[Message]:
        assert isinstance(message, PlanetMatched)
        unit = merge_unit(message.record.source, message.record.row)
        key = merge_key(message)
        if (stored := memo.get("merge", unit, key)) is not None:
            return [remembered_outcome(stored, message.run_id, message.commit)]
        if (value := merged(message)) is not None:
            memo.put("merge", unit, key, value)
            # Its summary: the outcome itself is decoded only if its file is built.
            return [remembered_summary(value, message.run_id, message.commit)]
        outputs = list(merge(message))
        (computed,) = outputs
        assert isinstance(computed, SystemChanged | PlanetUnchanged)
        memo.put("merge", unit, key, outcome_value(computed))
        return outputs

    return handle_remembered


def each_planet(merge: Handler) -> Handler:
    """``merge`` (of one planet.matched) for every planet of a planets.matched, answered with
    one planet.outcomes. A planet whose merge raises is sent on again as a planet.matched of
    its own, for the bus's error policy (retries, then its planet.failed and its dead letter
    to replay once the cause is fixed): one bad row must not fail the planets beside it."""

    def handle_each(message: Message) -> list[Message]:
        if not isinstance(message, PlanetsMatched):
            return list(merge(message))
        outcomes: list[Message] = []
        alone: list[Message] = []
        for planet in message.planets:
            try:
                outcomes += merge(planet)
            except Exception as exc:
                if (stop := interruption()) is not None:
                    raise stop from exc  # Ctrl-C inside a library that wrapped it
                log.info("merging %s failed; sent on alone: %s", planet.record.name, exc)
                alone.append(planet)
        return [PlanetOutcomes.of(message.run_id, outcomes), *alone]

    return handle_each
