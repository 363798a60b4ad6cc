"""Real patches for the quality report's tests: rows of the bundled NASA and exoplanet.eu
samples merged (common.rules.merge) against the bundled OEC system files."""

from __future__ import annotations

import datetime as dt
from functools import cache

from common import rules
from common.catalogues import read_catalogue_file
from common.changes import SystemPatch
from common.matching import Match, MatchKind
from common.oec import tree
from common.records import Catalogue, PlanetRecord
from tests.paths import SAMPLE


@cache
def catalogue(name: str) -> Catalogue:
    """``nasa.csv`` or ``eu.csv`` of the bundled sample, read once."""
    return read_catalogue_file(SAMPLE / name)


def record(name: str, planet: str) -> PlanetRecord:
    return next(r for r in catalogue(name).records if r.name == planet)


def match_of(record: PlanetRecord) -> tuple[Match, str]:
    """The planet's match in its host's system file (what the indexer finds by name), and
    the file's text."""
    file = f"systems/{record.host}.xml"
    text = (SAMPLE / "oec" / file).read_text(encoding="utf-8")
    root = tree.parse_system(text)
    names = set(record.all_names)
    element = next(p for p in root.iter("planet") if names & set(tree.names_of(p)))
    return Match(kind=MatchKind.PLANET, file=file, path=tree.path_of(element), via="name"), text


def patch(record: PlanetRecord, commit: str = "c0ffee") -> SystemPatch:
    match, text = match_of(record)
    result = rules.merge(record, match, text, commit)
    assert result.patch is not None, result.notes
    return result.patch


def dated(record: PlanetRecord, day: dt.date) -> PlanetRecord:
    """The same row with another source date (to exercise the fold's precedence)."""
    return record.model_copy(update={"updated": day})
