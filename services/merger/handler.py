"""Merger: a pure function of its message, record + system text -> field-level patch."""

from __future__ import annotations

from common import rules
from common.messages import Message, PlanetMatched, PlanetUnchanged, SystemChanged


def handle(message: Message) -> list[Message]:
    assert isinstance(message, PlanetMatched)
    record = message.record
    result = rules.merge(record, message.match, message.system_text, message.commit)
    common = {
        "run_id": message.run_id,
        "source": record.source,
        "row": record.row,
        "planet": record.name,
        "match_kind": message.match.kind,
    }
    if result.patch is not None and not result.patch.is_empty:
        return [SystemChanged(**common, patch=result.patch)]
    reason = "; ".join(result.notes) or "nothing newer or missing"
    return [PlanetUnchanged(**common, reason=reason)]
