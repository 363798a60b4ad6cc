"""The memo's store: what a later run, or another process, finds in it."""

from __future__ import annotations

import datetime as dt
import sqlite3
import zlib
from pathlib import Path

from common import matching
from common.catalogues import read_catalogue_file
from common.memo import digest, outcome_value, remembered_summary
from common.messages import (
    CatalogueDownloaded,
    PlanetMatched,
    PlanetRemembered,
    PlanetUnchanged,
    SystemChanged,
    decode,
)
from common.oec.index import AliasIndex
from common.records import Source
from runtime.memo import AUTOSAVE_ENTRIES, Memo
from services.indexer.handler import (
    IndexerHandler,
    MatchedCatalogue,
    known_rows,
    known_rows_value,
)
from services.merger import handler as merger
from tests.gitutil import make_repo
from tests.paths import SAMPLE


def test_a_value_is_found_only_under_the_key_it_was_computed_from(tmp_path: Path) -> None:
    path = tmp_path / "memo.sqlite3"
    with Memo(path) as memo:
        memo.put("merge", "nasa:12", digest("row", "match"), b"outcome")
    with Memo(path) as memo:
        assert memo.get("merge", "nasa:12", digest("row", "match")) == b"outcome"
        assert memo.get("merge", "nasa:12", digest("row", "another match")) is None
        assert (memo.hits, memo.misses) == (1, 1)
    for autosave in (False, True):  # a run's memo, and a service's that asks SQLite each time
        with Memo(path, autosave=autosave) as memo:
            assert memo.holds("merge", "nasa:12", digest("row", "match"))
            assert not memo.holds("merge", "nasa:12", digest("row", "another match"))
            assert not memo.holds("merge", "nasa:13", digest("row", "match"))
    with Memo(path, reading=False) as memo:  # --full
        assert not memo.holds("merge", "nasa:12", digest("row", "match"))


def test_a_unit_keeps_only_its_newest_value(tmp_path: Path) -> None:
    path = tmp_path / "memo.sqlite3"
    with Memo(path) as memo:
        memo.put("build", "systems/11 Com.xml", "old", b"1")
    with Memo(path) as memo:
        memo.put("build", "systems/11 Com.xml", "new", b"2")
    assert sqlite3.connect(path).execute("SELECT count(*) FROM memo").fetchone() == (1,)
    with Memo(path) as memo:
        assert memo.get("build", "systems/11 Com.xml", "old") is None
        assert memo.get("build", "systems/11 Com.xml", "new") == b"2"


def test_what_a_run_saves_it_finds_again_though_it_read_the_keys_before(
    tmp_path: Path,
) -> None:
    path = tmp_path / "memo.sqlite3"
    with Memo(path) as memo:
        memo.put("build", "systems/11 Com.xml", "old", b"1")
    with Memo(path) as memo:
        assert memo.get("build", "systems/11 Com.xml", "new") is None
        memo.put("build", "systems/11 Com.xml", "new", b"2")
        memo.save()  # as the publisher saves once it has built
        assert memo.get("build", "systems/11 Com.xml", "new") == b"2"
        assert memo.get("build", "systems/11 Com.xml", "old") is None


def test_a_memo_an_earlier_version_compressed_with_zlib_is_still_read(tmp_path: Path) -> None:
    path = tmp_path / "memo.sqlite3"
    with Memo(path) as memo:
        memo.put("merge", "eu:1", "k", b"new")
    with sqlite3.connect(path) as db:  # as the version before LZ4 wrote its values
        db.execute("INSERT INTO memo VALUES ('merge', 'eu:2', 'k', ?)", (zlib.compress(b"old", 1),))
    for autosave in (False, True):
        with Memo(path, autosave=autosave) as memo:
            assert memo.get("merge", "eu:1", "k") == b"new"
            assert memo.get("merge", "eu:2", "k") == b"old"


