"""Broker fixtures: a private topology per test, deleted afterwards."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from runtime.config import Settings
from tests.brokerutil import cleanup, require_broker, settings_for, unique_prefix


@pytest.fixture
def settings(request: pytest.FixtureRequest) -> Iterator[Settings]:
    require_broker()
    settings = settings_for(unique_prefix(request.node.name))
    yield settings
    cleanup(settings)
