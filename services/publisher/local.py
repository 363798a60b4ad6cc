"""Publishing without GitHub: branches in the local OEC checkout, PR drafts in an outbox."""

from __future__ import annotations

import json
import os
from pathlib import Path

from common.gitrepo import existing_tips, up_to_date, write_branches
from common.proposals import Proposal
from services.publisher.model import Published, PublishState


class LocalSink:
    """Writes each proposal as a branch of ``repo`` and its PR text into ``outbox``."""

    def __init__(self, repo: Path, outbox: Path) -> None:
        self.repo = repo
        self.outbox = outbox

    def plan(self, proposals: list[Proposal], max_prs: int) -> list[Published]:
        """What :meth:`publish` would do, writing nothing: proposals already on their branch
        stay, at most ``max_prs`` others (0 = all) are opened or updated, the rest queue."""
        tips = existing_tips(self.repo, [p.branch_commit() for p in proposals])
        results: list[Published] = []
        taken = 0
        for proposal in proposals:
            if up_to_date(proposal.branch_commit(), tips):
                state = PublishState.UP_TO_DATE
            elif max_prs and taken >= max_prs:
                state = PublishState.QUEUED
            else:
                taken += 1
                state = PublishState.UPDATED if proposal.branch in tips else PublishState.OPENED
            results.append(Published(proposal=proposal, state=state))
        return sorted(results, key=lambda r: r.proposal.file)

    def dry_run(self, proposals: list[Proposal], max_prs: int) -> list[Published]:
        return self.plan(proposals, max_prs)

    def publish(self, proposals: list[Proposal], max_prs: int) -> list[Published]:
        """Write the branches and drafts of :meth:`plan`."""
        results = self.plan(proposals, max_prs)
        todo = [
            r.proposal.branch_commit()
            for r in results
            if r.state in {PublishState.OPENED, PublishState.UPDATED}
        ]
        write_branches(self.repo, todo, workers=os.cpu_count() or 1)
        for result in results:
            if result.state is not PublishState.QUEUED:
                self._write_draft(result.proposal)
        return results

    def _write_draft(self, proposal: Proposal) -> None:
        self.outbox.mkdir(parents=True, exist_ok=True)
        stem = proposal.branch.removeprefix("oec-sync/")
        draft = {
            "branch": proposal.branch,
            "file": proposal.file,
            "base": proposal.base_commit,
            "title": proposal.title,
            "body": proposal.body,
        }
        _write_if_changed(self.outbox / f"{stem}.json", json.dumps(draft, indent=2) + "\n")
        _write_if_changed(self.outbox / f"{stem}.md", f"# {proposal.title}\n\n{proposal.body}")


def _write_if_changed(path: Path, text: str) -> None:
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
