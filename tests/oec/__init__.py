"""Tests of reading, validating, editing and writing OEC system files.

Fixtures: tests/fixtures/xml holds real OEC files copied unchanged from the 2026-08-22
snapshot. Tests marked ``realdata`` read all 7,035 files from the snapshot tarball beside the
repo (../shared/data) and skip when it is absent.
"""

from __future__ import annotations

import functools
import tarfile
from pathlib import Path

import pytest

FIXTURE_XML = Path(__file__).resolve().parents[1] / "fixtures" / "xml"
SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
SNAPSHOT = SHARED_DATA / "oec-snapshot-2026-08-22.tar.gz"
SNAPSHOT_FILES = 7035


def fixture(relative: str) -> str:
    """The text of a fixture file, e.g. ``fixture("systems/11 Com.xml")``."""
    return (FIXTURE_XML / relative).read_text(encoding="utf-8")


def fixture_files() -> list[Path]:
    return sorted(FIXTURE_XML.glob("systems*/*.xml"))


@functools.cache
def snapshot_texts() -> dict[str, str]:
    """Every system file of the snapshot tarball by relative path; skips without the data."""
    if not SNAPSHOT.exists():
        pytest.skip(f"OEC snapshot not found at {SNAPSHOT}")
    texts: dict[str, str] = {}
    with tarfile.open(SNAPSHOT) as archive:
        for member in archive:
            if member.isfile() and member.name.endswith(".xml") and "/" in member.name:
                data = archive.extractfile(member)
                assert data is not None
                texts[member.name] = data.read().decode("utf-8")
    return texts
