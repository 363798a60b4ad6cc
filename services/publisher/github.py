"""Publishing to GitHub: fork sync, one branch and one pull request per system, no flood.

A run is planned first and then carried out; ``plan()`` alone is the dry run (it fetches
and reads GitHub but writes nothing anywhere). The rules a maintainer can rely on:

- one open pull request per system; a new value updates it (same number, branch
  force-updated with a lease, body rewritten) instead of opening another;
- a change set a maintainer closed unmerged (same fingerprint: file + sorted object, field,
  new value) is never proposed again; a different value from the source is;
- a branch somebody else has committed to is left alone;
- branches are deleted from the fork only after GitHub says their pull request is merged or
  closed;
- at most ``max_prs`` pull requests are opened or updated per run (up-to-date ones are
  free), the rest wait in a first-come queue; optionally at most ``max_open_prs`` open at once;
- one system's failed push or API call is reported FAILED and retried next run, the others
  go on; the token never appears in a log line, an error or a report.

The plan's types and its dry-run text are in plan.py; the HTTP retries (PyGithub's
``GithubRetry`` honouring GitHub's rate-limit headers) in retry.py.
"""

from __future__ import annotations

import logging
import math
import os
import time
from pathlib import Path
from typing import Any

from github import Auth, Github, GithubException
from github.PullRequest import PullRequest
from github.Repository import Repository
from pydantic import SecretStr
from urllib3 import Retry

from common import prtext
from common.config import Settings
from common.gitrepo import BRANCH_PREFIX, blob_sha
from common.gitwrite import write_branches
from common.progress import QUIET, Progress
from common.proposals import Proposal
from common.redaction import REDACTOR
from services.publisher.model import Published, PublishState
from services.publisher.plan import (
    Action,
    Closure,
    Deletion,
    OpenPull,
    PlanItem,
    PublishPlan,
    render_plan,
)
from services.publisher.pr_store import PrStore, fingerprint
from services.publisher.repos import (
    ForkClone,
    ForkState,
    RefUpdate,
    Tip,
    is_git_error,
)
from services.publisher.retry import (
    UNAVAILABLE,
    make_retry,
    unavailable,
)

__all__ = ["GitHubSink"]

log = logging.getLogger("oec_sync.publisher.github")


def _error(exc: BaseException) -> str:
    if isinstance(exc, GithubException):
        message = exc.message or (exc.data.get("message") if isinstance(exc.data, dict) else "")
        text = f"GitHub {exc.status}: {message or exc.data}"
    else:
        text = f"{type(exc).__name__}: {exc}"
    return REDACTOR(text)[:1000]


def _already_exists(exc: GithubException) -> bool:
    return exc.status == 422 and "already exists" in str(exc.data).lower()


