"""The snapshot archive: content-addressed gzip objects, a manifest that follows runs, retention."""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
from pathlib import Path

import pytest

from common import topology
from common.messages import (
    CatalogueCounts,
    CatalogueDownloaded,
    CatalogueFailed,
    RunCompleted,
    RunPlanned,
)
from common.records import RejectedRow, Source
from runtime.archive import (
    Archive,
    ArchiveError,
    Recorder,
    Snapshot,
    SnapshotState,
)
from runtime.bus.memory import MemoryBus
from tests.paths import SAMPLE

T0 = dt.datetime(2026, 8, 1, 6, 0, tzinfo=dt.UTC)
NASA_BYTES = (SAMPLE / "nasa.csv").read_bytes()
EU_BYTES = (SAMPLE / "eu.csv").read_bytes()


@pytest.fixture
def archive(tmp_path: Path) -> Archive:
    return Archive(tmp_path / "snapshots")


def day(n: int) -> dt.datetime:
    return T0 + dt.timedelta(days=n)


def store_day(archive: Archive, n: int, source: Source = Source.NASA) -> Snapshot:
    """A distinct download of ``source`` on day ``n``, in run ``run-n``."""
    data = NASA_BYTES + f"# day {n}\n".encode()
    return archive.store(source, f"https://example.org/{source}", data, day(n), f"run-{n}")


def planned(run_id: str, source: Source, rows: int, rejected: list[RejectedRow]) -> RunPlanned:
    return RunPlanned(
        run_id=run_id,
        source=source,
        catalogue="nasa.csv",
        commit="0" * 40,
        planets=rows - len(rejected),
        counts=CatalogueCounts(rows=rows, rejected=len(rejected)),
        rejected=rejected,
    )


def test_a_download_is_kept_gzip_under_its_hash(archive: Archive) -> None:
    snapshot = archive.store(Source.NASA, "https://nasa", NASA_BYTES, T0, "run-1")
    sha256 = hashlib.sha256(NASA_BYTES).hexdigest()
    path = archive.root / "objects" / sha256[:2] / f"{sha256}.gz"
    assert gzip.decompress(path.read_bytes()) == NASA_BYTES
    assert snapshot.sha256 == sha256
    assert snapshot.size == len(NASA_BYTES)
    assert snapshot.stored_size == path.stat().st_size < len(NASA_BYTES)
    assert snapshot.state is SnapshotState.PENDING
    assert snapshot.fetched_at == T0
    assert (snapshot.url, snapshot.run_id, snapshot.rows) == ("https://nasa", "run-1", None)
    assert archive.read(snapshot) == NASA_BYTES


def test_same_bytes_are_stored_once_and_a_redelivery_adds_no_row(archive: Archive) -> None:
    first = archive.store(Source.EU, "https://eu", EU_BYTES, day(0), "run-0")
    again = archive.store(Source.EU, "https://eu", EU_BYTES, day(0), "run-0")
    next_day = archive.store(Source.EU, "https://eu", EU_BYTES, day(1), "run-1")
    assert again.id == first.id
    assert next_day.id != first.id
    assert len(archive.snapshots()) == 2
    assert len(list((archive.root / "objects").rglob("*.gz"))) == 1


def test_a_damaged_object_is_refused(archive: Archive) -> None:
    snapshot = archive.store(Source.NASA, "https://nasa", NASA_BYTES, T0, "run-1")
    archive.object_path(snapshot.sha256).write_bytes(gzip.compress(b"something else"))
    with pytest.raises(ArchiveError, match="does not match its hash"):
        archive.read(snapshot)
    archive.object_path(snapshot.sha256).unlink()
    with pytest.raises(ArchiveError, match="cannot read"):
        archive.read(snapshot)


def test_the_indexer_plan_records_rows_and_rejected_rows(archive: Archive) -> None:
    snapshot = archive.store(Source.NASA, "https://nasa", NASA_BYTES, T0, "run-1")
    rejected = [
        RejectedRow(file="nasa.csv", row=7, column="pl_bmasse", reason="not a number: 'n/a'"),
        RejectedRow(file="nasa.csv", row=3, reason="no planet name"),
    ]
    archive.record_plan("run-1", Source.NASA, 40, rejected)
    archive.record_plan("run-1", Source.NASA, 40, rejected)  # a redelivery changes nothing
    again = archive.get(snapshot.id)
    assert (again.rows, again.rejected) == (40, 2)
    assert archive.rejected_rows(snapshot.id) == sorted(rejected, key=lambda r: r.row)


def test_states_follow_the_run(archive: Archive) -> None:
    nasa = archive.store(Source.NASA, "https://nasa", NASA_BYTES, T0, "run-1")
    eu = archive.store(Source.EU, "https://eu", EU_BYTES, T0, "run-1")
    assert archive.mark_unfinished("run-1", Source.EU, "not a catalogue: HTML") == 1
    assert archive.finish_run("run-1") == 1
    assert archive.get(nasa.id).state is SnapshotState.FINISHED
    eu_now = archive.get(eu.id)
    assert (eu_now.state, eu_now.detail) == (SnapshotState.UNFINISHED, "not a catalogue: HTML")
    assert archive.mark_unfinished("run-1", None, "late") == 1  # finished stays finished
    assert archive.get(nasa.id).state is SnapshotState.FINISHED


def test_a_run_that_never_completes_expires_to_unfinished(archive: Archive) -> None:
    old = store_day(archive, 0)
    recent = store_day(archive, 3)
    assert archive.expire(day(3) + dt.timedelta(hours=2), dt.timedelta(days=1)) == 1
    assert archive.get(old.id).state is SnapshotState.UNFINISHED
    assert "no run.completed within 1 day" in (archive.get(old.id).detail or "")
    assert archive.get(recent.id).state is SnapshotState.PENDING