def test_full_reads_nothing_but_remembers(tmp_path: Path) -> None:
    path = tmp_path / "memo.sqlite3"
    with Memo(path) as memo:
        memo.put("merge", "eu:3", "k", b"v")
    with Memo(path, reading=False) as full:
        assert full.get("merge", "eu:3", "k") is None
        full.put("merge", "eu:4", "k", b"w")
    with Memo(path) as memo:
        assert memo.get("merge", "eu:4", "k") == b"w"


def test_an_interrupted_run_saves_nothing_more(tmp_path: Path) -> None:
    path = tmp_path / "memo.sqlite3"
    try:
        with Memo(path) as memo:
            memo.put("merge", "eu:5", "k", b"v")
            raise KeyboardInterrupt
    except KeyboardInterrupt:
        pass
    with Memo(path) as memo:
        assert memo.get("merge", "eu:5", "k") is None


def test_a_service_memo_is_visible_to_another_process_without_an_end(tmp_path: Path) -> None:
    path = tmp_path / "memo.sqlite3"
    service = Memo(path, autosave=True)
    for i in range(AUTOSAVE_ENTRIES):
        service.put("merge", f"nasa:{i}", "k", b"v")
    with Memo(path) as other:
        assert other.get("merge", f"nasa:{AUTOSAVE_ENTRIES - 1}", "k") == b"v"
    service.close()


def test_keys_do_not_collide_by_concatenation() -> None:
    assert digest("ab", "c") != digest("a", "bc")


def test_a_remembered_planet_carries_its_outcome_on_the_wire(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "oec")
    index = AliasIndex.build(repo)
    nasa = read_catalogue_file(SAMPLE / "nasa.csv")
    (record,) = [r for r in nasa.records if r.name == "AB Aur b"]
    match = matching.match(index, record)
    assert match.file is not None
    matched = PlanetMatched(
        run_id="first",
        record=record,
        match=match,
        commit=index.commit,
        system_text=index.system_texts([match.file])[match.file],
    )
    (outcome,) = merger.handle(matched)
    assert isinstance(outcome, SystemChanged | PlanetUnchanged)

    remembered = remembered_summary(outcome_value(outcome), "second", index.commit)
    sent = decode(remembered.routing_key, remembered.model_dump_json().encode())

    assert isinstance(sent, PlanetRemembered)
    for answer in (remembered.outcome(), sent.outcome()):
        assert answer.run_id == "second"
        assert answer.model_dump(exclude={"run_id", "message_id", "produced_at"}) == (
            outcome.model_dump(exclude={"run_id", "message_id", "produced_at"})
        )


def test_a_catalogue_read_and_matched_is_found_again_as_it_was(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "oec")
    index = AliasIndex.build(repo)
    data = (SAMPLE / "eu.csv").read_bytes()
    at = dt.datetime(2026, 8, 1, tzinfo=dt.UTC)
    message = CatalogueDownloaded.from_bytes("run", Source.EU, "eu.csv", data, at)
    path = tmp_path / "memo.sqlite3"
    with Memo(path) as memo:
        read = IndexerHandler(index, memo).matched(message)
    with Memo(path) as memo:
        found = IndexerHandler(index, memo).matched(message)
        assert memo.hits == 1
    assert found.model_dump() == read.model_dump()
    assert [found.record(i) for i in range(len(found.records))] == [
        read.record(i) for i in range(len(read.records))
    ]


def test_record_texts_keep_their_line_breaks_and_spaces_in_the_memo(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "oec")
    index = AliasIndex.build(repo)
    record = read_catalogue_file(SAMPLE / "eu.csv").records[0]
    awkward = record.model_copy(update={"name": "a name\nover two lines and\ta tab "})
    text = awkward.model_dump_json()
    matched = MatchedCatalogue(
        catalogue=read_catalogue_file(SAMPLE / "eu.csv").model_copy(update={"records": []}),
        records=[text, record.model_dump_json()],
        rows=[2, 3],
        matches=[matching.match(index, awkward), matching.match(index, record)],
    )
    again = MatchedCatalogue.from_value(matched.value())
    assert again.model_dump() == matched.model_dump()
    assert again.record(0) == awkward
    assert known_rows(known_rows_value({"k1": text, "k2": "{}"})) == {"k1": text, "k2": "{}"}