class GitHubSink:
    """Publishes proposals as branches of a fork and pull requests against upstream.

    Construct with ``GitHubSink.from_settings(settings)`` (or ``sink_from_settings``, which
    falls back to the LocalSink without a token). ``api_url`` points PyGithub at GitHub,
    GitHub Enterprise (``https://host/api/v3``) or a test server; the clone URLs come from
    the API's repository objects.
    """

    progress: Progress = QUIET  # the stages of the publish in progress

    def __init__(
        self,
        *,
        token: SecretStr,
        upstream: str,
        fork: str | None,
        clone_dir: Path,
        store: PrStore,
        api_url: str = "https://api.github.com",
        max_open_prs: int = 0,
        retry: Retry | None = None,
        timeout: int = 30,
        seconds_between_requests: float | None = 0.25,
        seconds_between_writes: float | None = 1.0,
    ) -> None:
        REDACTOR.add(token.get_secret_value())
        REDACTOR.install()
        self.token = token
        self.upstream_name = upstream
        self.fork_name = fork
        self.clone_dir = clone_dir
        self.store = store
        self.max_open_prs = max_open_prs
        # GitHub's own advice is serial writes at least a second apart; the library does it.
        self.gh = Github(
            base_url=api_url.rstrip("/"),
            auth=Auth.Token(token.get_secret_value()),
            retry=retry if retry is not None else make_retry(),
            timeout=timeout,
            per_page=100,
            seconds_between_requests=seconds_between_requests,
            seconds_between_writes=seconds_between_writes,
        )
        self._upstream: Repository | None = None
        self._fork: Repository | None = None
        self._clone: ForkClone | None = None

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> GitHubSink:
        if settings.github_token is None:
            raise ValueError("GitHubSink needs OEC_SYNC_GITHUB_TOKEN")
        base = settings.data_dir / "publisher"
        options: dict[str, Any] = {
            "token": settings.github_token,
            "upstream": settings.github_upstream,
            "fork": settings.github_fork,
            "clone_dir": base / "fork.git",
            "store": PrStore(base / "pulls.sqlite3"),
            "api_url": settings.github_api_url,
            "max_open_prs": settings.max_open_prs,
        }
        options.update(overrides)
        return cls(**options)

    # -- planning --------------------------------------------------------------------------

    def _repositories(self) -> tuple[Repository, Repository, ForkClone]:
        upstream = self.gh.get_repo(self.upstream_name)
        fork_name = self.fork_name or f"{self.gh.get_user().login}/{upstream.name}"
        fork = self.gh.get_repo(fork_name)
        clone = ForkClone(self.clone_dir, fork.clone_url, upstream.clone_url, self.token)
        self._upstream, self._fork, self._clone = upstream, fork, clone
        return upstream, fork, clone

    def _open_pulls(self, upstream: Repository, fork: Repository) -> dict[str, OpenPull]:
        """Our open pull requests by branch (GitHub is the truth; one list call per 100)."""
        known = {p.number: p.fingerprint for p in self.store.open_pulls()}
        found: dict[str, OpenPull] = {}
        for pull in upstream.get_pulls(state="open", sort="created", direction="asc"):
            head = pull.head
            repo = head.repo
            if repo is None or repo.full_name.lower() != fork.full_name.lower():
                continue
            if not head.ref.startswith(BRANCH_PREFIX) or head.ref in found:
                continue
            fp = known.get(pull.number) or prtext.fingerprint_of(pull.body) or ""
            found[head.ref] = OpenPull(
                pull.number,
                head.ref,
                fp,
                head.sha,
                pull.html_url,
                pull.title,
                pull.body or "",
                pull,
            )
        return found

    def _closures(self, upstream: Repository, open_pulls: dict[str, OpenPull]) -> list[Closure]:
        """Pull requests the store had open that GitHub no longer lists as open."""
        listed = {p.number for p in open_pulls.values()}
        closures: list[Closure] = []
        for stored in self.store.open_pulls():
            if stored.number in listed:
                continue
            try:
                pull = upstream.get_pull(stored.number)
                state, merged, head_sha = pull.state, bool(pull.merged), pull.head.sha
            except GithubException as exc:
                if exc.status != 404:
                    raise
                state, merged, head_sha = "closed", False, stored.head_sha
            if state == "open":
                continue  # listed late; it is adopted next run
            closures.append(
                Closure(
                    stored.number, stored.branch, stored.fingerprint, merged, head_sha, stored.url
                )
            )
        return closures

    def plan(self, proposals: list[Proposal], max_prs: int) -> PublishPlan:
        """Decide what to do with each proposal; writes nothing (the dry run)."""
        upstream, fork, clone = self._repositories()
        upstream_head, fork_head = clone.fetch(upstream.default_branch, fork.default_branch)
        sync = clone.fork_sync(fork.default_branch, fork_head, upstream_head)
        open_pulls = self._open_pulls(upstream, fork)
        closures = self._closures(upstream, open_pulls)
        stored_open = {p.number for p in self.store.open_pulls()}
        adopted = [p for p in open_pulls.values() if p.number not in stored_open]
        rejected = self.store.rejected_set() | {
            (c.branch, c.fingerprint) for c in closures if not c.merged and c.fingerprint
        }
        tips = clone.tips()
        items = self._classify(proposals, clone, upstream_head, tips, open_pulls, rejected)
        self._apply_cap(items, max_prs, len(open_pulls))
        deletions = self._deletions(closures, items, tips, open_pulls)
        return PublishPlan(
            fork=sync,
            base_branch=upstream.default_branch,
            upstream_head=upstream_head,
            items=items,
            closures=closures,
            deletions=deletions,
            adopted=adopted,
            open_count=len(open_pulls),
        )

    def _classify(
        self,
        proposals: list[Proposal],
        clone: ForkClone,
        head: str,
        tips: dict[str, Tip],
        open_pulls: dict[str, OpenPull],
        rejected: set[tuple[str, str]],
    ) -> list[PlanItem]:
        ordered = sorted(proposals, key=lambda p: p.file)
        at_head_files = clone.files_at(head) or {}
        diffs = clone.changes(t.sha for t in tips.values() if t.ours)
        items: list[PlanItem] = []
        seen: set[str] = set()
        for p in ordered:
            base_files = clone.files_at(p.base_commit)
            at_head = at_head_files.get(p.file)
            fp = fingerprint(p)
            tip = tips.get(p.branch)
            pull = open_pulls.get(p.branch)
            item = PlanItem(p, Action.FAIL, fp, pull=pull, tip=tip)
            items.append(item)
            if p.branch in seen:
                item.reason = f"another file of this run maps to branch {p.branch}"
                continue
            seen.add(p.branch)
            if base_files is None:
                item.reason = f"base commit {p.base_commit[:12] or '(none)'} is not upstream's"
                continue
            if base_files.get(p.file) != at_head:
                item.reason = (
                    f"{p.file} changed upstream since {p.base_commit[:12]}; "
                    "proposed again from the next index"
                )
                continue
            # The fork branch proposes this very diff: our one-file commit, the same new text,
            # on a parent whose copy of the file is upstream's current one (so an unrelated
            # upstream commit does not make every open pull request move).
            diff = diffs.get(tip.sha, {}) if tip is not None else {}
            same = (
                tip is not None
                and tip.ours
                and list(diff) == [p.file]
                and diff[p.file] == (at_head, blob_sha(p.text.encode("utf-8")))
            )
            if pull is not None:
                if (same or (tip is not None and not tip.ours)) and pull.fingerprint == fp:
                    item.action = Action.KEEP
                elif tip is not None and not tip.ours:
                    # A maintainer (or anyone with push access) committed to the branch:
                    # forcing our new version over it would throw their work away.
                    item.action = Action.HOLD
                    item.reason = "the branch has commits by someone else; left as it is"
                elif (p.branch, fp) in rejected:
                    item.action = Action.SUPPRESS
                    item.reason = "a maintainer closed this change unmerged before"
                else:
                    item.action, item.push = Action.UPDATE, not same
            elif (p.branch, fp) in rejected:
                item.action = Action.SUPPRESS
                item.reason = "a maintainer closed this change unmerged before"
            else:
                item.action, item.push = Action.OPEN, not same
        return items

    def _apply_cap(self, items: list[PlanItem], max_prs: int, open_count: int) -> None:
        """Updates first (open PRs stay right), then new PRs, both oldest-waiting first."""
        waiting = self.store.queue_order()

        def order(item: PlanItem) -> tuple[float, str]:
            return (waiting.get(item.proposal.branch, math.inf), item.proposal.file)

        budget = max_prs if max_prs > 0 else math.inf
        room = self.max_open_prs - open_count if self.max_open_prs > 0 else math.inf
        for action in (Action.UPDATE, Action.OPEN):
            for item in sorted((i for i in items if i.action is action), key=order):
                if budget <= 0 or (action is Action.OPEN and room <= 0):
                    item.action, item.push = Action.QUEUE, False
                    limit = "open pull requests" if budget > 0 else "pull requests per run"
                    item.reason = f"over the cap of {limit}; proposed in a later run"
                    continue
                budget -= 1
                if action is Action.OPEN:
                    room -= 1

    def _deletions(
        self,
        closures: list[Closure],
        items: list[PlanItem],
        tips: dict[str, Tip],
        open_pulls: dict[str, OpenPull],
    ) -> list[Deletion]:
        """Branches of merged or closed PRs that are still on the fork and nobody needs."""
        pending: dict[str, list[tuple[int, str]]] = {}
        for stored in self.store.branches_to_delete():
            pending.setdefault(stored.branch, []).append((stored.number, stored.head_sha))
        for closure in closures:
            pending.setdefault(closure.branch, []).append((closure.number, closure.head_sha))
        pushed = {i.proposal.branch for i in items if i.push}
        deletions: list[Deletion] = []
        for branch, pulls in sorted(pending.items()):
            numbers = [n for n, _ in pulls]
            tip = tips.get(branch)
            if branch in open_pulls or branch in pushed:
                # A newer proposal reuses the branch: nothing to delete for the old PR.
                deletions.append(Deletion(branch, "", numbers))
            elif tip is None or tip.sha not in {sha for _, sha in pulls}:
                # Gone already, or it holds a newer commit of ours awaiting its PR.
                deletions.append(Deletion(branch, "", numbers))
            else:
                deletions.append(Deletion(branch, tip.sha, numbers))
        return deletions

    # -- carrying it out -------------------------------------------------------------------

    def dry_run(self, proposals: list[Proposal], max_prs: int) -> list[Published]:
        """The plan's outcomes; reads the fork and GitHub, writes nothing."""
        plan = self.plan(proposals, max_prs)
        log.info("dry run:\n%s", render_plan(plan))
        return plan.published()

    def publish(
        self, proposals: list[Proposal], max_prs: int, progress: Progress = QUIET
    ) -> list[Published]:
        """Plan and carry out; every proposal comes back with its state (sorted by file)."""
        self.progress = progress
        started = time.monotonic()
        try:
            plan = self.plan(proposals, max_prs)
            log.info("planned %d systems in %.1f s", len(proposals), time.monotonic() - started)
        except Exception as exc:
            if not (isinstance(exc, (GithubException, *UNAVAILABLE)) or is_git_error(exc)):
                raise
            reason = f"nothing published: {_error(exc)}"
            log.error("publisher: %s", reason)
            return [
                Published(proposal=p, state=PublishState.FAILED, error=reason) for p in proposals
            ]
        return self.execute(plan)

    def execute(self, plan: PublishPlan) -> list[Published]:
        """Carry out a plan made by this sink's last ``plan()``."""
        assert self._upstream is not None and self._fork is not None and self._clone is not None
        upstream, fork, clone = self._upstream, self._fork, self._clone
        if plan.fork and plan.fork.state is ForkState.FAST_FORWARD:
            clone.sync_fork(plan.fork)
            if plan.fork.error:
                log.error("fork %s not synced: %s", plan.fork.branch, REDACTOR(plan.fork.error))
        elif plan.fork and plan.fork.state is ForkState.DIVERGED:
            log.error(
                "fork %s has diverged from upstream; not synced (pull requests go on, based "
                "on upstream)",
                plan.fork.branch,
            )
        with self.store.transaction():
            for c in plan.closures:
                self.store.record_closed(
                    c.number, c.branch, c.fingerprint, c.merged, c.head_sha, c.url
                )
                how = "merged" if c.merged else "closed unmerged"
                log.info("PR #%d (%s) was %s", c.number, c.branch, how)
            for p in plan.adopted:
                self.store.record_open(p.number, p.branch, p.fingerprint, p.head_sha, p.url)

        started = time.monotonic()
        self._push(plan, clone)
        pushed = time.monotonic()
        self._pull_requests(plan, upstream, fork)
        log.info(
            "branches written and pushed in %.1f s, pull requests in %.1f s",
            pushed - started,
            time.monotonic() - pushed,
        )

        with self.store.transaction():
            self.store.enqueue(i.proposal.branch for i in plan.items if i.action is Action.QUEUE)
            self.store.dequeue(
                i.proposal.branch
                for i in plan.items
                if i.action in {Action.OPEN, Action.UPDATE, Action.KEEP, Action.SUPPRESS}
            )
        summary = ", ".join(f"{plan.count(a)} {a.value}" for a in Action if plan.count(a))
        log.info("published %d systems: %s", len(plan.items), summary or "nothing to do")
        return plan.published()

    def _push(self, plan: PublishPlan, clone: ForkClone) -> None:
        """Write every branch that must change (one pack), then push them (one push)."""
        to_push = [i for i in plan.items if i.push]
        commits = [i.proposal.branch_commit(plan.upstream_head) for i in to_push]
        try:
            write_branches(
                clone.path, commits, workers=min(4, os.cpu_count() or 1), progress=self.progress
            )
            written = clone.tips()
        except Exception as exc:
            if not is_git_error(exc):
                raise
            for item in to_push:
                item.action, item.reason = Action.FAIL, f"writing the branch: {_error(exc)}"
            written = {}
        updates: list[RefUpdate] = []
        for item in to_push:
            if item.action is not Action.FAIL:
                item.written = written[item.proposal.branch].sha
                updates.append(
                    RefUpdate(
                        item.proposal.branch, item.written, item.tip.sha if item.tip else None
                    )
                )
        updates += [RefUpdate(d.branch, None, d.expected) for d in plan.deletions if d.expected]
        started = time.monotonic()
        results = clone.push(updates) if updates else {}
        log.debug("pushed %d refs in %.1f s", len(updates), time.monotonic() - started)
        for item in to_push:
            error = results.get(item.proposal.branch)
            if error and item.action is not Action.FAIL:
                item.action, item.reason = Action.FAIL, REDACTOR(error)
                log.warning("%s: %s", item.proposal.branch, item.reason)
        done: list[int] = []
        for deletion in plan.deletions:
            error = results.get(deletion.branch) if deletion.expected else None
            if error:
                log.warning("branch %s not deleted: %s", deletion.branch, REDACTOR(error))
            else:
                done += deletion.numbers
                if deletion.expected:
                    log.info("deleted branch %s on the fork", deletion.branch)
        with self.store.transaction():
            self.store.mark_branch_deleted(done)

    def _pull_requests(self, plan: PublishPlan, upstream: Repository, fork: Repository) -> None:
        """Open or update pull requests, one at a time; a failure costs only its system."""
        owner = fork.full_name.split("/", 1)[0]
        stopped: str | None = None
        for item in sorted(plan.items, key=lambda i: i.proposal.file):
            if item.action not in {Action.OPEN, Action.UPDATE}:
                continue
            if stopped:
                item.action, item.reason = Action.FAIL, f"not attempted: {stopped}"
                continue
            p = item.proposal
            body = prtext.with_fingerprint(p.body, item.fingerprint)
            try:
                if item.action is Action.OPEN:
                    pull = self._open(upstream, owner, plan.base_branch, p, body)
                else:
                    assert item.pull is not None and item.pull.pull is not None
                    pull = item.pull.pull
                    if pull.title != p.title or pull.body != body:
                        pull.edit(title=p.title, body=body)
            except Exception as exc:
                if not isinstance(exc, (GithubException, *UNAVAILABLE)):
                    raise
                item.action, item.reason = Action.FAIL, _error(exc)
                log.warning("%s: pull request failed: %s", p.branch, item.reason)
                if unavailable(exc):
                    stopped = f"GitHub unavailable ({item.reason})"
                continue
            head_sha = item.written or pull.head.sha
            item.pull = OpenPull(
                pull.number,
                p.branch,
                item.fingerprint,
                head_sha,
                pull.html_url,
                p.title,
                body,
                pull,
            )
            with self.store.transaction():
                self.store.record_open(
                    pull.number, p.branch, item.fingerprint, head_sha, pull.html_url
                )
            verb = "opened" if item.action is Action.OPEN else "updated"
            log.info("PR #%d %s for %s", pull.number, verb, p.file)

    def _open(
        self, upstream: Repository, owner: str, base: str, proposal: Proposal, body: str
    ) -> PullRequest:
        head = f"{owner}:{proposal.branch}"
        try:
            return upstream.create_pull(
                base=base, head=head, title=proposal.title, body=body, maintainer_can_modify=True
            )
        except GithubException as exc:
            # A retried POST whose first attempt did go through: adopt that pull request.
            if not _already_exists(exc):
                raise
            for pull in upstream.get_pulls(state="open", head=head):
                if pull.title != proposal.title or pull.body != body:
                    pull.edit(title=proposal.title, body=body)
                return pull
            raise
