"""Building a run's files in forked processes while the publisher takes in the results.

An uncapped first run builds every changed file (3,951 on the full data), one after the
other in one process. :func:`common.proposals.build` hands them to child processes
(runtime/forked.py) and takes each file's :class:`~common.proposals.FileBuilt` as its JSON,
which is what the memo keeps of it anyway.
"""

from __future__ import annotations

from common.proposals import BuildJob, built_json
from runtime.forked import Ahead

# Fewer files than this are built in the run's own process: a run after a day's changes
# builds a few dozen, and a fork would cost more than it saves.
MIN_FILES = 200
GROUP = 16  # files sent back together: ~40 ms of building


class BuildingAhead:
    """Builds some of what :func:`common.proposals.build` starts in ``processes`` - 1
    children; the run builds the rest itself (all of it with fewer than two processes)."""

    def __init__(self, processes: int) -> None:
        self.ahead = Ahead(processes, built_json, "builder")

    def __enter__(self) -> BuildingAhead:
        return self

    def __exit__(self, *exc: object) -> None:
        self.ahead.close()

    def start(self, jobs: list[BuildJob]) -> None:
        if len(jobs) >= MIN_FILES:
            keyed = [(job[0], job) for job in jobs]
            self.ahead.start([keyed[i : i + GROUP] for i in range(0, len(keyed), GROUP)])

    def value(self, file: str) -> bytes | None:
        return self.ahead.value(file)
