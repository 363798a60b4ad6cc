"""The RabbitMQ bus against a real broker: delivery, acks, idempotency, errors, heartbeats."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

import pika
import pytest

from common import topology
from common.errors import InvalidRowError
from common.matching import Match, MatchKind
from common.messages import (
    Message,
    PlanetFailed,
    PlanetMatched,
    PlanetOutcomes,
    PlanetsMatched,
    PlanetUnchanged,
    RunStarted,
)
from common.records import PlanetRecord, Source
from runtime.bus import Handler
from runtime.bus.rabbitmq import RabbitMQBus, topology_for
from runtime.config import Settings
from services import replay
from services.merger.handler import each_planet
from tests.brokerutil import blocking_channel, queue_depth, wait_for

pytestmark = pytest.mark.rabbitmq

RUN = "20260822-test"


def matched(row: int, name: str | None = None) -> PlanetMatched:
    record = PlanetRecord(
        source=Source.NASA, catalogue="nasa.csv", row=row, name=name or f"Test-{row} b"
    )
    return PlanetMatched(
        run_id=RUN,
        record=record,
        match=Match(kind=MatchKind.NONE),
        commit="0" * 40,
        system_text="<system><name>x</name></system>\n" * 200,  # big enough to be gzipped
    )


def unchanged(message: Message) -> list[Message]:
    assert isinstance(message, PlanetMatched)
    record = message.record
    return [
        PlanetUnchanged(
            run_id=message.run_id,
            source=record.source,
            row=record.row,
            planet=record.name,
            match_kind=message.match.kind,
        )
    ]


class Collector:
    """A publisher-queue handler that remembers what it got."""

    def __init__(self) -> None:
        self.ids: Counter[str] = Counter()
        self.lock = threading.Lock()

    def __call__(self, message: Message) -> list[Message]:
        with self.lock:
            self.ids[message.message_id] += 1
        return []

    def __len__(self) -> int:
        return len(self.ids)


@contextmanager
def running(settings: Settings, *subs: tuple[topology.WorkQueue, Handler]) -> Iterator[RabbitMQBus]:
    bus = RabbitMQBus(settings.bus, settings.amqp_url, "test")
    for queue, handler in subs:
        bus.subscribe(queue, handler)
    with running_bus(bus):
        yield bus


@contextmanager
def running_bus(bus: RabbitMQBus) -> Iterator[RabbitMQBus]:
    bus.start(wait=20)
    try:
        yield bus
    finally:
        bus.stop()


def test_topology_is_declared_as_designed(settings: Settings) -> None:
    with running(settings) as bus:
        assert bus.ready
    topo = topology_for(settings.bus)
    connection, channel = blocking_channel(settings)
    with connection:
        for spec in topo.queues():
            channel.queue_declare(spec.name, passive=True)  # raises if missing
    merger = topo.work_arguments(topology.MERGER)
    assert merger["x-queue-type"] == "quorum"
    assert merger["x-delivery-limit"] == settings.bus.delivery_limit
    assert merger["x-dead-letter-exchange"] == topo.dead_letter_exchange
    stream = next(s for s in topo.queues() if s.name == topo.stream)
    assert stream.arguments["x-queue-type"] == "stream"
    assert stream.binding_keys == ("#",)


def test_outputs_are_published_and_every_event_reaches_the_stream(settings: Settings) -> None:
    collector = Collector()
    inputs = [matched(i) for i in range(200)]
    with running(settings, (topology.MERGER, unchanged), (topology.PUBLISHER, collector)) as bus:
        bus.publish_many(inputs)
        wait_for(lambda: len(collector) == 200, 30, "200 outcomes")
        queue = bus.topology.queue(topology.MERGER)
        wait_for(lambda: queue_depth(settings, queue) == 0, 10, "an empty merger queue")
        snapshot = bus.snapshot.as_dict()
    assert all(n == 1 for n in collector.ids.values())
    assert snapshot["broker"]["consuming"]
    assert snapshot["recent_runs"][0]["handled"]["planet.matched"] == 200
    log = list(replay.read_stream(settings, "first", idle_timeout=1.0))
    keys = Counter(key for _, key, _, _ in log)
    assert keys == {"planet.matched": 200, "planet.unchanged": 200}


def test_a_redelivered_message_is_handled_once(settings: Settings) -> None:
    calls: Counter[str] = Counter()

    def counting(message: Message) -> list[Message]:
        calls[message.message_id] += 1
        return unchanged(message)

    collector = Collector()
    message = matched(1)
    with running(settings, (topology.MERGER, counting), (topology.PUBLISHER, collector)) as bus:
        bus.publish(message)
        bus.publish(message)  # a producer that retried after a lost confirm
        wait_for(lambda: len(collector) == 1, 10, "the outcome")
        queue = bus.topology.queue(topology.MERGER)
        wait_for(lambda: queue_depth(settings, queue) == 0, 10, "an empty merger queue")
        time.sleep(0.3)
    assert calls[message.message_id] == 1
    assert collector.ids[unchanged(message)[0].message_id] == 1


def test_a_permanent_error_is_dead_lettered_at_once(settings: Settings) -> None:
    calls: Counter[str] = Counter()
    dead: list[tuple[str, str]] = []

    def refusing(message: Message) -> list[Message]:
        calls[message.message_id] += 1
        raise InvalidRowError("nasa.csv", 3, "pl_bmasse", "not a number")

    bus = RabbitMQBus(
        settings.bus,
        settings.amqp_url,
        "test",
        on_dead_letter=lambda q, k, m, e, r: dead.append((q, e)),
    )
    bus.subscribe(topology.MERGER, refusing)
    bus.start(wait=20)
    try:
        bus.publish(matched(3))
        dead_queue = bus.topology.dead_queue(topology.MERGER)
        wait_for(lambda: queue_depth(settings, dead_queue) == 1, 10, "the dead letter")
    finally:
        bus.stop()
    assert sum(calls.values()) == 1  # no retries for a permanent error
    assert dead and dead[0][0] == dead_queue and "not a number" in dead[0][1]
    (letter,) = replay.list_dead_letters(settings, "merger")
    assert letter.routing_key == "planet.matched"
    assert letter.reason == "rejected"


def test_a_poison_message_is_dead_lettered_after_the_limit_and_replayed_after_a_fix(
    settings: Settings,
) -> None:
    poison = matched(7, "Poison b")
    fixed = threading.Event()
    attempts: Counter[str] = Counter()

    def merger(message: Message) -> list[Message]:
        assert isinstance(message, PlanetMatched)
        attempts[message.record.name] += 1
        if message.record.name == "Poison b" and not fixed.is_set():
            raise ZeroDivisionError("a bug this row triggers")
        return unchanged(message)

    collector = Collector()
    good = [matched(i) for i in range(10)]
    alerts: list[tuple[str, str]] = []
    bus = RabbitMQBus(
        settings.bus,
        settings.amqp_url,
        "test",
        on_dead_letter=lambda q, k, m, e, r: alerts.append((m, e)),
    )
    bus.subscribe(topology.MERGER, merger)
    bus.subscribe(topology.PUBLISHER, collector)
    with running_bus(bus):
        bus.publish_many([poison, *good])
        dead_queue = bus.topology.dead_queue(topology.MERGER)
        wait_for(lambda: queue_depth(settings, dead_queue) == 1, 30, "the poison message in .dead")
        wait_for(lambda: len(collector) == 10, 10, "the good messages' outcomes")
        # x-delivery-limit 3: the first delivery and three redeliveries, then .dead.
        assert attempts["Poison b"] == settings.bus.delivery_limit + 1
        (letter,) = replay.list_dead_letters(settings, "merger")
        assert letter.reason == "delivery_limit"
        assert letter.message_id == poison.message_id
        assert queue_depth(settings, dead_queue) == 1  # listing leaves it there
        assert alerts == [(poison.message_id, "ZeroDivisionError: a bug this row triggers")]

        fixed.set()  # the bug is fixed (a new merger version is deployed)
        _, moved = replay.replay_dead_letters(settings, "merger")
        assert moved == 1
        wait_for(lambda: len(collector) == 11, 10, "the replayed message's outcome")
        assert queue_depth(settings, dead_queue) == 0
    assert all(n == 1 for n in collector.ids.values())


def test_a_long_handler_does_not_starve_heartbeats(settings: Settings) -> None:
    settings = settings.model_copy(update={"bus": settings.bus.model_copy(update={"heartbeat": 1})})
    done = threading.Event()

    def slow(message: Message) -> list[Message]:
        time.sleep(4.0)  # four heartbeat intervals; a blocked I/O thread would lose the link
        done.set()
        return []

    with running(settings, (topology.PUBLISHER, slow)) as bus:
        bus.publish(RunStarted(run_id=RUN, catalogues=[Source.NASA]))
        assert done.wait(15)
        queue = bus.topology.queue(topology.PUBLISHER)
        wait_for(lambda: queue_depth(settings, queue) == 0, 5, "the ack")
        assert bus.snapshot.reconnects == 0
        assert bus.snapshot.connected


def test_undecodable_bodies_go_to_dead_letters(settings: Settings) -> None:
    collector = Collector()
    with running(settings, (topology.PUBLISHER, collector)) as bus:
        connection, channel = blocking_channel(settings)
        with connection:
            channel.basic_publish(
                bus.topology.exchange,
                "run.started",
                b"{not json",
                pika.BasicProperties(type="run.started", message_id="x", delivery_mode=2),
            )
        dead_queue = bus.topology.dead_queue(topology.PUBLISHER)
        wait_for(lambda: queue_depth(settings, dead_queue) == 1, 10, "the dead letter")
    assert len(collector) == 0


class Outcomes:
    """A publisher-queue handler that keeps every message it got."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.lock = threading.Lock()

    def __call__(self, message: Message) -> list[Message]:
        with self.lock:
            if isinstance(message, PlanetOutcomes):
                self.messages += message.outcomes()
            else:
                self.messages.append(message)
        return []

    def failed(self) -> dict[str, PlanetFailed]:
        with self.lock:
            return {m.planet: m for m in self.messages if isinstance(m, PlanetFailed)}


