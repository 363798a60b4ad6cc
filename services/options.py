"""What every ``oec-sync`` sub-command shares: how the help looks (``new_app``), how output
is printed (``make_console``), and the checks of paths and catalogue locations, so that a
wrong input costs one line naming the input, before anything runs.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from common.errors import NotAnOecCheckoutError
from runtime.config import Settings

# Piped or redirected, rich would cut every table to 80 columns; this leaves room for the
# widest one (a replay listing is ~150 columns).
PIPED_WIDTH = 1000


def new_app(help: str) -> typer.Typer:
    """A command group as every ``oec-sync`` group looks.

    Plain click help: rich's help panels show a ``<bool>`` type after every flag and keep
    the hard line breaks of docstrings, click's rewraps paragraphs and shows flags bare.
    """
    return typer.Typer(help=help, no_args_is_help=True, add_completion=False, rich_markup_mode=None)


def make_console(stderr: bool = True) -> Console:
    """The console a command prints through: a terminal's own width, else (piped, or in a
    CI log) room for whole tables; ``COLUMNS`` wins when set."""
    stream = sys.stderr if stderr else sys.stdout
    piped = not stream.isatty() and "COLUMNS" not in os.environ
    return Console(stderr=stderr, width=PIPED_WIDTH if piped else None)


def oec_checkout(path: Path | None) -> Path | None:
    """Option callback: ``path`` must be an OEC checkout (common/oec/checkout.py)."""
    from common.oec.checkout import check_checkout

    if path is not None:
        try:
            check_checkout(path)
        except NotAnOecCheckoutError as exc:
            raise typer.BadParameter(str(exc)) from None
    return path


def file_or_url(location: str | None) -> str | None:
    """Option callback: a catalogue location is an http(s) URL or a file that exists."""
    if location is None or location.startswith(("http://", "https://")):
        return location
    path = Path(location)
    if not path.exists():
        raise typer.BadParameter(f"{location} does not exist")
    if path.is_dir():
        raise typer.BadParameter(f"{location} is a directory, not a file")
    return location


def new_file(path: Path | None) -> Path | None:
    """Option callback: a file to write must not be a directory, and its folder must exist
    (checked before the run, not after it)."""
    if path is None:
        return None
    if path.is_dir():
        raise typer.BadParameter(f"{path} is a directory, not a file")
    if not path.parent.is_dir():
        raise typer.BadParameter(f"{path.parent} does not exist")
    return path


def folder(path: Path | None) -> Path | None:
    """Option callback: a folder to write into may be missing (it is made), not a file."""
    if path is not None and path.exists() and not path.is_dir():
        raise typer.BadParameter(f"{path} is a file, not a directory")
    return path


def _default(name: str) -> object:
    return Settings.model_fields[name].default


NasaOption = Annotated[
    str | None,
    typer.Option(
        metavar="FILE|URL",
        help="NASA Exoplanet Archive CSV (pscomppars or ps table)",
        callback=file_or_url,
    ),
]
EuOption = Annotated[
    str | None,
    typer.Option(metavar="FILE|URL", help="exoplanet.eu CSV export", callback=file_or_url),
]
MaxPrsOption = Annotated[
    int | None,
    typer.Option(
        min=0,
        metavar="N",
        help="new systems proposed per run, the rest queued for later runs; 0 = no cap",
        show_default=f"OEC_SYNC_MAX_PRS, else {_default('max_prs')}",
    ),
]
