"""``oec-sync snapshots``: list, show, prune, and reprocess through both seams."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from pathlib import Path

import pytest
from pydantic import SecretStr
from typer.testing import CliRunner

from common.archive import Archive, SnapshotState
from common.bus import rabbitmq
from common.config import BusSettings
from common.messages import CatalogueDownloaded, Message, RunStarted
from common.records import RejectedRow, Source
from services.cli import app
from tests.gitutil import make_repo
from tests.paths import SAMPLE

T0 = dt.datetime(2026, 8, 1, 6, 0, tzinfo=dt.UTC)
NASA_BYTES = (SAMPLE / "nasa.csv").read_bytes()
EU_BYTES = (SAMPLE / "eu.csv").read_bytes()

runner = CliRunner()


@pytest.fixture(autouse=True)
def wide_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # rich tables at full width


@pytest.fixture
def archive(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Archive:
    archive = Archive(tmp_path / "snapshots")
    monkeypatch.setenv("OEC_SYNC_ARCHIVE__DIR", str(archive.root))
    archive.store(Source.NASA, "https://nasa/tap", NASA_BYTES, T0, "20260801-aaaaaaaa")
    archive.store(Source.EU, "https://eu/csv", EU_BYTES, T0, "20260801-aaaaaaaa")
    archive.record_plan(
        "20260801-aaaaaaaa",
        Source.NASA,
        85,
        [RejectedRow(file="nasa.csv", row=12, column="ra", reason="not a number: 'x'")],
    )
    archive.finish_run("20260801-aaaaaaaa")
    return archive


def invoke(*args: str) -> str:
    result = runner.invoke(app, ["snapshots", *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_list_as_json_and_as_a_table(archive: Archive) -> None:
    rows = [json.loads(line) for line in invoke("list", "--json").splitlines()]
    assert {r["source"] for r in rows} == {"nasa", "exoplanet.eu"}
    assert {r["state"] for r in rows} == {"finished"}
    only_nasa = invoke("list", "--json", "--source", "nasa")
    assert [json.loads(line)["rows"] for line in only_nasa.splitlines()] == [85]
    table = invoke("list")
    nasa = archive.snapshots(source=Source.NASA)[0]
    assert nasa.sha256[:12] in table
    assert "20260801-aaaaaaaa" in table


def test_show_lists_the_rejected_rows(archive: Archive) -> None:
    nasa = archive.snapshots(source=Source.NASA)[0]
    shown = invoke("show", nasa.sha256[:10])
    assert "https://nasa/tap" in shown
    assert "not a number: 'x'" in shown
    document = json.loads(invoke("show", str(nasa.id), "--json"))
    assert document["rejected_rows"] == [
        {"file": "nasa.csv", "row": 12, "column": "ra", "reason": "not a number: 'x'"}
    ]
    assert Path(document["object"]).exists()


def test_unknown_snapshot_and_missing_archive_are_clear(archive: Archive, tmp_path: Path) -> None:
    result = runner.invoke(app, ["snapshots", "show", "deadbeef99"])
    assert result.exit_code == 2
    assert "no snapshot with hash deadbeef99" in result.output
    result = runner.invoke(app, ["snapshots", "list", "--archive-dir", str(tmp_path / "none")])
    assert result.exit_code == 2
    assert "no snapshot archive at" in result.output


def test_prune_dry_run_deletes_nothing(archive: Archive, monkeypatch: pytest.MonkeyPatch) -> None:
    for n in range(1, 4):
        archive.store(Source.NASA, "https://nasa/tap", NASA_BYTES + b"#%d" % n, T0, f"run-{n}")
        archive.finish_run(f"run-{n}")
    monkeypatch.setenv("OEC_SYNC_ARCHIVE__MAX_COUNT", "2")
    monkeypatch.setenv("OEC_SYNC_ARCHIVE__MAX_AGE_DAYS", "0")
    assert "would delete 2 snapshot(s)" in invoke("prune", "--dry-run")
    assert len(archive.snapshots(source=Source.NASA)) == 4
    assert "deleted 2 snapshot(s)" in invoke("prune")
    assert len(archive.snapshots(source=Source.NASA)) == 2


def test_reprocess_embedded_runs_the_pipeline_and_records_the_new_run(
    archive: Archive, tmp_path: Path
) -> None:
    repo = make_repo(tmp_path / "oec")
    nasa = archive.snapshots(source=Source.NASA)[0]
    outbox = tmp_path / "outbox"
    output = invoke(
        "reprocess",
        nasa.sha256[:8],
        "--oec-repo",
        str(repo),
        "--outbox",
        str(outbox),
        "--max-prs",
        "3",
    )
    assert "in this process" in output
    assert len(list(outbox.glob("*.json"))) == 3
    [rerun] = [s for s in archive.snapshots() if "-reprocess-" in s.run_id]
    assert (rerun.sha256, rerun.state, rerun.rows) == (nasa.sha256, SnapshotState.FINISHED, 85)
    assert rerun.fetched_at == nasa.fetched_at


def test_reprocess_goes_to_the_broker_when_one_is_configured(
    archive: Archive, monkeypatch: pytest.MonkeyPatch
) -> None:
    published: list[Message] = []

    class Bus:
        """Stands in for RabbitMQBus: the same constructor and calls, no broker."""

        def __init__(self, config: BusSettings, amqp_url: SecretStr, service: str) -> None:
            assert "rabbitmq:5672" in amqp_url.get_secret_value()
            self.stopped = False

        def start(self) -> Bus:
            return self

        def publish_many(self, messages: Sequence[Message]) -> None:
            published.extend(messages)

        def stop(self) -> None:
            self.stopped = True

    monkeypatch.setattr(rabbitmq, "RabbitMQBus", Bus)
    monkeypatch.setenv("OEC_SYNC_AMQP_URL", "amqp://oec:pw@rabbitmq:5672/%2F")

    ids = [str(s.id) for s in archive.snapshots()]
    output = invoke("reprocess", *ids)
    assert "in the broker" in output
    started, *downloads = published
    assert isinstance(started, RunStarted)
    assert sorted(started.catalogues) == [Source.EU, Source.NASA]
    assert all(isinstance(m, CatalogueDownloaded) for m in downloads)
    assert {m.run_id for m in published} == {started.run_id}
    assert started.run_id != "20260801-aaaaaaaa"
    assert {m.content() for m in downloads if isinstance(m, CatalogueDownloaded)} == {
        NASA_BYTES,
        EU_BYTES,
    }


def test_reprocess_refuses_two_snapshots_of_one_catalogue(archive: Archive) -> None:
    archive.store(Source.NASA, "https://nasa/tap", NASA_BYTES + b"#2", T0, "run-2")
    ids = [str(s.id) for s in archive.snapshots(source=Source.NASA)]
    result = runner.invoke(app, ["snapshots", "reprocess", *ids, "--embedded"])
    assert result.exit_code == 2
    assert "one snapshot per catalogue" in result.output
