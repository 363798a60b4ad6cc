"""Canonical planet records: what every catalogue reader produces, in OEC units.

A record carries one planet row of a catalogue with its host star and system. Field keys
are OEC tag names (``mass``, ``period``, ``magV`` ...) so the merge rules never translate
names. Numbers are kept as the decimal text OEC should write (``"326.03"``, never
``"326.03000000"``) so nothing is lost to float formatting on the way to the XML.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum

from pydantic import BaseModel, Field


class Source(StrEnum):
    NASA = "nasa"
    EU = "exoplanet.eu"


@dataclass(frozen=True, slots=True)
class Value:
    """One OEC field: ``<tag errorminus=.. errorplus=.. upperlimit=.. type=..>value</tag>``.

    ``value`` is None when only a limit is known. Errors are positive decimal strings.
    ``type`` is ``"msini"`` for a minimum mass. Text fields (``spectraltype``,
    ``discoverymethod``) hold their text in ``value`` and nothing else.

    A plain frozen dataclass rather than a pydantic model: a full run makes ~10^6 of them,
    and pydantic still validates them wherever they sit inside a model.
    """

    value: str | None = None
    errorminus: str | None = None
    errorplus: str | None = None
    lowerlimit: str | None = None
    upperlimit: str | None = None
    type: str | None = None
    unit: str | None = None

    def attributes(self) -> dict[str, str]:
        """The XML attributes of this value, in the order OEC files write them."""
        names = ("errorminus", "errorplus", "lowerlimit", "upperlimit", "type", "unit")
        return {n: v for n in names if (v := getattr(self, n)) is not None}

    def fields(self) -> dict[str, str]:
        """Every field that is set: the value and its attributes."""
        return ({"value": self.value} if self.value is not None else {}) | self.attributes()


class PlanetRecord(BaseModel):
    """One planet row of a catalogue, with its host star and system, in OEC units."""

    source: Source
    catalogue: str = Field(description="file name or URL the row was read from")
    row: int = Field(description="1-based line number of the row in that file")
    name: str
    aliases: list[str] = []
    letter: str | None = None
    host: str | None = None
    host_aliases: list[str] = []
    status: str = Field("Confirmed planets", description="the OEC status list of the planet")
    ra: float | None = Field(None, description="right ascension, degrees (J2000)")
    dec: float | None = Field(None, description="declination, degrees (J2000)")
    updated: dt.date | None = Field(None, description="the source's date for this row")
    dated_by: str = Field("", description="where `updated` came from, for the PR text")
    url: str | None = Field(None, description="link to the row at the source")
    planet: dict[str, Value] = {}
    star: dict[str, Value] = {}
    system: dict[str, Value] = {}

    @property
    def all_names(self) -> list[str]:
        return [self.name, *self.aliases]

    @property
    def host_names(self) -> list[str]:
        return [n for n in [self.host, *self.host_aliases] if n]


class RejectedRow(BaseModel):
    """A row that was reported and skipped: where it is and why."""

    file: str
    row: int
    column: str | None = None
    reason: str


class Catalogue(BaseModel):
    """The result of reading one catalogue download."""

    source: Source
    file: str
    released: dt.date | None = Field(None, description="the catalogue's own date, if it has one")
    rows: int = 0
    skipped_status: int = Field(0, description="rows skipped for their status (not Confirmed)")
    records: list[PlanetRecord] = []
    rejected: list[RejectedRow] = []
    # Every row the reader takes (by line): a digest of all its record is read from. Rows
    # whose digest the reader was told it knows are left out of ``records``.
    row_keys: dict[int, str] = {}
