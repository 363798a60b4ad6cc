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

    def publish(self, proposals: list[Proposal], max_prs: int) -> list[Published]:
        """Proposals already on their branch stay; at most ``max_prs`` new ones (0 = all)."""
        commits = {p.file: p.branch_commit() for p in proposals}
        tips = existing_tips(self.repo, list(commits.values()))
        results: list[Published] = []
        to_write: list[Proposal] = []
        for proposal in proposals:
            commit = commits[proposal.file]
            if up_to_date(commit, tips):
                results.append(Published(proposal=proposal, state=PublishState.UP_TO_DATE))
            elif max_prs and len(to_write) >= max_prs:
                results.append(Published(proposal=proposal, state=PublishState.QUEUED))
            else:
                to_write.append(proposal)
        todo = [commits[p.file] for p in to_write]
        written = write_branches(self.repo, todo, workers=os.cpu_count() or 1)
        assert len(written) == len(to_write)
        for proposal in to_write:
            updated = proposal.branch in tips
            state = PublishState.UPDATED if updated else PublishState.OPENED
            results.append(Published(proposal=proposal, state=state))
        for result in results:
            if result.state is not PublishState.QUEUED:
                self._write_draft(result.proposal)
        return sorted(results, key=lambda r: r.proposal.file)

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
