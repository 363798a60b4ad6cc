"""What every test may rely on, whatever ran before it."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.gitutil import make_repo


@pytest.fixture(autouse=True)
def restored_logging() -> Iterator[None]:
    """A test that runs a service in-process configures the process's logging (INFO, its
    own handlers); the root logger is put back afterwards, so that what a later test's log
    capture sees does not depend on the order the tests ran in."""
    root = logging.getLogger()
    level, handlers = root.level, root.handlers[:]
    yield
    root.setLevel(level)
    root.handlers[:] = handlers


@pytest.fixture
def twins(tmp_path: Path) -> tuple[Path, Path]:
    """Two identical checkouts of the sample (same commit ids), for two runs to compare."""
    first = make_repo(tmp_path / "a" / "oec")
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    return first, tmp_path / "b" / "oec"
