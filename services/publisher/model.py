"""What the publisher reports about each system it handled."""

from __future__ import annotations

from collections.abc import Callable, Collection
from enum import StrEnum
from typing import Protocol, runtime_checkable

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


@runtime_checkable
class CapsInFileOrder(Protocol):
    """A sink whose cap takes proposals in file order, passing over those already in place:
    a capped run need build no proposal after the last one it opens."""

    def takes_slot(self, base: str, files: Collection[str]) -> Callable[[Proposal], bool]:
        """Whether a proposal on ``base`` counts against the cap; ``files``: those it will
        be asked about (others may follow)."""
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
