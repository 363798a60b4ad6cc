"""What the alias index says about one catalogue row."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel


class MatchKind(StrEnum):
    PLANET = "planet"  # the planet is in OEC: `file` and `path` point at its <planet>
    HOST = "host"  # the planet is new, its host is in OEC: `path` points at the host element
    NONE = "none"  # neither planet nor host is in OEC: a new system
    AMBIGUOUS = "ambiguous"  # names point at more than one object: refused, never guessed


class Match(BaseModel):
    kind: MatchKind
    file: str | None = None  # path of the system file relative to the repo, "/" separated
    path: str | None = None  # lxml element path inside that file, e.g. "/system/star/planet[2]"
    via: str = ""  # how it matched: "name", "alias", "composed", "position"
    matched_name: str | None = None  # the OEC name that matched
    candidates: list[str] = []  # for AMBIGUOUS: "file:path (name)" of each candidate