def test_what_the_mergers_give_up_on_becomes_planet_failed(settings: Settings) -> None:
    def merger(message: Message) -> list[Message]:
        assert isinstance(message, PlanetMatched)
        if message.record.name == "Refused b":
            raise InvalidRowError("nasa.csv", 3, "pl_bmasse", "not a number")
        if message.record.name == "Poison b":
            raise ZeroDivisionError("a bug this row triggers")
        return unchanged(message)

    outcomes = Outcomes()
    bus = RabbitMQBus(settings.bus, settings.amqp_url, "test")
    bus.subscribe(topology.MERGER, merger)
    bus.subscribe(topology.PUBLISHER, outcomes)
    bus.report_dead_letters()
    with running_bus(bus):
        refused, poison = matched(3, "Refused b"), matched(7, "Poison b")
        bus.publish_many([refused, poison, *(matched(i) for i in range(10, 15))])
        wait_for(lambda: len(outcomes.messages) == 7, 30, "five outcomes and two failures")
        dead_queue = bus.topology.dead_queue(topology.MERGER)
        assert queue_depth(settings, dead_queue) == 2  # still there to inspect and replay

    failed = outcomes.failed()
    assert set(failed) == {"Refused b", "Poison b"}
    assert (failed["Refused b"].source, failed["Refused b"].row) == (Source.NASA, 3)
    assert "refused it (a permanent error)" in failed["Refused b"].error
    assert "x-delivery-limit" in failed["Poison b"].error
    assert failed["Poison b"].run_id == RUN
    assert dead_queue in failed["Poison b"].error


