"""How long work tells the person running it where it is: named stages, counts, notes.

The embedded run shows these in its progress display; everywhere else they are quiet
(notes go to the log).
"""

from __future__ import annotations

import logging
from typing import Protocol

log = logging.getLogger("oec_sync")


class Progress(Protocol):
    def stage(self, name: str, total: int | None = None) -> None:
        """A stage begins (``build``, ``branches``, ...); ``total`` steps, None if unknown."""
        ...

    def advance(self, steps: int = 1) -> None:
        """Steps of the current stage are done (callable from any thread)."""
        ...

    def note(self, line: str) -> None:
        """One line worth reading, such as what was cleaned up after an interrupted run."""
        ...


class Quiet:
    """No display; notes are logged."""

    def stage(self, name: str, total: int | None = None) -> None:
        pass

    def advance(self, steps: int = 1) -> None:
        pass

    def note(self, line: str) -> None:
        log.warning("%s", line)


QUIET = Quiet()
