"""The memo's store: what a later run, or another process, finds in it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from common.memo import digest
from runtime.memo import AUTOSAVE_ENTRIES, Memo


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
