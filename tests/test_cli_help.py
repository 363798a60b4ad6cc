"""``oec-sync --help`` and every sub-command's help, read as a newcomer reads them."""

from __future__ import annotations

import itertools
import re
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from services.cli import app

WIDTH = 80  # the terminal; click's help text is then 78 columns, paragraphs indented by 2
TEXT_WIDTH = 76


def commands(command: Any = None, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """The argv of every command and group, the root first."""
    command = command or typer.main.get_command(app)
    found = [path]
    for name, sub in getattr(command, "commands", {}).items():
        found += commands(sub, (*path, name))
    return found


COMMANDS = commands()


def help_of(path: tuple[str, ...]) -> str:
    result = CliRunner().invoke(app, [*path, "--help"], terminal_width=WIDTH)
    assert result.exit_code == 0, result.output
    return result.output


def test_every_command_was_found() -> None:
    assert ("run",) in COMMANDS and ("snapshots", "reprocess") in COMMANDS
    assert len(COMMANDS) >= 18


@pytest.mark.parametrize("path", COMMANDS, ids=[" ".join(p) or "oec-sync" for p in COMMANDS])
def test_help_reads_cleanly(path: tuple[str, ...]) -> None:
    text = help_of(path)
    # Flags take no value, so no type is shown after them; no flag has a default to show.
    assert "<bool>" not in text
    assert "[default: True]" not in text and "[default: False]" not in text
    # Options that take a value name it (FILE, DIR, N ...), not a Python type.
    assert not re.search(r"--[\w-]+ <(str|int|path)>", text)
    # The description's paragraphs are rewrapped: no line ends early inside a paragraph,
    # as it would where a docstring's own line breaks were kept.
    description = text.split("\n\n", 1)[1]
    description = re.split(r"\n(?:Options|Arguments|Commands):\n", description)[0]
    for paragraph in description.split("\n\n"):
        lines = [line.strip() for line in paragraph.splitlines()]
        for line, following in itertools.pairwise(lines):
            assert len(line) + 1 + len(following.split()[0]) > TEXT_WIDTH, (line, following)


def test_the_root_lists_every_command_in_whole_sentences() -> None:
    listing = help_of(()).split("Commands:\n", 1)[1]
    for line in listing.splitlines():
        assert not line.endswith("..."), line


def test_run_shows_its_defaults_and_bounds() -> None:
    text = " ".join(help_of(("run",)).split())
    assert "--max-prs N" in text and "[default: (OEC_SYNC_MAX_PRS, else 20); x>=0]" in text
    assert "[default: (OEC_SYNC_OUTBOX, else DATA_DIR/outbox)]" in text
    assert "--dry-run list what would be opened, updated or queued; write nothing" in text


def test_fetcher_once_says_what_it_does() -> None:
    text = " ".join(help_of(("fetcher",)).split())
    assert "--once fetch once and exit; the fetcher always does, a CronJob starts it daily" in text
    assert "only mode" not in text
