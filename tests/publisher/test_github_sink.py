"""GitHubSink end to end: real bare repositories, the fake GitHub, several runs in a row."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from common.gitrepo import branch_name
from services.publisher.model import PublishState
from services.publisher.plan import Action, render_plan
from services.publisher.pr_store import PrStore, PullState
from testing.proposals import new_system_proposal
from tests.gitutil import git

from .conftest import ODD_NAMES, World, real_files

OPENED, UPDATED, UP_TO_DATE = PublishState.OPENED, PublishState.UPDATED, PublishState.UP_TO_DATE
QUEUED, SUPPRESSED, FAILED = PublishState.QUEUED, PublishState.SUPPRESSED, PublishState.FAILED


def touched(repo: Path, commit: str) -> list[str]:
    out = git(repo, "diff-tree", "-z", "--no-commit-id", "--name-only", "-r", commit)
    return [f for f in out.split("\0") if f]


def parent(repo: Path, commit: str) -> str:
    return git(repo, "rev-parse", f"{commit}^").strip()


def is_ancestor(repo: Path, old: str, new: str) -> bool:
    done = subprocess.run(["git", "-C", str(repo), "merge-base", "--is-ancestor", old, new])
    return done.returncode == 0


def pull_of(world: World, file: str) -> dict:
    branch = branch_name(file)
    (pull,) = [p for p in world.github.pulls.values() if p["head_ref"] == branch]
    return pull


def test_first_run_opens_up_to_the_cap(world: World) -> None:
    files = real_files(6)
    proposals = world.proposals(files)
    results = world.sink().publish(proposals, 4)

    assert [r.proposal.file for r in results] == files
    assert [r.state for r in results] == [OPENED] * 4 + [QUEUED] * 2
    branches = world.fork_branches()
    assert set(branches) == {branch_name(f) for f in files[:4]}
    head = world.head()
    for proposal in proposals[:4]:
        tip = branches[proposal.branch]
        assert parent(world.fork, tip) == head
        assert touched(world.fork, tip) == [proposal.file]
        assert git(world.fork, "show", f"{tip}:{proposal.file}") == proposal.text
    posts = [c for c in world.github.calls if c.method == "POST"]
    assert [c.body["head"] for c in posts] == [f"oec-bot:{p.branch}" for p in proposals[:4]]
    for call, proposal, result in zip(posts, proposals, results, strict=False):
        assert call.body["base"] == "master"
        assert call.body["title"] == proposal.title
        assert call.body["maintainer_can_modify"] is True
        assert "| Object | Field | Old | New | Source | Source date |" in call.body["body"]
        assert "**Feedback:**" in call.body["body"]
        assert "<!-- oec-sync fingerprint: " in call.body["body"]
        assert result.url and result.url.endswith(f"/pull/{posts.index(call) + 1}")
    assert len(world.github.open_pulls()) == 4


def test_second_run_with_the_same_data_only_takes_the_queue(world: World) -> None:
    files = real_files(6)
    world.sink().publish(world.proposals(files), 4)
    branches, pushes, calls = world.fork_branches(), world.fork_pushes(), len(world.github.calls)

    results = world.sink().publish(world.proposals(files), 4)

    assert [r.state for r in results] == [UP_TO_DATE] * 4 + [OPENED] * 2
    writes = [c for c in world.github.calls[calls:] if c.method != "GET"]
    assert [(c.method, c.body["head"]) for c in writes] == [
        ("POST", f"oec-bot:{branch_name(f)}") for f in files[4:]
    ]
    new_pushes = world.fork_pushes()[len(pushes) :]
    assert sorted(line.split()[2] for line in new_pushes) == sorted(
        f"refs/heads/{branch_name(f)}" for f in files[4:]
    )
    assert {b: world.fork_branches()[b] for b in branches} == branches

    pushes, calls = world.fork_pushes(), len(world.github.calls)
    results = world.sink().publish(world.proposals(files), 4)
    assert [r.state for r in results] == [UP_TO_DATE] * 6
    assert [c for c in world.github.calls[calls:] if c.method != "GET"] == []
    assert world.fork_pushes() == pushes
    assert len(world.github.pulls) == 6


def test_the_queue_is_first_come_first_served(world: World) -> None:
    files = real_files(6)
    world.sink().publish(world.proposals(files[1:]), 2)  # opens 1, 2; queues 3, 4, 5
    results = world.sink().publish(world.proposals(files), 2)
    states = {r.proposal.file: r.state for r in results}
    # files[0] sorts first but arrived last: the ones waiting since the first run go first.
    assert [states[f] for f in files] == [QUEUED, UP_TO_DATE, UP_TO_DATE, OPENED, OPENED, QUEUED]
    results = world.sink().publish(world.proposals(files), 1)
    states = {r.proposal.file: r.state for r in results}
    assert states[files[5]] is OPENED and states[files[0]] is QUEUED


def test_a_changed_value_updates_the_open_pull_request(world: World) -> None:
    files = real_files(2)
    world.sink().publish(world.proposals(files), 0)
    number = pull_of(world, files[0])["number"]
    old_tip = world.fork_branches()[branch_name(files[0])]
    calls = len(world.github.calls)

    changed = [world.proposal(files[0], variant="7"), world.proposal(files[1])]
    results = world.sink().publish(changed, 0)

    assert [r.state for r in results] == [UPDATED, UP_TO_DATE]
    assert results[0].url and results[0].url.endswith(f"/pull/{number}")
    writes = [c for c in world.github.calls[calls:] if c.method != "GET"]
    assert [(c.method, c.path.rsplit("/", 1)[1]) for c in writes] == [("PATCH", str(number))]
    new_value = changed[0].changes[0].new.value
    assert new_value and f"| {new_value} |" in writes[0].body["body"]
    assert pull_of(world, files[0])["body"] == writes[0].body["body"]
    new_tip = world.fork_branches()[branch_name(files[0])]
    assert new_tip != old_tip and not is_ancestor(world.fork, old_tip, new_tip)  # forced
    assert parent(world.fork, new_tip) == world.head()
    assert git(world.fork, "show", f"{new_tip}:{files[0]}") == changed[0].text
    assert len(world.github.pulls) == 2


def test_a_change_closed_unmerged_is_not_proposed_again(world: World) -> None:
    files = real_files(2)
    world.sink().publish(world.proposals(files), 0)
    rejected = pull_of(world, files[0])["number"]
    world.github.close(rejected, merged=False)

    for _ in range(2):
        calls = len(world.github.calls)
        results = world.sink().publish(world.proposals(files), 0)
        assert [r.state for r in results] == [SUPPRESSED, UP_TO_DATE]
        assert results[0].error and "closed" in results[0].error
        assert not [c for c in world.github.calls[calls:] if c.method == "POST"]
        assert set(world.fork_branches()) == {branch_name(files[1])}  # deleted once closed

    # The source changes the value: that is a new proposal.
    results = world.sink().publish([world.proposal(files[0], variant="7")], 0)
    assert [r.state for r in results] == [OPENED]
    assert branch_name(files[0]) in world.fork_branches()
    reopened = [p for p in world.github.open_pulls() if p["head_ref"] == branch_name(files[0])]
    assert len(reopened) == 1 and reopened[0]["number"] != rejected


def test_merged_or_closed_branches_are_deleted_and_open_ones_never(world: World) -> None:
    files = real_files(3)
    world.sink().publish(world.proposals(files), 0)
    merged = pull_of(world, files[1])["number"]
    world.github.close(merged, merged=True)

    # files[0] is no longer proposed but its PR is open: its branch must stay.
    results = world.sink().publish([world.proposal(files[2])], 0)

    assert [r.state for r in results] == [UP_TO_DATE]
    assert set(world.fork_branches()) == {branch_name(files[0]), branch_name(files[2])}
    store = PrStore(world.data / "pulls.sqlite3")
    world.stores.append(store)
    stored = store.pull(merged)
    assert stored and stored.state is PullState.MERGED and stored.branch_deleted
    assert {p.number for p in store.open_pulls()} == {
        pull_of(world, f)["number"] for f in (files[0], files[2])
    }


def test_awkward_file_names_round_trip(world: World) -> None:
    nested = "systems/HD 1/2 (A'B) ü.xml"
    template = world.text("systems/11 Com.xml")
    proposals = [world.proposal(f) for f in ODD_NAMES]
    proposals.append(new_system_proposal(nested, world.head(), template))

    results = world.sink().publish(proposals, 0)

    assert {r.state for r in results} == {OPENED}
    branches = world.fork_branches()
    assert set(branches) == {
        "oec-sync/Gliese_3'x_b",
        "oec-sync/Ünïcødé_Ω_Cen",
        "oec-sync/%2Dleading_dash",
        "oec-sync/under%5Fscore%2520",
        "oec-sync/2_(A'B)_ü",
    }
    for proposal in proposals:
        tip = branches[proposal.branch]
        assert touched(world.fork, tip) == [proposal.file]
        assert git(world.fork, "show", f"{tip}:{proposal.file}") == proposal.text
        assert pull_of(world, proposal.file)["state"] == "open"
    pushes, calls = world.fork_pushes(), len(world.github.calls)
    results = world.sink().publish(proposals, 0)
    assert {r.state for r in results} == {UP_TO_DATE}
    assert world.fork_pushes() == pushes
    assert [c for c in world.github.calls[calls:] if c.method != "GET"] == []


def test_dry_run_plans_and_writes_nothing(world: World) -> None:
    files = real_files(5)
    sink = world.sink()
    plan = sink.plan(world.proposals(files), 3)

    assert [i.action for i in sorted(plan.items, key=lambda i: i.proposal.file)] == [
        Action.OPEN
    ] * 3 + [Action.QUEUE] * 2
    text = render_plan(plan)
    assert f"open     {files[0]}" in text and f"queue    {files[4]}" in text
    assert text.endswith("5 systems: 3 open, 2 queue")
    assert world.github.writes() == []
    assert world.fork_pushes() == [] and world.fork_branches() == {}
    assert sink.store.queue_order() == {}
    assert [p.state for p in plan.published()] == [OPENED] * 3 + [QUEUED] * 2


def test_fork_default_branch_is_fast_forwarded_to_upstream(world: World) -> None:
    other = real_files(4)[3]
    head = world.commit_upstream(other, world.text(other).replace("</system>", "</system>\n"))
    assert git(world.fork, "rev-parse", "master").strip() != head

    results = world.sink().publish(world.proposals(real_files(2)), 0)

    assert {r.state for r in results} == {OPENED}
    assert git(world.fork, "rev-parse", "master").strip() == head
    for tip in world.fork_branches().values():
        assert parent(world.fork, tip) == head


def test_a_diverged_fork_is_not_forced_and_reported(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    clone = world.root / "fork-work"
    git(world.root, "clone", "--quiet", str(world.fork), str(clone))
    (clone / "NOTES").write_text("someone's own commit on the fork\n")
    git(clone, "add", "NOTES")
    git(clone, "commit", "--quiet", "-m", "fork-only commit")
    git(clone, "push", "--quiet", "origin", "master")
    fork_master = git(world.fork, "rev-parse", "master").strip()
    world.commit_upstream("systems/11 Com.xml", world.text("systems/11 Com.xml") + "\n")

    sink = world.sink()
    results = sink.publish(world.proposals(real_files(3)[1:]), 0)

    assert git(world.fork, "rev-parse", "master").strip() == fork_master
    assert "diverged" in caplog.text
    # Pull requests are based on upstream, not on the fork's default branch: they go on.
    assert {r.state for r in results} == {OPENED}


def test_an_unrelated_upstream_commit_leaves_open_prs_alone(world: World) -> None:
    files = real_files(3)
    world.sink().publish(world.proposals(files[:2]), 0)
    world.commit_upstream(files[2], world.text(files[2]).replace("</system>", "</system>\n"))
    pushes, calls = world.fork_pushes(), len(world.github.calls)

    results = world.sink().publish(world.proposals(files[:2]), 0)  # indexed at the new head

    assert [r.state for r in results] == [UP_TO_DATE, UP_TO_DATE]
    # Only the fork's default branch moved (the sync); no proposal branch was pushed.
    assert [line.split()[2] for line in world.fork_pushes()[len(pushes) :]] == ["refs/heads/master"]
    assert [c for c in world.github.calls[calls:] if c.method != "GET"] == []


def test_a_proposal_older_than_an_upstream_edit_of_its_file_fails_alone(world: World) -> None:
    files = real_files(2)
    stale = world.proposal(files[0])
    world.commit_upstream(files[0], world.text(files[0]).replace("</system>", "</system>\n"))
    fresh = world.proposal(files[1])

    results = world.sink().publish([stale, fresh], 0)

    assert [r.state for r in results] == [FAILED, OPENED]
    assert results[0].error and "changed upstream" in results[0].error
    assert set(world.fork_branches()) == {branch_name(files[1])}


def test_a_branch_someone_else_committed_to_is_left_alone(world: World) -> None:
    files = real_files(1)
    world.sink().publish(world.proposals(files), 0)
    branch = branch_name(files[0])
    clone = world.root / "maintainer-fix"
    git(world.root, "clone", "--quiet", "--branch", branch, str(world.fork), str(clone))
    (clone / files[0]).write_text(world.text(files[0]) + "\n", encoding="utf-8")
    git(clone, "commit", "--quiet", "-am", "maintainer: fix the proposal")
    git(clone, "push", "--quiet", "origin", branch)
    edited = world.fork_branches()[branch]
    calls = len(world.github.calls)

    results = world.sink().publish([world.proposal(files[0], variant="7")], 0)

    assert [r.state for r in results] == [SUPPRESSED]
    assert results[0].error and "someone else" in results[0].error
    assert world.fork_branches()[branch] == edited
    assert [c for c in world.github.calls[calls:] if c.method != "GET"] == []
    # With nothing new from the source, the maintainer's version simply stands.
    results = world.sink().publish(world.proposals(files), 0)
    assert [r.state for r in results] == [UP_TO_DATE]
    assert world.fork_branches()[branch] == edited


def test_a_refused_push_fails_only_its_system(world: World) -> None:
    files = real_files(3)
    world.reject_pushes_to(branch_name(files[1]))

    results = world.sink().publish(world.proposals(files), 0)

    assert [r.state for r in results] == [OPENED, FAILED, OPENED]
    assert results[1].error and "push" in results[1].error
    heads = [c.body["head"] for c in world.github.calls if c.method == "POST"]
    assert f"oec-bot:{branch_name(files[1])}" not in heads

    (world.fork / "hooks" / "update").unlink()
    results = world.sink().publish(world.proposals(files), 0)
    assert [r.state for r in results] == [UP_TO_DATE, OPENED, UP_TO_DATE]


def test_a_failed_pull_request_is_retried_next_run_without_pushing_again(world: World) -> None:
    files = real_files(3)
    world.github.fail("POST", r"/pulls$", 422, body={"message": "Validation Failed"})

    results = world.sink().publish(world.proposals(files), 0)

    assert [r.state for r in results] == [FAILED, OPENED, OPENED]
    assert results[0].error and "422" in results[0].error
    assert branch_name(files[0]) in world.fork_branches()
    pushes = world.fork_pushes()
    results = world.sink().publish(world.proposals(files), 0)
    assert [r.state for r in results] == [OPENED, UP_TO_DATE, UP_TO_DATE]
    assert world.fork_pushes() == pushes


def test_a_cap_on_open_pull_requests(world: World) -> None:
    files = real_files(5)
    results = world.sink(max_open_prs=3).publish(world.proposals(files), 0)
    assert [r.state for r in results] == [OPENED] * 3 + [QUEUED] * 2
    results = world.sink(max_open_prs=3).publish(world.proposals(files), 0)
    assert [r.state for r in results] == [UP_TO_DATE] * 3 + [QUEUED] * 2
    world.github.close(pull_of(world, files[0])["number"])
    results = world.sink(max_open_prs=3).publish(world.proposals(files), 0)
    assert [r.state for r in results] == [SUPPRESSED, UP_TO_DATE, UP_TO_DATE, OPENED, QUEUED]


def test_open_prs_are_adopted_when_the_database_is_lost(world: World) -> None:
    files = real_files(3)
    world.sink().publish(world.proposals(files), 0)
    for store in world.stores:
        store.close()
    world.stores.clear()
    for path in world.data.glob("pulls.sqlite3*"):
        path.unlink()
    pushes, calls = world.fork_pushes(), len(world.github.calls)

    results = world.sink().publish(world.proposals(files), 0)

    # The fingerprint in each PR body says they already propose exactly this.
    assert [r.state for r in results] == [UP_TO_DATE] * 3
    assert world.fork_pushes() == pushes
    assert [c for c in world.github.calls[calls:] if c.method != "GET"] == []
