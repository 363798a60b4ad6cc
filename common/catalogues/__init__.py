"""Catalogue readers: a NASA Exoplanet Archive or exoplanet.eu download -> Catalogue.

read_source(data, name, source)     read a download given as ``source``; refuse any other
check_source(data, name, source)    the same check on the header alone, reading no rows
read_catalogue(data, name)          sniff the source from the header, then read
read_catalogue_file(path)           the same for a file on disk
nasa.read_nasa / exoplaneteu.read_eu  one catalogue each; both check what they are given
                                    (imported when a download is read: pandas is under them)
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from pathlib import Path

import common.catalogues.identity as identity
from common.catalogues.table import decode, read_header
from common.errors import NotACatalogueError
from common.records import Catalogue, Source

__all__ = [
    "check_source",
    "read_catalogue",
    "read_catalogue_file",
    "read_source",
    "sniff_source",
]


def sniff_source(data: bytes, name: str = "<data>") -> Source:
    """Which catalogue a download comes from, judged by its header (common/catalogues/
    identity.py). Raises NotACatalogueError for anything else."""
    header = read_header(decode(data, name), name)
    source = identity.identify(header)
    if source is None:
        raise NotACatalogueError(name, identity.neither(header))
    return source


def check_source(data: bytes, name: str, source: Source) -> None:
    """Raise NotACatalogueError unless the download's header is one of ``source``
    (WrongCatalogueError, naming the right flag, when it is the other catalogue's)."""
    identity.check(read_header(decode(data, name), name), source, name)


def read_source(
    data: bytes,
    name: str,
    source: Source,
    fetched_at: dt.date | None = None,
    known: Collection[str] = frozenset(),
) -> Catalogue:
    """Read a download that was given as ``source``; ``fetched_at`` dates NASA TAP downloads;
    rows whose key is in ``known`` are left out of its records (Catalogue.row_keys).

    Every record then carries ``source``: a download of the other catalogue raises
    WrongCatalogueError instead of being read as what it is.
    """
    # The readers (and pandas under them) are imported when a download is read, not when
    # a run that remembers both catalogues starts (0.2 s of its 5).
    if source is Source.NASA:
        from common.catalogues.nasa import read_nasa

        return read_nasa(data, name, fetched_at, known)
    from common.catalogues.exoplaneteu import READ_STATUSES, read_eu

    return read_eu(data, name, READ_STATUSES, known)


def read_catalogue(data: bytes, name: str, fetched_at: dt.date | None = None) -> Catalogue:
    """Read a download of either catalogue; ``fetched_at`` dates NASA TAP downloads.

    exoplanet.eu rows are read with the default statuses (Confirmed and Controversial).
    """
    return read_source(data, name, sniff_source(data, name), fetched_at)


def read_catalogue_file(path: str | Path, fetched_at: dt.date | None = None) -> Catalogue:
    """Read a downloaded file; reports and records name it by its file name."""
    path = Path(path)
    return read_catalogue(path.read_bytes(), path.name, fetched_at)
