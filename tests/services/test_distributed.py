"""End to end over RabbitMQ: the four services as separate processes, on the real sample.

The bar is the embedded run (``oec-sync run``) on the same inputs: the same branches (tree,
base and message of every commit) and the same PR drafts, byte for byte, whatever happens
to the processes and the broker in between.
"""

from __future__ import annotations

import signal
import subprocess
import time

import pytest

from common.messages import PLANETS_PER_MESSAGE
from tests.brokerutil import oec_sync, queue_depth, settings_for, stream_events, wait_for
from tests.services.conftest import Cluster, Reference, branches, drafts, tips

pytestmark = pytest.mark.rabbitmq


def assert_same_as_embedded(cluster: Cluster, reference: Reference, report: dict) -> None:
    assert branches(cluster.repo) == reference.branches
    assert drafts(cluster.outbox) == reference.drafts
    # Every planet accounted for exactly once: the counts equal the embedded run's.
    assert report["catalogues"] == reference.report["catalogues"]
    assert [s["branch"] for s in report["systems"]] == [
        s["branch"] for s in reference.report["systems"]
    ]


def dead_letters(cluster: Cluster) -> int:
    settings = settings_for(cluster.env["OEC_SYNC_BUS__PREFIX"])
    prefix = settings.bus.prefix
    return sum(
        queue_depth(settings, f"{prefix}.{q}.dead") for q in ("indexer", "merger", "publisher")
    )


def test_distributed_run_matches_embedded_and_a_replay_changes_nothing(
    cluster: Cluster, reference: Reference
) -> None:
    indexer = cluster.start("indexer")
    mergers = [cluster.start("merger", f"merger-{i}") for i in (1, 2)]
    publisher = cluster.start("publisher")
    for process in (indexer, *mergers, publisher):
        process.wait_ready()

    run_id = cluster.fetch()
    assert run_id == reference.run_id  # the run id comes from the downloaded bytes
    cluster.wait_complete(publisher, run_id)

    report = publisher.get(f"/runs/{run_id}")
    assert report["state"] == "complete"
    assert_same_as_embedded(cluster, reference, report)
    handled = [
        m.get("/status")["recent_runs"][0]["handled"].get("planets.matched", 0) for m in mergers
    ]
    # Every planet went to a merger, PLANETS_PER_MESSAGE of a catalogue's at a time.
    batches = [-(-c["records"] // PLANETS_PER_MESSAGE) for c in report["catalogues"].values()]
    assert sum(handled) == sum(batches) > 2

    status = publisher.get("/status")
    assert status["runs"][0]["state"] == "complete"
    assert indexer.get("/status")["index"]["commit"] == report["catalogues"]["nasa"]["oec_commit"]
    assert "oec_sync_messages_handled_total" in _metrics(publisher)

    # Replay one catalogue's download from the replay log: it flows through every service
    # again, and opens no branch or PR twice.
    before_tips, before_drafts = tips(cluster.repo), drafts(cluster.outbox)
    mtimes = {p.name: p.stat().st_mtime_ns for p in cluster.outbox.iterdir()}
    logged = stream_events(settings_for(cluster.env["OEC_SYNC_BUS__PREFIX"]))
    done = oec_sync(
        [
            "replay",
            "--from",
            "first",
            "--routing-key",
            "catalogue.downloaded",
            "--run",
            run_id,
            "--source",
            "nasa",
            "--json",
        ],
        cluster.env,
    )
    assert '"selected": 1' in done.stdout
    nasa_batches = -(-report["catalogues"]["nasa"]["records"] // PLANETS_PER_MESSAGE)

    def replayed() -> bool:
        counts = [m.get("/status")["recent_runs"][0]["handled"]["planets.matched"] for m in mergers]
        return sum(counts) == sum(batches) + nasa_batches

    wait_for(replayed, 60, "the mergers to see the replayed planets")
    prefix = cluster.env["OEC_SYNC_BUS__PREFIX"]
    settings = settings_for(prefix)
    wait_for(
        lambda: queue_depth(settings, f"{prefix}.publisher") == 0, 30, "the publisher to catch up"
    )
    time.sleep(0.5)
    assert tips(cluster.repo) == before_tips  # not one branch rewritten
    assert drafts(cluster.outbox) == before_drafts
    assert {p.name: p.stat().st_mtime_ns for p in cluster.outbox.iterdir()} == mtimes
    assert [r["run_id"] for r in publisher.get("/runs")] == [run_id]
    assert cluster.run_state(publisher, run_id) == "complete"
    assert dead_letters(cluster) == 0
    # The replay and all it caused stayed out of the replay log.
    assert stream_events(settings) == logged


def test_a_killed_merger_a_killed_publisher_and_a_broker_restart_lose_nothing(
    cluster: Cluster, reference: Reference
) -> None:
    indexer = cluster.start("indexer")
    publisher = cluster.start("publisher")
    doomed = cluster.start("merger", "merger-doomed")
    for process in (indexer, publisher, doomed):
        process.wait_ready()
    # Frozen, the merger holds a prefetch of deliveries it has not acknowledged.
    doomed.process.send_signal(signal.SIGSTOP)

    run_id = cluster.fetch()
    prefix = cluster.env["OEC_SYNC_BUS__PREFIX"]
    settings = settings_for(prefix)

    def planned() -> bool:
        runs = publisher.get("/runs")
        progress = runs[0]["progress"] if runs else {}
        return len(progress) == 2 and all(p["planned"] for p in progress.values())

    wait_for(planned, 60, "the indexer to plan both catalogues")

    def outcomes_arrived() -> bool:
        """Thaw the merger for a few milliseconds, freeze it again: has any of its outcomes
        reached the publisher? (Killed while frozen after that, it has sent some and holds
        the rest of its prefetch unacknowledged, however fast the machine is: a merger left
        to run until its status said so could finish every planet first.)"""
        doomed.process.send_signal(signal.SIGCONT)
        time.sleep(0.005)
        doomed.process.send_signal(signal.SIGSTOP)
        runs = publisher.get("/runs")
        return bool(runs) and any(p["outcomes"] for p in runs[0]["progress"].values())

    wait_for(outcomes_arrived, 60, "the merger's first outcomes", 0.05)
    doomed.kill()  # mid-run: some outcomes sent, some deliveries unacknowledged
    assert cluster.run_state(publisher, run_id) == "collecting"
    # The broker puts a dead consumer's deliveries back when it notices the closed
    # connection, a moment after the kill: read at once, the queue could still look empty.
    wait_for(
        lambda: queue_depth(settings, f"{prefix}.merger") > 0,
        10,
        "the killed merger's unacknowledged deliveries to return to its queue",
    )

    publisher.kill()  # the run state must survive in SQLite
    publisher = cluster.start("publisher", "publisher-2")
    publisher.wait_ready()

    subprocess.run(["rabbitmqctl", "stop_app"], check=True, capture_output=True, timeout=60)
    try:
        time.sleep(1)
    finally:
        subprocess.run(["rabbitmqctl", "start_app"], check=True, capture_output=True, timeout=120)
    merger = cluster.start("merger", "merger-2")
    merger.wait_ready()
    for process in (indexer, publisher):
        wait_for(process.ready, 60, f"{process.name} to reconnect")
    assert indexer.get("/status")["broker"]["reconnects"] >= 1

    cluster.wait_complete(publisher, run_id)
    report = publisher.get(f"/runs/{run_id}")
    assert_same_as_embedded(cluster, reference, report)
    assert dead_letters(cluster) == 0


def _metrics(process: object) -> str:
    import urllib.request

    url = process.url("/metrics")  # type: ignore[attr-defined]
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.read().decode()
