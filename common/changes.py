"""Field-level patches: what the merger proposes and the publisher folds and writes."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from pydantic import BaseModel

from common.records import PlanetRecord, Source, Value


class ChangeKind(StrEnum):
    ADDED = "added"  # the field was missing in OEC
    UPDATED = "updated"  # the field was there and the source is newer and different


class FieldChange(BaseModel):
    """One field of one OEC object: old -> new, and where the new value comes from."""

    object: str  # display name of the object ("11 Com b", "11 Com", system name)
    path: str  # lxml path of the element in the original file ("/system/star/planet[2]")
    field: str  # OEC tag ("mass", "lastupdate")
    kind: ChangeKind
    old: Value | None = None
    new: Value
    source: Source
    source_date: dt.date | None = None
    source_dated_by: str = ""
    source_catalogue: str | None = None
    source_url: str | None = None
    source_row: int | None = None


class Reading(BaseModel):
    """What one catalogue row says of the OEC fields that already hold a value.

    A catalogue that agrees with OEC proposes nothing, yet its voice decides whether the
    other catalogue may change the value (:func:`common.rules.fold`), so every merge sends
    its reading along with its changes.
    """

    file: str
    source: Source
    source_date: dt.date | None = None
    source_dated_by: str = ""
    source_row: int | None = None
    source_url: str | None = None
    values: dict[str, dict[str, Value]] = {}  # element path -> OEC field -> the row's value


class CatalogueValue(BaseModel):
    """One catalogue's value for a field in a conflict, with where it comes from."""

    source: Source
    value: Value
    source_date: dt.date | None = None
    source_dated_by: str = ""
    source_row: int | None = None
    source_url: str | None = None


class Conflict(BaseModel):
    """A field the rules left alone because the sources disagree: for a maintainer to settle.

    ``size`` orders conflicts, largest first: the largest relative difference between any
    two of the values shown (OEC's and the catalogues'), 1.0 meaning 100 %.
    """

    object: str
    path: str
    field: str
    reason: str
    file: str = ""  # set once the conflicts of a system file are gathered
    oec: Value | None = None
    values: list[CatalogueValue] = []
    size: float = 0.0


class NewPlanet(BaseModel):
    """A planet missing from an existing system, to be appended to its host."""

    parent_path: str  # the host star/binary/system element
    record: PlanetRecord


class SystemPatch(BaseModel):
    """Everything one merge decided for one system file."""

    file: str  # relative path, "systems/11 Com.xml"
    base_commit: str  # the commit whose file text the patch was computed against
    changes: list[FieldChange] = []
    new_planets: list[NewPlanet] = []
    new_system: list[PlanetRecord] = []  # non-empty: the file does not exist yet
    conflicts: list[Conflict] = []  # values refused for disagreement, not changes
    reading: Reading | None = None  # what the row says of OEC's values (one merge's patch)
    # A digest of everything the merge that made this patch read (PlanetMatched.inputs):
    # a key for what is built from it, cheaper than the patch's own JSON.
    inputs: str = ""

    @property
    def is_empty(self) -> bool:
        return not (self.changes or self.new_planets or self.new_system)


@dataclass(frozen=True)
class PatchRef:
    """A patch known by its file and the digest of its merge's inputs (a planet.remembered's,
    common/messages.py), loaded only when its file is built again."""

    file: str
    inputs: str
    is_empty: bool
    base_commit: str
    load: Callable[[], SystemPatch]
    new_system: tuple[PlanetRecord, ...] = ()  # a new system's patch is never referred to
