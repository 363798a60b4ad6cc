"""The status API reads a snapshot, never the broker, and shows run data only to the token;
the fetcher's exit status."""

from __future__ import annotations

import hashlib
import hmac
import re
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from pydantic import SecretStr, ValidationError

from common.config import Settings
from common.status import StatusServer, create_app
from common.telemetry import BusMetrics, StatusSnapshot
from tests.brokerutil import oec_sync
from tests.deploy.manifests import clear_settings_environment
from tests.gitutil import make_repo


def test_health_readiness_status_and_metrics_come_from_the_snapshot() -> None:
    snapshot = StatusSnapshot("merger")
    metrics = BusMetrics()
    client = TestClient(create_app(snapshot, metrics, "test"))

    assert client.get("/healthz").json() == {"status": "ok", "service": "merger"}
    assert client.get("/readyz").status_code == 503  # no broker yet

    snapshot.set_connected(True)
    snapshot.set_consuming(True)
    snapshot.set_queue_depth("oec-sync.merger", 12, 2)
    snapshot.record("run-1", "m-1", "planet.matched", "oec-sync.merger", "ok")
    metrics.handled.labels("oec-sync.merger", "planet.matched", "ok").inc()
    assert client.get("/readyz").status_code == 200

    status = client.get("/status").json()
    assert status["broker"]["connected"] and status["broker"]["consuming"]
    assert status["queues"]["oec-sync.merger"]["messages"] == 12
    assert status["current_run"] == "run-1"
    assert status["last_message"]["message_id"] == "m-1"
    assert status["recent_runs"][0]["handled"] == {"planet.matched": 1}

    text = client.get("/metrics").text
    assert 'oec_sync_messages_handled_total{outcome="ok"' in text
    assert "planet=" not in text  # bounded labels only

    snapshot.set_connected(False, "connection reset")
    assert client.get("/readyz").status_code == 503
    assert client.get("/healthz").status_code == 200
    assert client.get("/status").json()["broker"]["last_error"] == "connection reset"


def test_the_fetcher_exits_non_zero_and_publishes_nothing_without_a_catalogue(
    tmp_path: Path,
) -> None:
    missing = str(tmp_path / "nowhere.csv")
    # An unreachable broker proves nothing was published: it is never contacted. The
    # locations come from the settings (given as --nasa/--eu, a missing file is refused
    # as a wrong command line before the fetcher starts; tests/test_wrong_inputs.py).
    env = {
        "OEC_SYNC_AMQP_URL": "amqp://guest:guest@127.0.0.1:1/%2F",
        "OEC_SYNC_LOG_JSON": "0",
        "OEC_SYNC_NASA_URL": missing,
        "OEC_SYNC_EU_URL": missing,
    }
    done = oec_sync(["fetcher", "--once"], env, check=False)
    assert done.returncode == 1
    assert f"nasa failed: {missing}: does not exist" in done.stderr
    assert "no catalogue" in done.stderr
    assert done.stdout == ""


# --- who may read what --------------------------------------------------------------------

TOKEN = "0123456789abcdef-status"
OPEN = {"/healthz", "/readyz", "/metrics"}


def service_apps(tmp_path: Path) -> dict[str, FastAPI]:
    """The status API of the merger (the shared routes), the publisher and the indexer, as
    their main() builds them, with a token."""
    from services.indexer.main import IndexKeeper
    from services.indexer.main import add_routes as indexer_routes
    from services.publisher.main import add_routes as publisher_routes
    from tests.services.test_runstore import publisher

    token = SecretStr(TOKEN)
    apps = {}
    for name in ("merger", "publisher", "indexer"):
        apps[name] = create_app(StatusSnapshot(name), BusMetrics(), name, token)
    publisher_routes(apps["publisher"], publisher(tmp_path / "runs.sqlite3", None))  # type: ignore[arg-type]
    settings = Settings(oec_repo=make_repo(tmp_path / "oec"), github_webhook_secret=SecretStr("s"))
    indexer_routes(apps["indexer"], IndexKeeper(settings), settings)
    return apps


def routes(app: FastAPI) -> list[tuple[str, str]]:
    """(method, path) of every route a service declares, path parameters filled in."""
    found = []
    for route in app.routes:
        if isinstance(route, APIRoute):
            path = re.sub(r"\{[^}]+\}", "20260822-abcdef01", route.path)
            found += [(method, path) for method in sorted(route.methods)]
    return found


def test_with_a_token_every_route_but_the_probes_asks_for_it(tmp_path: Path) -> None:
    checked = set()
    for name, app in service_apps(tmp_path).items():
        client = TestClient(app)
        for method, path in routes(app):
            checked.add(path)
            if path == "/webhooks/github":
                continue  # GitHub signs it instead: below
            anonymous = client.request(method, path)
            wrong = client.request(method, path, headers={"Authorization": f"Bearer {TOKEN}x"})
            right = client.request(method, path, headers={"Authorization": f"Bearer {TOKEN}"})
            where = f"{name} {method} {path}"
            if path in OPEN:
                assert anonymous.status_code != 401, where
                continue
            assert anonymous.status_code == 401, where
            assert anonymous.headers["WWW-Authenticate"] == "Bearer", where
            assert wrong.status_code == 401, where
            assert right.status_code != 401, where
    assert {"/status", "/runs", "/runs/20260822-abcdef01", "/sync"} <= checked

    indexer = TestClient(service_apps(tmp_path / "again")["indexer"])
    body = b"{}"
    signature = "sha256=" + hmac.new(b"s", body, hashlib.sha256).hexdigest()
    ping = {"X-GitHub-Event": "ping", "X-Hub-Signature-256": signature}
    assert indexer.post("/webhooks/github", content=body, headers=ping).status_code == 200
    assert indexer.post("/webhooks/github", content=body).status_code == 401  # unsigned


def test_without_a_token_the_api_is_open_and_listens_on_loopback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clear_settings_environment(monkeypatch)
    settings = Settings()
    assert settings.status_host == "127.0.0.1" and settings.status_token is None
    app = create_app(StatusSnapshot("merger"), BusMetrics(), "test", settings.status_token)
    assert TestClient(app).get("/status").status_code == 200
    server = StatusServer(app, settings.status_host, 0).start()
    try:
        (socket,) = server.server.servers[0].sockets
        assert socket.getsockname()[0] == "127.0.0.1"
    finally:
        server.stop()


def test_the_token_is_read_from_a_secret_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clear_settings_environment(monkeypatch)
    secret = tmp_path / "token"
    secret.write_text(TOKEN + "\n")  # as `kubectl create secret --from-file` may leave it
    monkeypatch.setenv("OEC_SYNC_STATUS_TOKEN_FILE", str(secret))
    token = Settings().status_token
    assert token is not None and token.get_secret_value() == TOKEN
    assert TOKEN not in repr(Settings())

    monkeypatch.setenv("OEC_SYNC_STATUS_TOKEN_FILE", str(tmp_path / "missing"))
    with pytest.raises(ValidationError, match=r"status_token_file .*missing"):
        Settings()
    secret.write_text("short")
    monkeypatch.setenv("OEC_SYNC_STATUS_TOKEN_FILE", str(secret))
    with pytest.raises(ValidationError, match="at least 16 characters"):
        Settings()
