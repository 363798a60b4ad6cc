"""One seam, two sinks: GitHub with a token, the local checkout and outbox without."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import IO, Any

import pytest
from pydantic import SecretStr

from common.gitrepo import head_commit
from runtime.config import Settings
from runtime.memo import Memo
from services.publisher import local
from services.publisher.github import GitHubSink
from services.publisher.local import LocalSink
from services.publisher.model import PublishState
from services.publisher.sinks import sink_from_settings
from testing.proposals import FORK, UPSTREAM, proposal_for
from tests.gitutil import git, make_repo

from .conftest import World, real_files


def test_without_a_token_the_local_sink_writes_branches_and_drafts(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "oec")
    settings = Settings(oec_repo=repo, data_dir=tmp_path / "data", github_token=None)
    sink = sink_from_settings(settings)
    assert isinstance(sink, LocalSink)

    file = real_files(1)[0]
    base = head_commit(repo)
    proposal = proposal_for(file, (repo / file).read_text(encoding="utf-8"), base)
    results = sink.publish([proposal], 20)

    assert [r.state for r in results] == [PublishState.OPENED]
    assert git(repo, "show", f"{proposal.branch}:{file}") == proposal.text
    drafts = sorted(p.name for p in settings.outbox_dir.iterdir())
    assert drafts == [f"{proposal.branch.removeprefix('oec-sync/')}.{e}" for e in ("json", "md")]


def test_with_a_token_the_github_sink_is_built_from_settings(world: World) -> None:
    settings = Settings(
        data_dir=world.data,
        github_token=SecretStr(world.token),
        github_api_url=world.github.url + "/",
        github_upstream=UPSTREAM,
        github_fork=FORK,
    )
    sink = sink_from_settings(settings)
    assert isinstance(sink, GitHubSink)
    world.stores.append(sink.store)
    assert sink.clone_dir == world.data / "publisher" / "fork.git"
    assert sink.store.path == world.data / "publisher" / "pulls.sqlite3"
    results = sink.publish(world.proposals(real_files(1)), settings.max_prs)
    assert [r.state for r in results] == [PublishState.OPENED]
    assert not any(c.path == "/user" for c in world.github.calls)  # the fork was named


def test_a_remembered_branch_tip_is_trusted_only_while_the_branch_stays_on_it(
    tmp_path: Path,
) -> None:
    repo = make_repo(tmp_path / "oec")
    file = real_files(1)[0]
    base = head_commit(repo)
    proposal = proposal_for(file, (repo / file).read_text(encoding="utf-8"), base)
    with Memo(tmp_path / "memo.sqlite3") as memo:
        sink = LocalSink(repo, tmp_path / "outbox", memo)
        assert [r.state for r in sink.publish([proposal], 0)] == [PublishState.OPENED]
        memo.save()  # as a run saves at its end
        assert [r.state for r in sink.publish([proposal], 0)] == [PublishState.UP_TO_DATE]
        # The tip written was remembered, not looked up; so were both drafts, not read.
        assert memo.hits == 3
        # Someone else moves the branch to another change of the same file.
        other = proposal_for(file, (repo / file).read_text(encoding="utf-8"), base, "2")
        LocalSink(repo, tmp_path / "elsewhere").publish([other], 0)
        assert git(repo, "show", f"{proposal.branch}:{file}") == other.text

        assert [r.state for r in sink.publish([proposal], 0)] == [PublishState.UPDATED]
    assert git(repo, "show", f"{proposal.branch}:{file}") == proposal.text


def test_a_draft_is_the_pr_as_json_and_markdown_and_is_rewritten_only_when_it_changes(
    tmp_path: Path,
) -> None:
    repo = make_repo(tmp_path / "oec")
    outbox = tmp_path / "outbox"
    file = real_files(1)[0]
    proposal = proposal_for(file, (repo / file).read_text(encoding="utf-8"), head_commit(repo))
    proposal.body += '\n\nA "quoted" line, a tab\tand Ångström.'
    LocalSink(repo, outbox).publish([proposal], 0)

    stem = proposal.branch.removeprefix("oec-sync/")
    written = (outbox / f"{stem}.json").read_text(encoding="utf-8")
    expected = {
        "branch": proposal.branch,
        "file": proposal.file,
        "base": proposal.base_commit,
        "title": proposal.title,
        "body": proposal.body,
    }
    assert written == json.dumps(expected, indent=2) + "\n"  # the layout drafts always had
    assert (outbox / f"{stem}.md").read_text(encoding="utf-8") == (
        f"# {proposal.title}\n\n{proposal.body}"
    )
    before = {p.name: p.stat().st_mtime_ns for p in outbox.iterdir()}
    LocalSink(repo, outbox).publish([proposal], 0)  # the branch holds it already
    assert {p.name: p.stat().st_mtime_ns for p in outbox.iterdir()} == before


def test_a_draft_the_sink_wrote_is_not_read_again_until_someone_touches_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = make_repo(tmp_path / "oec")
    outbox = tmp_path / "outbox"
    file = real_files(1)[0]
    proposal = proposal_for(file, (repo / file).read_text(encoding="utf-8"), head_commit(repo))
    with Memo(tmp_path / "memo.sqlite3") as memo:
        LocalSink(repo, outbox, memo).publish([proposal], 0)
    opened: list[str] = []

    def counting(path: str, mode: str = "r", *args: Any, **kwargs: Any) -> IO[Any]:
        opened.append(os.path.basename(path))
        return open(path, mode, *args, **kwargs)

    monkeypatch.setattr(local, "open", counting, raising=False)
    with Memo(tmp_path / "memo.sqlite3") as memo:
        LocalSink(repo, outbox, memo).publish([proposal], 0)
    assert opened == []  # both drafts known by size and modification time

    markdown = outbox / f"{proposal.branch.removeprefix('oec-sync/')}.md"
    markdown.write_text("edited by hand\n", encoding="utf-8")
    with Memo(tmp_path / "memo.sqlite3") as memo:
        LocalSink(repo, outbox, memo).publish([proposal], 0)
    assert markdown.read_text(encoding="utf-8") == f"# {proposal.title}\n\n{proposal.body}"
    assert opened == [markdown.name, markdown.name + ".tmp"]  # read, found edited, rewritten
