"""Piped into a file or a pager, every command's table keeps every column whole.

rich cuts tables to 80 columns when its stream is no terminal; the commands print through
``services.options.make_console``, which gives piped output room instead. Run as a user would
pipe it: a real ``oec-sync`` process whose output is a pipe, with no ``COLUMNS`` set.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest

from common.archive import Archive
from common.bus.rabbitmq import RabbitMQBus
from common.messages import CatalogueDownloaded, RunStarted
from common.records import Source
from tests.brokerutil import (
    broker_env,
    cleanup,
    oec_sync,
    require_broker,
    settings_for,
    unique_prefix,
)
from tests.paths import SAMPLE

T0 = dt.datetime(2026, 8, 1, 6, 0, tzinfo=dt.UTC)
RUN_ID = "20260801-piped-output-run-with-a-long-id"


def piped_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    return {**env, **extra}


def rows(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("│")]


def test_snapshots_list_piped_keeps_whole_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("COLUMNS", raising=False)
    archive = Archive(tmp_path / "snapshots")
    nasa = archive.store(
        Source.NASA, "https://nasa/tap", (SAMPLE / "nasa.csv").read_bytes(), T0, RUN_ID
    )
    done = oec_sync(["snapshots", "list", "--archive-dir", str(archive.root)], piped_env())
    [row] = rows(done.stdout)
    for cell in (nasa.sha256[:12], "2026-08-01 06:00", "nasa", RUN_ID):
        assert cell in row
    assert len(row) > 80


@pytest.mark.rabbitmq
def test_replay_dry_run_piped_keeps_whole_rows(request: pytest.FixtureRequest) -> None:
    require_broker()
    prefix = unique_prefix(request.node.name)
    settings = settings_for(prefix)
    data = (SAMPLE / "eu.csv").read_bytes()
    downloaded = CatalogueDownloaded.from_bytes(RUN_ID, Source.EU, "eu.csv", data, T0)
    bus = RabbitMQBus(settings.bus, settings.amqp_url, "test").start(wait=20)
    try:
        bus.publish_many([RunStarted(run_id=RUN_ID, catalogues=[Source.EU]), downloaded])
    finally:
        bus.stop()
    try:
        done = oec_sync(["replay", "--from", "first", "--dry-run"], piped_env(**broker_env(prefix)))
    finally:
        cleanup(settings)
    [row] = [r for r in rows(done.stderr) if "catalogue.downloaded" in r]
    for cell in (RUN_ID, "exoplanet.eu", downloaded.message_id):
        assert cell in row
    assert len(row) > 80
