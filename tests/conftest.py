"""What every test may rely on, whatever ran before it."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest


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
