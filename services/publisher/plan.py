"""A publish plan: what a run does to each system (open, update, keep, queue, suppress,
hold, fail), the pull requests closed since the last run, the branches to delete; and the
dry run's text of it. Made by :meth:`services.publisher.github.GitHubSink.plan`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from github.PullRequest import PullRequest

from common.proposals import Proposal
from common.redaction import REDACTOR
from services.publisher.model import Published, PublishState
from services.publisher.repos import (
    ForkSync,
    Tip,
)


class Action(StrEnum):
    OPEN = "open"  # push the branch (unless already there) and open a pull request
    UPDATE = "update"  # force-push the branch and/or rewrite the open pull request
    KEEP = "keep"  # the open pull request already proposes exactly this
    QUEUE = "queue"  # over the cap: a later run
    SUPPRESS = "suppress"  # a maintainer closed this very change set unmerged
    HOLD = "hold"  # someone else committed to the branch: left alone
    FAIL = "fail"


_STATE = {
    Action.OPEN: PublishState.OPENED,
    Action.UPDATE: PublishState.UPDATED,
    Action.KEEP: PublishState.UP_TO_DATE,
    Action.QUEUE: PublishState.QUEUED,
    Action.SUPPRESS: PublishState.SUPPRESSED,
    Action.HOLD: PublishState.SUPPRESSED,
    Action.FAIL: PublishState.FAILED,
}


@dataclass
class OpenPull:
    number: int
    branch: str
    fingerprint: str
    head_sha: str
    url: str
    title: str
    body: str
    pull: PullRequest | None = None


@dataclass
class Closure:
    """A pull request that was open at the last run and is merged or closed now."""

    number: int
    branch: str
    fingerprint: str
    merged: bool
    head_sha: str
    url: str


@dataclass
class Deletion:
    branch: str
    expected: str  # the fork branch's commit; deleted only if it is still there
    numbers: list[int]  # the closed pull requests whose branch this is


@dataclass
class PlanItem:
    proposal: Proposal
    action: Action
    fingerprint: str
    reason: str = ""
    pull: OpenPull | None = None
    push: bool = False  # the branch must be (re)written and pushed
    tip: Tip | None = None  # the fork branch now
    written: str | None = None  # the commit pushed by this run

    def published(self) -> Published:
        failed = self.action in {Action.FAIL, Action.HOLD, Action.SUPPRESS}
        return Published(
            proposal=self.proposal,
            state=_STATE[self.action],
            url=self.pull.url if self.pull else None,
            error=REDACTOR(self.reason) if failed and self.reason else None,
        )


@dataclass
class PublishPlan:
    """What a run does (or would do, as a dry run)."""

    fork: ForkSync | None
    base_branch: str
    upstream_head: str
    items: list[PlanItem]
    closures: list[Closure] = field(default_factory=list)
    deletions: list[Deletion] = field(default_factory=list)
    adopted: list[OpenPull] = field(default_factory=list)
    open_count: int = 0
    error: str | None = None

    def published(self) -> list[Published]:
        return sorted((i.published() for i in self.items), key=lambda p: p.proposal.file)

    def count(self, action: Action) -> int:
        return sum(i.action is action for i in self.items)


def render_plan(plan: PublishPlan) -> str:
    """The dry run as text: one line per system that would change, then the totals."""
    lines: list[str] = []
    if plan.error:
        lines.append(f"cannot plan: {REDACTOR(plan.error)}")
    if plan.fork:
        lines.append(f"fork {plan.fork.branch}: {plan.fork.state.value}")
    for closure in plan.closures:
        how = "merged" if closure.merged else "closed unmerged"
        lines.append(f"PR #{closure.number} ({closure.branch}) was {how}")
    for deletion in plan.deletions:
        lines.append(f"delete branch {deletion.branch} on the fork")
    order = [Action.OPEN, Action.UPDATE, Action.FAIL, Action.HOLD, Action.SUPPRESS, Action.QUEUE]
    for action in order:
        for item in sorted(plan.items, key=lambda i: i.proposal.file):
            if item.action is action:
                what = f"PR #{item.pull.number}" if item.pull else item.proposal.branch
                note = f" — {REDACTOR(item.reason)}" if item.reason else ""
                lines.append(f"{action.value:8} {item.proposal.file} ({what}){note}")
    totals = ", ".join(f"{plan.count(a)} {a.value}" for a in Action if plan.count(a))
    lines.append(f"{len(plan.items)} systems: {totals or 'nothing to do'}")
    return "\n".join(lines)