def test_a_planet_a_merger_fails_on_leaves_the_planets_sent_with_it_merged(
    settings: Settings,
) -> None:
    def merger(message: Message) -> list[Message]:
        assert isinstance(message, PlanetMatched)
        if message.record.name == "Poison b":
            raise ZeroDivisionError("a bug this row triggers")
        return unchanged(message)

    outcomes = Outcomes()
    bus = RabbitMQBus(settings.bus, settings.amqp_url, "test")
    bus.subscribe(topology.MERGER, each_planet(merger))
    bus.subscribe(topology.PUBLISHER, outcomes)
    bus.report_dead_letters()
    with running_bus(bus):
        planets = [matched(10), matched(7, "Poison b"), matched(11), matched(12)]
        bus.publish(PlanetsMatched(run_id=RUN, planets=planets))
        wait_for(lambda: len(outcomes.messages) == 4, 30, "three outcomes and a failure")
        # The poisoned planet alone went through the error policy, and waits to be replayed.
        dead_queue = bus.topology.dead_queue(topology.MERGER)
        assert queue_depth(settings, dead_queue) == 1

    assert list(outcomes.failed()) == ["Poison b"]
    assert "x-delivery-limit" in outcomes.failed()["Poison b"].error
    merged = {m.planet for m in outcomes.messages if isinstance(m, PlanetUnchanged)}
    assert merged == {"Test-10 b", "Test-11 b", "Test-12 b"}


