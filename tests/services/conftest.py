"""A cluster of real service processes on a private topology, and the embedded reference."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from common.records import Source
from tests.brokerutil import (
    ServiceProcess,
    broker_env,
    cleanup,
    oec_sync,
    require_broker,
    settings_for,
    unique_prefix,
    wait_for,
)
from tests.gitutil import make_repo
from tests.paths import SAMPLE

NASA = SAMPLE / "nasa.csv"
EU = SAMPLE / "eu.csv"


def branches(repo: Path) -> dict[str, tuple[str, str, str]]:
    """Each oec-sync branch: (tree, parent, message): what a run wrote, minus commit times."""
    out = subprocess.run(
        [
            "git",
            "-C",
            str(repo),
            "for-each-ref",
            "--format=%(refname)%00%(tree)%00%(parent)%00%(contents)%00%(objectname)%01",
            "refs/heads/oec-sync/",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    result = {}
    for record in filter(None, (r.strip("\n") for r in out.split("\x01"))):
        ref, tree, parent, message, _ = record.split("\x00")
        result[ref] = (tree, parent, message)
    return result


def tips(repo: Path) -> dict[str, str]:
    """Each oec-sync branch's commit id: changes whenever a branch is rewritten."""
    out = subprocess.run(
        ["git", "-C", str(repo), "for-each-ref", "--format=%(refname) %(objectname)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return dict(line.split() for line in out.splitlines() if "oec-sync/" in line)


def drafts(outbox: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(outbox.glob("*"))} if outbox.exists() else {}


@dataclass
class Reference:
    """What ``oec-sync run`` produced on the same inputs."""

    run_id: str
    branches: dict[str, tuple[str, str, str]]
    drafts: dict[str, str]
    report: dict[str, Any]


@pytest.fixture(scope="session")
def template_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample OEC as a git repository; every test works on a copy (same base commit)."""
    return make_repo(tmp_path_factory.mktemp("template") / "oec", SAMPLE / "oec")


@pytest.fixture(scope="session")
def reference(template_repo: Path, tmp_path_factory: pytest.TempPathFactory) -> Reference:
    from services import embedded
    from services.publisher import reports

    root = tmp_path_factory.mktemp("embedded")
    repo = root / "oec"
    shutil.copytree(template_repo, repo, symlinks=True)
    outbox = root / "outbox"
    locations = {Source.NASA: str(NASA), Source.EU: str(EU)}
    state = embedded.run(repo, locations, outbox, max_prs=0)
    assert state.completed and state.published
    return Reference(state.run_id, branches(repo), drafts(outbox), reports.report(state))


@dataclass
class Cluster:
    """Services as subprocesses against one private topology, one OEC copy, one data dir."""

    root: Path
    env: dict[str, str]
    repo: Path
    outbox: Path
    processes: list[ServiceProcess] = field(default_factory=list)

    def start(self, service: str, name: str | None = None, **env: str) -> ServiceProcess:
        process = ServiceProcess(name or service, [service], {**self.env, **env}, self.root)
        self.processes.append(process)
        return process

    def fetch(self) -> str:
        done = oec_sync(
            ["fetcher", "--once", "--nasa", str(NASA), "--eu", str(EU)], self.env, timeout=120
        )
        return done.stdout.strip().splitlines()[-1]

    def run_state(self, publisher: ServiceProcess, run_id: str) -> str | None:
        runs = {r["run_id"]: r for r in publisher.get("/runs")}
        return runs[run_id]["state"] if run_id in runs else None

    def wait_complete(self, publisher: ServiceProcess, run_id: str, timeout: float = 90) -> None:
        wait_for(
            lambda: self.run_state(publisher, run_id) == "complete",
            timeout,
            f"run {run_id} to complete; logs:\n"
            + "\n".join(f"--- {p.name}\n{p.log_tail(15)}" for p in self.processes),
            interval=0.2,
        )

    def stop(self) -> None:
        for process in self.processes:
            process.stop()


@pytest.fixture
def cluster(
    request: pytest.FixtureRequest, template_repo: Path, tmp_path: Path
) -> Iterator[Cluster]:
    require_broker()
    prefix = unique_prefix(request.node.name)
    repo = tmp_path / "oec"
    shutil.copytree(template_repo, repo, symlinks=True)
    outbox = tmp_path / "outbox"
    env = broker_env(
        prefix,
        OEC_SYNC_OEC_REPO=str(repo),
        OEC_SYNC_DATA_DIR=str(tmp_path / "data"),
        OEC_SYNC_OUTBOX=str(outbox),
        OEC_SYNC_MAX_PRS="0",
        OEC_SYNC_LOG_JSON="false",
    )
    cluster = Cluster(tmp_path, env, repo, outbox)
    try:
        yield cluster
    finally:
        cluster.stop()
        cleanup(settings_for(prefix))
