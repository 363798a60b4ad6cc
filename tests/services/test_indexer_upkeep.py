"""The indexer's upkeep: GitHub push webhooks (HMAC checked), runs pinned to a commit."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from common.config import Settings
from common.status import create_app
from common.telemetry import BusMetrics, StatusSnapshot
from services.indexer.main import IndexKeeper, add_routes, signature_ok
from tests.brokerutil import wait_for
from tests.gitutil import git, make_repo

SECRET = "s3cret"


def move_upstream(repo: Path) -> str:
    """A maintainer's commit on master: one more alias for 11 Com."""
    path = repo / "systems" / "11 Com.xml"
    text = path.read_text()
    path.write_text(
        text.replace("<name>11 Com</name>", "<name>11 Com</name>\n\t<name>Zeta</name>", 1)
    )
    git(repo, "commit", "--quiet", "-am", "alias")
    return git(repo, "rev-parse", "HEAD").strip()


@pytest.fixture
def keeper(tmp_path: Path) -> IndexKeeper:
    repo = make_repo(tmp_path / "oec")
    settings = Settings(
        oec_repo=repo,
        oec_upstream_ref="refs/heads/master",
        github_webhook_secret=SecretStr(SECRET),
    )
    keeper = IndexKeeper(settings)
    keeper.load()
    return keeper


def client_for(keeper: IndexKeeper) -> TestClient:
    app = create_app(StatusSnapshot("indexer"), BusMetrics(), "test")
    settings = Settings(
        oec_repo=keeper.repo, oec_upstream_ref=keeper.ref, github_webhook_secret=SecretStr(SECRET)
    )
    add_routes(app, keeper, settings)
    return TestClient(app)


def signed(body: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def test_a_signed_push_moves_the_index_to_the_new_commit(keeper: IndexKeeper) -> None:
    client = client_for(keeper)
    old = keeper.index.commit if keeper.index else ""
    new = move_upstream(keeper.repo)
    body = json.dumps({"ref": "refs/heads/master", "after": new}).encode()
    headers = {"X-GitHub-Event": "push", "Content-Type": "application/json"}

    unsigned = client.post("/webhooks/github", content=body, headers=headers)
    assert unsigned.status_code == 401
    forged = client.post(
        "/webhooks/github",
        content=body,
        headers={**headers, "X-Hub-Signature-256": signed(body, "guess")},
    )
    assert forged.status_code == 401
    assert keeper.index is not None and keeper.index.commit == old

    ok = client.post(
        "/webhooks/github", content=body, headers={**headers, "X-Hub-Signature-256": signed(body)}
    )
    assert ok.status_code == 202
    wait_for(lambda: keeper.index and keeper.index.commit == new, 30, "the index to move")
    assert keeper.index.find_names("Zeta")


def test_pushes_elsewhere_and_pings_are_not_refreshes(keeper: IndexKeeper) -> None:
    client = client_for(keeper)
    body = json.dumps({"ref": "refs/heads/some-branch"}).encode()
    other = client.post(
        "/webhooks/github",
        content=body,
        headers={"X-GitHub-Event": "push", "X-Hub-Signature-256": signed(body)},
    )
    assert other.status_code == 202 and "ignored" in other.json()
    ping = client.post(
        "/webhooks/github",
        content=b"{}",
        headers={"X-GitHub-Event": "ping", "X-Hub-Signature-256": signed(b"{}")},
    )
    assert ping.json() == {"pong": True}


def test_each_run_stays_on_the_commit_its_first_catalogue_saw(keeper: IndexKeeper) -> None:
    first = keeper.for_run("run-1").commit
    second_commit = move_upstream(keeper.repo)
    assert keeper.for_run("run-2").commit == second_commit  # a new run takes the new commit
    assert keeper.for_run("run-1").commit == first  # a late catalogue of run 1 does not
    assert keeper.status()["pinned_runs"] == {"run-1": first, "run-2": second_commit}


def test_signature_check() -> None:
    assert signature_ok(SECRET, b"x", signed(b"x"))
    assert not signature_ok(SECRET, b"x", signed(b"y"))
    assert not signature_ok(SECRET, b"x", None)


def test_sync_all_rebuilds_the_cached_index(tmp_path: Path) -> None:
    from common.oec.index import index_cache
    from tests.brokerutil import oec_sync

    repo = make_repo(tmp_path / "oec")
    head = git(repo, "rev-parse", "HEAD").strip()
    done = oec_sync(["sync", "all"], {"OEC_SYNC_OEC_REPO": str(repo), "OEC_SYNC_LOG_JSON": "0"})
    assert done.stdout.strip() == head
    assert index_cache(repo).exists()