def test_a_planets_matched_its_consumers_die_on_fails_each_of_its_planets(
    settings: Settings,
) -> None:
    outcomes = Outcomes()
    bus = RabbitMQBus(settings.bus, settings.amqp_url, "test")
    bus.subscribe(topology.PUBLISHER, outcomes)
    bus.report_dead_letters()
    with running_bus(bus):
        bus.publish(PlanetsMatched(run_id=RUN, planets=[matched(9, "Deadly b"), matched(10)]))
        merger_queue = bus.topology.queue(topology.MERGER)
        for attempt in range(settings.bus.delivery_limit + 1):
            wait_for(lambda: take_and_die(settings, merger_queue), 10, f"delivery {attempt + 1}")
        wait_for(lambda: len(outcomes.failed()) == 2, 10, "the failure events")
    assert sorted(outcomes.failed()) == ["Deadly b", "Test-10 b"]


def take_and_die(settings: Settings, queue: str) -> bool:
    """Take a message as a consumer that dies holding it: no ack, no reject."""
    connection, channel = blocking_channel(settings)
    method, _, _ = channel.basic_get(queue)
    connection.close()
    return method is not None


def test_a_message_its_consumers_die_on_becomes_planet_failed(settings: Settings) -> None:
    # A merger killed by a message (out of memory, a segfault) never reaches its error
    # policy; the broker counts the returns (RabbitMQ 3.x quorum queues) and dead-letters it
    # after the delivery limit, and the failure event is made from that dead letter.
    outcomes = Outcomes()
    bus = RabbitMQBus(settings.bus, settings.amqp_url, "test")
    bus.subscribe(topology.PUBLISHER, outcomes)
    bus.report_dead_letters()
    with running_bus(bus):
        bus.publish(matched(9, "Deadly b"))
        merger_queue = bus.topology.queue(topology.MERGER)
        for attempt in range(settings.bus.delivery_limit + 1):
            wait_for(lambda: take_and_die(settings, merger_queue), 10, f"delivery {attempt + 1}")
        wait_for(lambda: outcomes.failed(), 10, "the failure event")
    assert list(outcomes.failed()) == ["Deadly b"]


class Committing:
    """A publisher-queue handler that keeps what it takes only when flushed, as the run store
    does; ``failures`` flushes fail first, as a full disk would."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.taken: list[str] = []
        self.kept: Counter[str] = Counter()
        self.handled: Counter[str] = Counter()
        self.flushes = 0

    def __call__(self, message: Message) -> list[Message]:
        self.taken.append(message.message_id)
        self.handled[message.message_id] += 1
        return []

    def flush(self) -> None:
        self.flushes += 1
        taken, self.taken = self.taken, []
        if self.failures:
            self.failures -= 1
            raise OSError("disk full")
        self.kept.update(taken)


def test_a_flushing_handler_is_acknowledged_after_its_flush_and_retried_when_it_fails(
    settings: Settings,
) -> None:
    committing = Committing(failures=1)
    inputs = [matched(i) for i in range(200)]
    with running(settings, (topology.MERGER, unchanged), (topology.PUBLISHER, committing)) as bus:
        bus.publish_many(inputs)
        wait_for(lambda: len(committing.kept) == 200, 30, "200 outcomes kept")
        queue = topology_for(settings.bus).queue(topology.PUBLISHER)
        wait_for(lambda: queue_depth(settings, queue) == 0, 10, "an empty publisher queue")
        time.sleep(0.3)
    # What the failed flush had taken came back from the broker: acknowledged only once kept.
    assert set(committing.kept) == set(committing.handled)
    assert all(n == 1 for n in committing.kept.values())
    assert any(n == 2 for n in committing.handled.values())
    # One commit for many deliveries, not one each.
    assert committing.flushes < 200 / 4
