"""Merger: a pure function of its message, record + system text -> field-level patch."""

from __future__ import annotations

from typing import Any

from common import rules
from common.messages import Message, PlanetMatched, PlanetUnchanged, SystemChanged


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
    if patch is not None and not patch.is_empty:
        return [SystemChanged(**outcome, patch=patch)]
    reason = "; ".join(result.notes) or "nothing newer or missing"
    if patch is not None and not (patch.conflicts or patch.reading):
        patch = None  # no voice and no conflict: nothing for the publisher to fold
    return [PlanetUnchanged(**outcome, reason=reason, patch=patch)]
