"""Proposals for the publisher's tests and benchmarks: one real value of a real system file
changed, as a catalogue would change it, and the repository names of the fake GitHub."""

from __future__ import annotations

import datetime as dt
import re

from common.changes import ChangeKind, FieldChange
from common.proposals import Proposal, describe
from common.records import PlanetRecord, Source, Value

UPSTREAM = "OpenExoplanetCatalogue/open_exoplanet_catalogue"
FORK = "oec-bot/open_exoplanet_catalogue"

# A value element OEC writes with a plain decimal: the thing a proposal changes.
VALUE = re.compile(
    r"<(mass|radius|period|semimajoraxis|temperature|distance)((?: [^>]*)?)>(-?[0-9.]+)</\1>"
)
NAME = re.compile(r"<name>([^<]+)</name>")


def edit_value(text: str, variant: str) -> tuple[str, FieldChange]:
    """Change the first plain value in ``text``: "2.7" -> "2.7<variant>"."""
    m = VALUE.search(text)
    assert m, "no value to change"
    tag, attrs, old = m.group(1), m.group(2), m.group(3)
    new = old + variant if "." in old else f"{old}.{variant}"
    names = NAME.findall(text[: m.start()])
    change = FieldChange(
        object=names[-1] if names else "system",
        path="/system",
        field=tag,
        kind=ChangeKind.UPDATED,
        old=Value(value=old),
        new=Value(value=new),
        source=Source.NASA,
        source_date=dt.date(2026, 8, 1),
        source_dated_by="rowupdate",
        source_catalogue="pscomppars.csv",
        source_url="https://exoplanetarchive.ipac.caltech.edu/overview/x",
        source_row=42,
    )
    edited = text[: m.start()] + f"<{tag}{attrs}>{new}</{tag}>" + text[m.end() :]
    return edited, change


def proposal_for(file: str, text: str, base: str, variant: str = "1") -> Proposal:
    new_text, change = edit_value(text, variant)
    return describe(file, new_text, base, [change], [], False)


def new_system_proposal(file: str, base: str, template: str) -> Proposal:
    """A proposal for a file that does not exist yet (a real file's text as its content)."""
    system = NAME.search(template).group(1)  # type: ignore[union-attr]
    planet = PlanetRecord(
        source=Source.EU,
        catalogue="exoplanet.eu.csv",
        row=7,
        name=f"{system} b",
        host=system,
        planet={"mass": Value(value="1.25", errorminus="0.1", errorplus="0.1")},
    )
    return describe(file, template, base, [], [planet], True)
