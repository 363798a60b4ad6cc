"""The status API reads a snapshot, never the broker; the fetcher's exit status."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from common.status import BusMetrics, StatusSnapshot, create_app
from tests.brokerutil import oec_sync


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