def test_retention_by_count_keeps_unfinished_ones(archive: Archive) -> None:
    stored = [store_day(archive, n) for n in range(6)]
    for n in (0, 2, 3, 4, 5):
        archive.finish_run(f"run-{n}")
    archive.mark_unfinished("run-1", None, "publisher timed out")
    eu = archive.store(Source.EU, "https://eu", EU_BYTES, day(0), "run-0")
    archive.finish_run("run-0")

    now = day(6)
    preview = archive.prune(now, max_age_days=0, max_count=2, dry_run=True)
    assert len(archive.snapshots()) == 7  # a dry run deletes nothing
    deleted = archive.prune(now, max_age_days=0, max_count=2)
    assert [s.id for s in deleted] == [s.id for s in preview]
    # Finished NASA snapshots newest first: 5, 4 | 3, 2, 0; day 1 is unfinished; EU has one.
    assert sorted(s.run_id for s in deleted) == ["run-0", "run-2", "run-3"]
    kept = {s.id for s in archive.snapshots()}
    assert kept == {stored[5].id, stored[4].id, stored[1].id, eu.id}
    for snapshot in deleted:
        assert not archive.object_path(snapshot.sha256).exists()
    assert archive.read(eu) == EU_BYTES


def test_retention_by_age_keeps_the_newest_finished_one(archive: Archive) -> None:
    for n in range(3):
        store_day(archive, n)
        archive.finish_run(f"run-{n}")
    pending = store_day(archive, 4)
    deleted = archive.prune(day(200), max_age_days=90, max_count=0)
    assert sorted(s.run_id for s in deleted) == ["run-0", "run-1"]
    assert {s.run_id for s in archive.snapshots()} == {"run-2", pending.run_id}


def test_an_object_shared_with_a_kept_snapshot_stays(archive: Archive) -> None:
    for n in range(3):
        archive.store(Source.EU, "https://eu", EU_BYTES, day(n), f"run-{n}")
        archive.finish_run(f"run-{n}")
    deleted = archive.prune(day(3), max_age_days=0, max_count=1)
    assert len(deleted) == 2
    [kept] = archive.snapshots()
    assert archive.read(kept) == EU_BYTES


def test_snapshots_are_found_by_id_or_hash_prefix(archive: Archive) -> None:
    nasa = archive.store(Source.NASA, "https://nasa", NASA_BYTES, day(0), "run-0")
    again = archive.store(Source.NASA, "https://nasa", NASA_BYTES, day(1), "run-1")
    eu = archive.store(Source.EU, "https://eu", EU_BYTES, day(0), "run-0")
    assert archive.resolve(str(eu.id)).id == eu.id
    assert archive.resolve(nasa.sha256[:7]).id == again.id  # the newest download of a hash
    assert archive.resolve(nasa.sha256.upper()).id == again.id
    with pytest.raises(ArchiveError, match="no snapshot 99"):
        archive.resolve("99")
    with pytest.raises(ArchiveError, match="neither an id nor"):
        archive.resolve("abc")
    with pytest.raises(ArchiveError, match="no snapshot with hash"):
        archive.resolve("f" * 64 if not nasa.sha256.startswith("f" * 8) else "0" * 64)


def test_a_snapshot_becomes_the_same_download_message(archive: Archive) -> None:
    snapshot = archive.store(Source.NASA, "https://nasa/tap", NASA_BYTES, T0, "run-1")
    message = archive.message(snapshot, "run-2")
    assert message.content() == NASA_BYTES
    assert (message.url, message.fetched_at, message.sha256) == (
        "https://nasa/tap",
        T0,
        snapshot.sha256,
    )
    assert message.run_id == "run-2"


def test_the_recorder_follows_a_run_on_the_bus(archive: Archive) -> None:
    bus = MemoryBus()
    bus.subscribe(topology.ARCHIVE, Recorder(archive, max_age_days=90, max_count=1))
    old = store_day(archive, 0)
    archive.finish_run("run-0")
    nasa = CatalogueDownloaded.from_bytes("run-9", Source.NASA, "https://nasa", NASA_BYTES, day(9))
    eu = CatalogueDownloaded.from_bytes("run-9", Source.EU, "https://eu", EU_BYTES, day(9))
    rejected = [RejectedRow(file="nasa.csv", row=5, reason="no planet name")]
    for message in (
        nasa,
        eu,
        planned("run-9", Source.NASA, 40, rejected),
        CatalogueFailed(
            run_id="run-9", source=Source.EU, url="https://eu", error="not a catalogue"
        ),
        RunCompleted(run_id="run-9", systems=3, branches_written=3, queued=0, produced_at=day(9)),
    ):
        bus.publish(message)
    bus.run_until_idle()

    by_source = {s.source: s for s in archive.snapshots(limit=None) if s.run_id == "run-9"}
    assert by_source[Source.NASA].state is SnapshotState.FINISHED
    assert (by_source[Source.NASA].rows, by_source[Source.NASA].rejected) == (40, 1)
    assert by_source[Source.EU].state is SnapshotState.UNFINISHED
    # run.completed applied retention: one finished NASA snapshot per catalogue is kept.
    assert old.id not in {s.id for s in archive.snapshots()}


def test_times_must_carry_a_zone(archive: Archive) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        archive.store(Source.NASA, "u", b"x", dt.datetime(2026, 1, 1), "run")
