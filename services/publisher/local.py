"""Publishing without GitHub: branches in the local OEC checkout, PR drafts in an outbox.

A run's branches and drafts appear together or not at all: the commits are staged first
(:class:`common.gitwrite.Writer`), every changed draft is written beside its final name,
the ref transaction is prepared (every branch locked and checked), and only then are the
refs committed and the drafts renamed into place, with SIGINT/SIGTERM held back for those
few milliseconds. An interrupt before that point leaves nothing; the next run removes any
temporary draft a killed run left (``*.tmp``, written only under the writer's lock).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path

from common.gitrepo import (
    BRANCH_PREFIX,
    BranchCommit,
    BranchTip,
    blob_sha,
    branch_name,
    existing_tips,
    git,
    remember_tip,
    up_to_date,
)
from common.gitwrite import Writer, cleaned_line, updates_for
from common.interrupts import checkpoint, deferred
from common.memo import Store
from common.progress import QUIET, Progress
from common.proposals import Proposal
from runtime.forked import Ahead
from services.publisher.model import Published, PublishState

TMP = ".tmp"


class LocalSink:
    """Writes each proposal as a branch of ``repo`` and its PR text into ``outbox``;
    ``memo`` remembers what its branches hold (:func:`common.gitrepo.existing_tips`). With
    ``processes`` of 2 or more, a child process writes the drafts while this one writes the
    branches' objects."""

    def __init__(
        self, repo: Path, outbox: Path, memo: Store | None = None, processes: int = 1
    ) -> None:
        self.repo = repo
        self.outbox = outbox
        self.memo = memo
        self.processes = processes
        # What the last publish put in place (branches, drafts); None until its commit.
        self.written: tuple[int, int] | None = None

    def _plan(
        self, proposals: list[Proposal], max_prs: int
    ) -> tuple[list[Published], dict[str, BranchTip]]:
        tips = existing_tips(self.repo, [p.branch_commit() for p in proposals], self.memo)
        results: list[Published] = []
        taken = 0
        for proposal in proposals:
            if up_to_date(proposal.branch_commit(), tips):
                state = PublishState.UP_TO_DATE
                # The branch stays on its parent, so its draft keeps naming that base.
                proposal = proposal.model_copy(update={"base_commit": tips[proposal.branch].parent})
            elif max_prs and taken >= max_prs:
                state = PublishState.QUEUED
            else:
                taken += 1
                state = PublishState.UPDATED if proposal.branch in tips else PublishState.OPENED
            results.append(Published(proposal=proposal, state=state))
        return sorted(results, key=lambda r: r.proposal.file), tips

    def takes_slot(self, base: str, files: Collection[str]) -> Callable[[Proposal], bool]:
        """The rule :meth:`plan` caps by: a proposal counts unless its branch already holds
        it. Only existing branches are looked at (a first run has none), the tips of those
        of ``files`` at once, any other's when it is asked about."""
        listed = git(
            self.repo, "for-each-ref", "--format=%(refname)", f"refs/heads/{BRANCH_PREFIX}"
        )
        present = {ref.removeprefix("refs/heads/") for ref in listed.splitlines()}
        asked = {f for f in files if branch_name(f) in present}
        tips = existing_tips(
            self.repo, [BranchCommit(branch_name(f), base, f, "", "") for f in asked], self.memo
        )

        def takes(proposal: Proposal) -> bool:
            if proposal.branch not in present:
                return True
            commit = proposal.branch_commit()
            if proposal.file not in asked:
                asked.add(proposal.file)
                tips.update(existing_tips(self.repo, [commit], self.memo))
            return not up_to_date(commit, tips)

        return takes

    def plan(self, proposals: list[Proposal], max_prs: int) -> list[Published]:
        """What :meth:`publish` would do, writing nothing: proposals already on their branch
        stay, at most ``max_prs`` others (0 = all) are opened or updated, the rest queue."""
        return self._plan(proposals, max_prs)[0]

    def dry_run(self, proposals: list[Proposal], max_prs: int) -> list[Published]:
        return self.plan(proposals, max_prs)

    def publish(
        self, proposals: list[Proposal], max_prs: int, progress: Progress = QUIET
    ) -> list[Published]:
        """Write the branches and drafts of :meth:`plan`, all of them or none."""
        self.written = None
        results, tips = self._plan(proposals, max_prs)
        todo = [
            r.proposal.branch_commit()
            for r in results
            if r.state in {PublishState.OPENED, PublishState.UPDATED}
        ]
        drafts = [r.proposal for r in results if r.state is not PublishState.QUEUED]
        with Writer(self.repo) as writer:
            cleaned = writer.cleaned + self._clean_outbox(writer.locked_at)
            if cleaned:
                progress.note(cleaned_line(cleaned))
            staged: list[StagedDraft] = []
            moved = 0  # of staged, in place
            changed = 0
            try:
                progress.stage("drafts", len(drafts))
                self.outbox.mkdir(parents=True, exist_ok=True)
                present = {entry.name: entry for entry in os.scandir(self.outbox)}
                files: list[tuple[str, bytes]] = []
                for proposal in drafts:
                    to_write = self._stage_draft(proposal, present)
                    files += ((d.temporary, data) for d, data in to_write)
                    staged += (draft for draft, _ in to_write)
                    changed += bool(to_write)
                    progress.advance()
                    checkpoint("drafts")
                # Creating 8,660 files is the kernel's CPU (~0.4 s), hashing and packing the
                # branches this process's: a child creates the files meanwhile. Closed (the
                # child killed) before the finally below removes what it wrote.
                with Ahead(self.processes, _write_all, "draft writer") as writing:
                    if len(files) >= MIN_FORKED_WRITES:
                        writing.start([[("drafts", files)]])
                    ids = writer.stage(todo, workers=os.cpu_count() or 1, progress=progress)
                    if writing.value("drafts") is None:  # not given, or failed there
                        _write_all(files)  # a draft that cannot be written fails the run here
                del files
                progress.stage("refs", len(todo))
                with writer.transaction(updates_for(todo, ids, tips)) as refs:
                    if todo:
                        refs.prepare()
                    checkpoint("refs")
                    with deferred():
                        if todo:
                            refs.commit()
                            progress.advance(len(todo))
                        for draft in staged:
                            os.replace(draft.temporary, draft.final)
                            moved += 1
                        self.written = (len(todo), changed)
                if self.memo is not None:
                    for commit in todo:
                        blob = blob_sha(commit.text.encode("utf-8"))
                        remember_tip(
                            self.memo, commit.branch, ids[commit.branch], commit.file, blob
                        )
                    for draft in staged:
                        self._remember_draft(draft.final, draft.digest, os.stat(draft.final))
            finally:
                for draft in staged[moved:]:
                    Path(draft.temporary).unlink(missing_ok=True)
        return results

    def _clean_outbox(self, before: float) -> list[str]:
        """Temporary drafts of a run that was stopped (older than the writer's lock)."""
        if not self.outbox.is_dir():
            return []
        stale = [p for p in self.outbox.glob(f"*{TMP}") if p.stat().st_mtime < before]
        for path in stale:
            path.unlink(missing_ok=True)
        return [f"{len(stale)} temporary draft{'s' * (len(stale) != 1)}"] if stale else []

    def _stage_draft(
        self, proposal: Proposal, present: dict[str, os.DirEntry[str]]
    ) -> list[tuple[StagedDraft, bytes]]:
        """The draft's files that change, each with what to write (``present``: the outbox's
        entries, listed once rather than looked up file by file)."""
        stem = proposal.branch.removeprefix("oec-sync/")
        staged: list[tuple[StagedDraft, bytes]] = []
        for name, text in draft_files(stem, proposal).items():
            data = text.encode("utf-8")
            digest = hashlib.sha256(data).hexdigest()
            entry = present.get(name)
            if entry is not None and self._holds(entry, digest, data):
                continue
            path = os.path.join(self.outbox, name)
            staged.append((StagedDraft(path + TMP, path, digest), data))
        return staged

    def _holds(self, entry: os.DirEntry[str], digest: str, data: bytes) -> bool:
        """Whether the outbox's file holds ``data`` (of ``digest``). A file this sink wrote or
        read before, untouched since (same size and modification time), is not read again:
        yesterday's 8,660 drafts are rarely in the page cache (1.1 s to read them)."""
        stamp = entry.stat()
        if self.memo is not None and self.memo.get("draft", entry.name, digest) == _stamp(stamp):
            return True
        with open(entry.path, "rb") as existing:
            if existing.read() != data:
                return False
        self._remember_draft(entry.path, digest, stamp)
        return True

    def _remember_draft(self, path: str, digest: str, stamp: os.stat_result) -> None:
        if self.memo is not None:
            self.memo.put("draft", os.path.basename(path), digest, _stamp(stamp))


