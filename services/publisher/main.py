"""``oec-sync publisher``: collects each run's outcomes and publishes its branches and PRs.

Run exactly one: the run state is local (SQLite under ``OEC_SYNC_DATA_DIR``). Without a
GitHub token it writes branches into ``OEC_SYNC_OEC_REPO`` and PR drafts into the outbox
(LocalSink), as ``oec-sync run`` does. The same process keeps the snapshot archive's manifest
(runtime/archive.py) from the archive queue, since it holds the data volume.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException
from fastapi.responses import HTMLResponse

from common import topology
from common.gitrepo import run_git
from runtime import alerts
from runtime.archive import Archive, Recorder
from runtime.bus.rabbitmq import RabbitMQBus
from runtime.config import Settings
from runtime.memo import Memo
from runtime.status import Service
from services.publisher.durable import DurablePublisher
from services.publisher.handler import GitTexts, PublisherHandler, RunState
from services.publisher.quality_page import render, report_of
from services.publisher.runstore import RunStore
from services.publisher.sinks import sink_from_settings
from services.servicebus import service_bus

log = logging.getLogger(__name__)


class FetchingTexts(GitTexts):
    """System files at a commit, fetching ``remote`` first when the commit the indexer pinned
    is not in this checkout yet (indexer and publisher have clones of their own)."""

    def __init__(self, repo: Path, remote: str | None) -> None:
        super().__init__(repo)
        self.remote = remote

    def _ensure(self, commit: str) -> None:
        if self.remote and not _has_commit(self.repo, commit):
            # A failed fetch is not an error here: the read that follows says what is missing.
            run_git(self.repo, "fetch", "--quiet", self.remote, timeout=300)

    def read(self, commit: str, files: list[str]) -> dict[str, str | None]:
        self._ensure(commit)
        return super().read(commit, files)

    def blobs(self, commit: str) -> dict[str, str]:
        self._ensure(commit)
        return super().blobs(commit)


def _has_commit(repo: Path, commit: str) -> bool:
    return run_git(repo, "cat-file", "-e", f"{commit}^{{commit}}").returncode == 0


def add_routes(app: FastAPI, publisher: DurablePublisher) -> None:
    @app.get("/runs")
    def runs(limit: int = 20) -> list[dict[str, Any]]:
        """Newest runs first, with their state and progress per catalogue."""
        return publisher.store.summaries(limit)

    @app.get("/runs/{run_id}")
    def run(run_id: str) -> dict[str, Any]:
        """A run's report: counts, and every proposed system with its changes."""
        report = publisher.report(run_id)
        if report is None:
            raise HTTPException(404, f"no run {run_id}")
        return report

    def stored(run_id: str) -> RunState:
        with publisher.lock:
            cached = publisher.handler.runs.get(run_id)
        # As DurablePublisher.report: a complete run in memory no longer changes.
        state = cached if cached is not None and cached.completed else publisher.store.load(run_id)
        if state is None:
            raise HTTPException(404, f"no run {run_id}")
        return state

    @app.get("/runs/{run_id}/quality")
    def quality(run_id: str) -> dict[str, Any]:
        """Per catalogue counts, rejected rows and ambiguous names, and the fields where NASA
        and exoplanet.eu disagree beyond tolerance (common/quality.py)."""
        return report_of(stored(run_id)).model_dump(mode="json")

    @app.get("/runs/{run_id}/quality.html", response_class=HTMLResponse)
    def quality_html(run_id: str) -> HTMLResponse:
        """The same report as a page for maintainers, with inline SVG charts."""
        return HTMLResponse(render(report_of(stored(run_id))))


def finisher(publisher: DurablePublisher, bus: RabbitMQBus, stop: threading.Event) -> None:
    """Publishes runs once they are accounted for, and those the run timeout gives up on."""
    interval = max(0.5, min(60.0, publisher.run_timeout / 4))
    while not stop.is_set():
        publisher.ready.wait(interval)
        publisher.ready.clear()
        if stop.is_set():
            return
        try:
            publisher.finish_ready(bus.publish_many)
            publisher.sweep(bus.publish_many)
        except Exception:
            log.exception("publishing a run failed; trying again")
            stop.wait(5.0)
            publisher.ready.set()


def main(settings: Settings, port: int | None) -> None:
    service = Service.from_settings("publisher", settings)
    repo = settings.oec_repo.resolve()
    handler = PublisherHandler(
        sink_from_settings(settings),
        FetchingTexts(repo, settings.oec_fetch_remote),
        settings.max_prs,
        alerts.Notifier(settings),
        memo=Memo(settings.memo_path, autosave=True),
        build_processes=settings.processes,
    )
    publisher = DurablePublisher(
        handler, RunStore(settings.data_dir / "publisher.sqlite3"), settings.run_timeout
    )
    service.snapshot.provide("runs", lambda: publisher.store.summaries(10))
    add_routes(service.app, publisher)
    bus = service_bus(settings, service)
    bus.subscribe(topology.PUBLISHER, publisher)
    # Here, beside the runs: a planet a merger gave up on is accounted for as failed.
    bus.report_dead_letters()
    archive = settings.archive
    bus.subscribe(
        topology.ARCHIVE,
        Recorder(
            Archive(settings.archive_dir),
            archive.max_age_days,
            archive.max_count,
            dt.timedelta(seconds=settings.run_timeout),
        ),
    )
    finishing = threading.Event()
    worker = threading.Thread(
        target=finisher, args=(publisher, bus, finishing), name="run-finisher", daemon=True
    )

    def stop_finisher() -> None:
        # A run being published is finished first (the bus must still be up to announce it);
        # one cut short by the grace period is published again after the restart.
        finishing.set()
        publisher.ready.set()
        worker.join(timeout=25)

    service.serve(settings.status_host, port)
    worker.start()
    publisher.ready.set()  # a run accounted for before a restart is finished now
    try:
        bus.run_forever(before_stop=stop_finisher)
    finally:
        service.close()
        publisher.store.close()
