"""Field-level patches: what the merger proposes and the publisher folds and writes."""

from __future__ import annotations

import datetime as dt
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

    @property
    def is_empty(self) -> bool:
        return not (self.changes or self.new_planets or self.new_system)
