"""Settings in the ops tests come from the test alone, never from the developer's shell."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("OEC_SYNC_"):
            monkeypatch.delenv(name)
