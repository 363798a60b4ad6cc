"""Replay from the stream and the dead-letter commands, against a real broker."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator

import pytest

from common import topology
from common.bus.rabbitmq import RabbitMQBus
from common.config import Settings
from common.errors import InvalidRowError
from common.messages import CatalogueDownloaded, CatalogueFailed, Message, RunStarted
from common.records import Source
from common.topology import Header
from services import replay
from tests.brokerutil import (
    broker_env,
    cleanup,
    oec_sync,
    queue_depth,
    require_broker,
    settings_for,
    stream_events,
    unique_prefix,
    wait_for,
)

pytestmark = pytest.mark.rabbitmq

NOW = dt.datetime(2026, 8, 22, 6, 0, tzinfo=dt.UTC)


@pytest.fixture
def settings(request: pytest.FixtureRequest) -> Iterator[Settings]:
    require_broker()
    settings = settings_for(unique_prefix(request.node.name))
    yield settings
    cleanup(settings)


def downloads(run_id: str) -> list[Message]:
    return [
        RunStarted(run_id=run_id, catalogues=[Source.EU, Source.NASA]),
        CatalogueDownloaded.from_bytes(run_id, Source.NASA, "nasa.csv", b"a,b\n1,2\n", NOW),
        CatalogueDownloaded.from_bytes(run_id, Source.EU, "eu.csv", b"c,d\n3,4\n", NOW),
    ]


def test_replay_selects_by_routing_key_run_and_source(settings: Settings) -> None:
    seen: list[tuple[str, str | None]] = []
    outcomes: list[Message] = []

    def indexer(message: Message) -> list[Message]:
        assert isinstance(message, CatalogueDownloaded)
        seen.append((message.run_id, str(message.source)))
        # An output, so that what a replay causes is seen too.
        return [CatalogueFailed(run_id=message.run_id, source=message.source, url="", error="x")]

    bus = RabbitMQBus(settings.bus, settings.amqp_url, "test")
    bus.subscribe(topology.INDEXER, indexer)
    bus.subscribe(topology.PUBLISHER, lambda message: outcomes.append(message) or [])
    bus.start(wait=20)
    try:
        bus.publish_many([*downloads("run-1"), *downloads("run-2")])
        wait_for(lambda: len(outcomes) == 6, 10, "the first deliveries and their outputs")
        selection = replay.Selection(
            routing_keys=frozenset({"catalogue.downloaded"}), run_id="run-1", source="nasa"
        )
        dry = replay.replay(settings, "first", selection, dry_run=True, idle_timeout=1.0)
        # 2 x (run.started + 2 catalogue.downloaded) + 4 catalogue.failed
        assert (dry.read, dry.selected, dry.published) == (10, 1, 0)
        assert dry.events[0]["offset"] == 1

        done = replay.replay(settings, "first", selection, idle_timeout=1.0)
        assert (done.selected, done.published) == (1, 1)
        wait_for(lambda: len(outcomes) == 7, 10, "the replayed catalogue's output")
        assert seen[-1] == ("run-1", "nasa")

        # Neither the replayed event nor what it caused went to the replay log: a second
        # replay from the first offset sees the catalogue once.
        events = stream_events(settings)
        assert len(events) == 10
        assert not [e for e in events if Header.REPLAY.value in e[1]]
        again = replay.replay(settings, "first", selection, dry_run=True, idle_timeout=1.0)
        assert (again.read, again.selected) == (10, 1)

        # From a time: nothing was published after the future.
        later = replay.replay(
            settings,
            dt.datetime.now(dt.UTC) + dt.timedelta(hours=1),
            replay.Selection(),
            idle_timeout=1.0,
        )
        assert later.selected == 0
    finally:
        bus.stop()


def test_dead_letters_from_the_command_line(settings: Settings) -> None:
    def refusing(message: Message) -> list[Message]:
        raise InvalidRowError("nasa.csv", 2, None, "cannot be read")

    bus = RabbitMQBus(settings.bus, settings.amqp_url, "test")
    bus.subscribe(topology.INDEXER, refusing)
    bus.start(wait=20)
    env = broker_env(settings.bus.prefix)
    dead = bus.topology.dead_queue(topology.INDEXER)
    try:
        bus.publish_many(downloads("run-3")[1:])
        wait_for(lambda: queue_depth(settings, dead) == 2, 10, "two dead letters")
    finally:
        bus.stop()

    listed = json.loads(oec_sync(["dead-letters", "list", "--json"], env).stdout)
    assert [d["routing_key"] for d in listed] == ["catalogue.downloaded"] * 2
    assert {d["queue"] for d in listed} == {dead}
    assert all(d["reason"] == "rejected" and d["run_id"] == "run-3" for d in listed)
    assert queue_depth(settings, dead) == 2  # listing took nothing away

    refused = oec_sync(["dead-letters", "purge", "--queue", "indexer"], env, check=False)
    assert refused.returncode == 2
    oec_sync(["dead-letters", "purge", "--queue", "indexer", "--yes"], env)
    assert queue_depth(settings, dead) == 0
