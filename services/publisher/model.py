"""What the publisher reports about each system it handled."""

from __future__ import annotations

from enum import StrEnum
from typing import Protocol

from pydantic import BaseModel

from common.progress import QUIET, Progress
from common.proposals import Proposal


class PublishState(StrEnum):
    OPENED = "opened"  # a new branch (and PR) was created
    UPDATED = "updated"  # the branch existed with another change and now holds this one
    UP_TO_DATE = "up to date"  # the branch already holds exactly this change
    QUEUED = "queued"  # over the per-run cap; proposed in a later run
    SUPPRESSED = "suppressed"  # a maintainer closed this very change unmerged
    FAILED = "failed"  # push or PR failed; retried next run


class Published(BaseModel):
    proposal: Proposal
    state: PublishState
    url: str | None = None
    error: str | None = None


class Sink(Protocol):
    def publish(
        self, proposals: list[Proposal], max_prs: int, progress: Progress = QUIET
    ) -> list[Published]:
        """Write or push every proposal (at most ``max_prs`` new ones, 0 = all); each one's
        state. ``progress`` hears the stages of the work."""
        ...

    def dry_run(self, proposals: list[Proposal], max_prs: int) -> list[Published]:
        """What ``publish`` would do; writes nothing anywhere."""
        ...


class DryRun:
    """A sink that only says what its sink would do."""

    def __init__(self, sink: Sink) -> None:
        self.sink = sink

    def publish(
        self, proposals: list[Proposal], max_prs: int, progress: Progress = QUIET
    ) -> list[Published]:
        return self.sink.dry_run(proposals, max_prs)

    def dry_run(self, proposals: list[Proposal], max_prs: int) -> list[Published]:
        return self.sink.dry_run(proposals, max_prs)
