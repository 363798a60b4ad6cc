"""Which catalogue a table is, judged by the columns only that catalogue has.

Every NASA Exoplanet Archive table (``pscomppars`` and ``ps``, web and TAP downloads) has
``pl_name``; every exoplanet.eu export (the 2022, 2023 and 2025 header generations) has
``name`` and ``planet_status``. Checked on all files in ../shared/data: none has both.
"""

from __future__ import annotations

from collections.abc import Sequence

from common.errors import NotACatalogueError, WrongCatalogueError
from common.records import Source

IDENTIFYING_COLUMNS: dict[Source, tuple[str, ...]] = {
    Source.NASA: ("pl_name",),
    Source.EU: ("name", "planet_status"),
}
WHAT: dict[Source, str] = {
    Source.NASA: "a NASA Exoplanet Archive table",
    Source.EU: "an exoplanet.eu export",
}
# The command-line flag that takes each catalogue (oec-sync run, oec-sync fetcher).
FLAG: dict[Source, str] = {Source.NASA: "--nasa", Source.EU: "--eu"}


def identify(header: Sequence[str]) -> Source | None:
    """The catalogue whose identifying columns the header has; None for neither (or both)."""
    columns = set(header)
    found = [s for s, names in IDENTIFYING_COLUMNS.items() if columns.issuperset(names)]
    return found[0] if len(found) == 1 else None


def check(header: Sequence[str], expected: Source, file: str) -> None:
    """Raise unless ``header`` is the header of an ``expected`` table.

    WrongCatalogueError when it is the other catalogue's (the message names the flag that
    takes it), NotACatalogueError when it is neither.
    """
    found = identify(header)
    if found is expected:
        return
    if found is not None:
        reason = f"{WHAT[found]}, not {WHAT[expected]}: pass it with {FLAG[found]}"
        raise WrongCatalogueError(file, reason)
    raise NotACatalogueError(file, neither(header))


def neither(header: Sequence[str]) -> str:
    shown = ",".join(header[:4]) + (",..." if len(header) > 4 else "")
    wanted = " nor ".join(
        f"{WHAT[source]} ({', '.join(names)})" for source, names in IDENTIFYING_COLUMNS.items()
    )
    return f"the header ({shown}) is neither {wanted}"