def _stamp(stat: os.stat_result) -> bytes:
    return f"{stat.st_size} {stat.st_mtime_ns}".encode()


@dataclass(frozen=True)
class StagedDraft:
    """A draft file written beside its final name, and the digest of what it holds."""

    temporary: str
    final: str
    digest: str


# Fewer drafts than this are written by the run itself: a fork costs more than they do.
MIN_FORKED_WRITES = 500


def _write_all(files: list[tuple[str, bytes]]) -> bytes:
    """Write each (path, data); nothing to send back."""
    for path, data in files:
        with open(path, "wb") as out:
            out.write(data)
    return b""


def draft_files(stem: str, proposal: Proposal) -> dict[str, str]:
    """A proposal's PR draft: ``<stem>.json`` (branch, file, base, title, body) and
    ``<stem>.md`` (the PR as a maintainer reads it)."""
    draft = {
        "branch": proposal.branch,
        "file": proposal.file,
        "base": proposal.base_commit,
        "title": proposal.title,
        "body": proposal.body,
    }
    # json.dumps(draft, indent=2), written out: an indent makes json encode in Python, not
    # in C (0.2 s for 4,330 drafts); the values are strings, so the layout is fixed.
    fields = ",\n".join(f"  {json.dumps(key)}: {json.dumps(value)}" for key, value in draft.items())
    return {
        f"{stem}.json": "{\n" + fields + "\n}\n",
        f"{stem}.md": f"# {proposal.title}\n\n{proposal.body}",
    }
