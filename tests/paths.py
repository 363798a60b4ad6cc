"""Where the tests find their data: the bundled fixtures, and ../shared/data when present."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures"
SAMPLE = FIXTURES / "sample"
SHARED_DATA = REPO.parent / "shared" / "data"
SNAPSHOT = SHARED_DATA / "oec-snapshot-2026-08-22.tar.gz"
NASA_FULL = SHARED_DATA / "PSCompPars_2024-10-15_webUI_defaultcols.csv"
EU_FULL = SHARED_DATA / "exoplanet.eu_catalog_2025-05_filtered.csv"


def require_shared_data() -> None:
    """Skip the calling test when the full data set is not beside the repo."""
    if not SNAPSHOT.exists():
        pytest.skip(f"full data not found at {SHARED_DATA}")
