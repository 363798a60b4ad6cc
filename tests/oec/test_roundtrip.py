"""Parsing and serialising a system file gives back the same bytes (README, tree.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from common.oec.tree import parse_system, serialize
from tests.oec import FIXTURE_XML, SNAPSHOT_FILES, fixture_files, snapshot_texts


def test_fixtures_are_a_small_real_subset() -> None:
    files = fixture_files()
    assert 20 <= len(files) < 40
    assert any(f.parent.name == "systems_kepler" for f in files)


@pytest.mark.parametrize("path", fixture_files(), ids=lambda p: p.name)
def test_fixture_round_trips_byte_identical(path: Path) -> None:
    data = path.read_bytes()
    text = data.decode("utf-8")
    assert serialize(parse_system(text)).encode("utf-8") == data
    assert serialize(parse_system(data)) == text  # bytes in, same text out


def test_non_ascii_survives_unescaped() -> None:
    text = (FIXTURE_XML / "systems" / "55 Cancri.xml").read_text(encoding="utf-8")
    out = serialize(parse_system(text))
    assert "ρ¹ Cancri" in out
    assert "&#" not in out


@pytest.mark.realdata
def test_every_snapshot_file_round_trips_byte_identical() -> None:
    texts = snapshot_texts()
    assert len(texts) == SNAPSHOT_FILES
    changed = [name for name, text in texts.items() if serialize(parse_system(text)) != text]
    assert changed == []


def test_a_comment_keeps_its_own_spelling_of_an_empty_tag() -> None:
    # lxml writes ``<a/>``, OEC ``<a />``; inside a comment only the unspaced form is
    # rewritten, whether or not the comment also holds the spaced one.
    text = "<system>\n\t<!-- <a /> <b/> -->\n\t<name>A</name>\n\t<mass/>\n</system>\n"
    assert serialize(parse_system(text)) == (
        "<system>\n\t<!-- <a /> <b /> -->\n\t<name>A</name>\n\t<mass />\n</system>\n"
    )
