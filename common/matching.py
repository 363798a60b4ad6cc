"""What the alias index says about one catalogue row."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel

# "The same star": a catalogue row within this of an OEC system's position matches it, and
# two new hosts this close are one star that two catalogues name differently.
# 10″, measured on the snapshot: of the catalogue rows whose planet OEC already holds by name,
# 89–90 % lie within 5″ of OEC's system position and 95–96 % within 10″ (NASA and
# exoplanet.eu alike; the rest are high proper motion stars, 16 years of it between J2000 and
# Gaia epochs, or plain wrong positions). systems_kepler rounds RA to whole seconds (up to
# 7.5″ · cos δ). Wider is not needed and would be riskier, though no two distinct systems of
# systems/ lie within 30″ of each other (only the six duplicated microlensing events do).
SAME_STAR_ARCSEC = 10.0


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
