"""Real repositories and a fake GitHub for the publisher's tests.

``world`` is a bare upstream made from real OEC files, a bare fork cloned from it, a local
HTTP server speaking the GitHub endpoints the publisher uses (recording every call), and
helpers to build proposals by editing one real value in a real system file.
"""

from __future__ import annotations

import secrets
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from common.proposals import Proposal
from services.publisher.github import GitHubSink
from services.publisher.pr_store import PrStore
from services.publisher.retry import make_retry
from testing.fakegithub import FakeGitHub
from testing.proposals import FORK, UPSTREAM, VALUE, proposal_for
from tests.gitutil import git
from tests.paths import SAMPLE

SYSTEMS = SAMPLE / "oec" / "systems"


# Copies of real files under names git, GitHub and our branch encoding find awkward.
ODD_NAMES = {
    "systems/Gliese 3'x b.xml": "GJ 27.1.xml",
    "systems/Ünïcødé Ω Cen.xml": "GJ 687.xml",
    "systems/-leading dash.xml": "GQ Lup.xml",
    "systems/under_score%20.xml": "HAT-P-14.xml",
}


def real_files(n: int) -> list[str]:
    """``n`` real system files that have a value to change, as repo paths."""
    found = [
        f"systems/{p.name}"
        for p in sorted(SYSTEMS.glob("*.xml"))
        if VALUE.search(p.read_text(encoding="utf-8"))
    ]
    assert len(found) >= n
    return found[:n]


@dataclass
class World:
    root: Path
    work: Path  # the maintainers' checkout; pushes to upstream
    upstream: Path
    fork: Path
    github: FakeGitHub
    token: str
    sleeps: list[float] = field(default_factory=list)
    now: float = 1_800_000_000.0
    stores: list[PrStore] = field(default_factory=list)

    @property
    def data(self) -> Path:
        return self.root / "data"

    def head(self) -> str:
        return git(self.upstream, "rev-parse", "refs/heads/master").strip()

    def text(self, file: str, commit: str | None = None) -> str:
        return git(self.upstream, "show", f"{commit or self.head()}:{file}")

    def proposal(self, file: str, variant: str = "1", base: str | None = None) -> Proposal:
        base = base or self.head()
        return proposal_for(file, self.text(file, base), base, variant)

    def proposals(self, files: list[str], variant: str = "1") -> list[Proposal]:
        return [self.proposal(f, variant) for f in files]

    def sink(self, **overrides: Any) -> GitHubSink:
        """A fresh sink over the same data directory: what the next run's process builds."""
        store = PrStore(self.data / "pulls.sqlite3")
        self.stores.append(store)
        options: dict[str, Any] = {
            "token": SecretStr(self.token),
            "upstream": UPSTREAM,
            "fork": None,  # found through GET /user, as without OEC_SYNC_GITHUB_FORK
            "clone_dir": self.data / "fork.git",
            "store": store,
            "api_url": self.github.url,
            "retry": make_retry(
                sleep=self.sleeps.append, clock=lambda: self.now, backoff_factor=0.5
            ),
            "seconds_between_requests": 0,
            "seconds_between_writes": 0,
        }
        options.update(overrides)
        return GitHubSink(**options)

    def fork_branches(self) -> dict[str, str]:
        out = git(self.fork, "for-each-ref", "--format=%(refname:lstrip=2) %(objectname)")
        refs = dict(line.rsplit(" ", 1) for line in out.splitlines())
        return {k: v for k, v in refs.items() if k.startswith("oec-sync/")}

    def fork_pushes(self) -> list[str]:
        """Every ref update the fork has received: "<old> <new> <ref>" lines."""
        log = self.root / "fork-pushes.log"
        return log.read_text(encoding="utf-8").splitlines() if log.exists() else []

    def reject_pushes_to(self, branch: str) -> None:
        """Make the fork refuse updates of one branch (an ``update`` hook), as a server may."""
        hook = self.fork / "hooks" / "update"
        hook.write_text(f'#!/bin/sh\n[ "$1" = "refs/heads/{branch}" ] && exit 1\nexit 0\n')
        hook.chmod(0o755)

    def commit_upstream(self, file: str, text: str, message: str = "maintainer edit") -> str:
        path = self.work / file
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        git(self.work, "add", "-A")
        git(self.work, "commit", "--quiet", "-m", message)
        git(self.work, "push", "--quiet", str(self.upstream), "master")
        return self.head()


def make_world(root: Path, github: FakeGitHub, token: str) -> World:
    work = root / "maintainer"
    (work / "systems").mkdir(parents=True)
    for path in sorted(SYSTEMS.glob("*.xml")):
        shutil.copyfile(path, work / "systems" / path.name)
    for name, source in ODD_NAMES.items():
        shutil.copyfile(SYSTEMS / source, work / name)
    git(work, "init", "--quiet", "--initial-branch=master")
    git(work, "add", "-A")
    git(work, "commit", "--quiet", "-m", "OEC snapshot")
    upstream, fork = root / "upstream.git", root / "fork.git"
    git(root, "clone", "--quiet", "--bare", str(work), str(upstream))
    git(root, "clone", "--quiet", "--bare", str(upstream), str(fork))
    # Every ref update the fork receives is logged: "nothing was pushed" is then a fact.
    hook = fork / "hooks" / "post-receive"
    hook.write_text(f'#!/bin/sh\ncat >> "{root}/fork-pushes.log"\n')
    hook.chmod(0o755)
    github.add_repo(UPSTREAM, upstream)
    github.add_repo(FORK, fork)
    return World(root, work, upstream, fork, github, token)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    token = "ghp_" + secrets.token_hex(18)
    with FakeGitHub(token, login="oec-bot") as github:
        w = make_world(tmp_path, github, token)
        yield w
        for store in w.stores:
            store.close()
