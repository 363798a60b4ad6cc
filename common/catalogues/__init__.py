"""Catalogue readers: a NASA Exoplanet Archive or exoplanet.eu download -> Catalogue.

read_catalogue(data, name)      sniff the source from the header, then read
read_catalogue_file(path)       the same for a file on disk
read_nasa / read_eu             when the caller already knows the source
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from common.catalogues.exoplaneteu import read_eu
from common.catalogues.nasa import read_nasa
from common.catalogues.table import decode, read_header
from common.errors import NotACatalogueError
from common.records import Catalogue, Source

__all__ = ["read_catalogue", "read_catalogue_file", "read_eu", "read_nasa", "sniff_source"]


def sniff_source(data: bytes, name: str = "<data>") -> Source:
    """Which catalogue a download comes from, judged by its header.

    NASA tables always have ``pl_name``; exoplanet.eu exports start with ``name`` (``# name``
    in 2022) and have ``planet_status``. Raises NotACatalogueError for anything else.
    """
    header = read_header(decode(data, name), name)
    if "pl_name" in header:
        return Source.NASA
    if header[0] == "name" and "planet_status" in header:
        return Source.EU
    shown = ",".join(header[:4])
    raise NotACatalogueError(
        name,
        f"the header ({shown},...) is neither a NASA Exoplanet Archive nor an exoplanet.eu one",
    )


def read_catalogue(data: bytes, name: str, fetched_at: dt.date | None = None) -> Catalogue:
    """Read a download of either catalogue; ``fetched_at`` dates NASA TAP downloads.

    exoplanet.eu rows are read with the default statuses (Confirmed and Controversial).
    """
    if sniff_source(data, name) is Source.NASA:
        return read_nasa(data, name, fetched_at)
    return read_eu(data, name)


def read_catalogue_file(path: str | Path, fetched_at: dt.date | None = None) -> Catalogue:
    """Read a downloaded file; reports and records name it by its file name."""
    path = Path(path)
    return read_catalogue(path.read_bytes(), path.name, fetched_at)
