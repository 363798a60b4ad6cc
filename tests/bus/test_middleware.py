"""The bus middleware: the same policy around handlers on the memory bus as on the broker."""

from __future__ import annotations

from common import topology
from common.bus.memory import MemoryBus
from common.bus.middleware import (
    DeadLetterAlert,
    Deduplicate,
    Delivery,
    ErrorPolicy,
    GiveUp,
    Metrics,
    Outcome,
    Settle,
    Skip,
    UndecodableError,
    standard,
)
from common.errors import InvalidRowError, RepositoryBusyError
from common.messages import Message, PlanetFailed
from common.telemetry import BusMetrics, StatusSnapshot
from tests.bus.test_rabbitmq import RUN, Collector, matched, unchanged

TOPOLOGY = topology.Topology(prefix="test")


def delivery(failures: int = 0, message_id: str = "m1") -> Delivery:
    return Delivery(
        work=topology.MERGER,
        queue="test.merger",
        routing_key="planet.matched",
        message_id=message_id,
        run_id=RUN,
        failures=failures,
    )


def handled(metrics: BusMetrics, queue: str, outcome: str) -> float:
    value = metrics.registry.get_sample_value(
        "oec_sync_messages_handled_total",
        {"queue": queue, "routing_key": "planet.matched", "outcome": outcome},
    )
    return value or 0.0


def test_a_duplicate_delivery_is_dropped_on_the_memory_bus_too() -> None:
    bus = MemoryBus()
    calls: list[str] = []

    def merger(message: Message) -> list[Message]:
        calls.append(message.message_id)
        return unchanged(message)

    collector = Collector()
    bus.subscribe(topology.MERGER, merger)
    bus.subscribe(topology.PUBLISHER, collector)
    bus.publish(matched(1))
    bus.publish(matched(1))  # the same message again, as a redelivery would bring it
    bus.publish(matched(2))
    bus.run_until_idle()
    assert len(calls) == 2
    assert len(collector) == 2 and all(n == 1 for n in collector.ids.values())
    queue = topology.MERGER.name
    assert handled(bus.metrics, queue, "ok") == 2
    assert handled(bus.metrics, queue, "duplicate") == 1


def test_a_failed_message_becomes_its_failure_event_and_is_counted_dead() -> None:
    alerts: list[tuple[str, str]] = []
    metrics = BusMetrics()
    alert = DeadLetterAlert(TOPOLOGY, lambda q, k, m, e, r: alerts.append((q, e)))
    bus = MemoryBus(middleware=standard(GiveUp(), Metrics(metrics, StatusSnapshot("t")), alert))
    collector = Collector()
    failures: list[PlanetFailed] = []

    def refusing(message: Message) -> list[Message]:
        raise InvalidRowError("nasa.csv", 3, "pl_bmasse", "not a number")

    def publisher(message: Message) -> list[Message]:
        assert isinstance(message, PlanetFailed)
        failures.append(message)
        return collector(message)

    bus.subscribe(topology.MERGER, refusing)
    bus.subscribe(topology.PUBLISHER, publisher)
    bus.publish(matched(1))
    bus.run_until_idle()
    error = "InvalidRowError: nasa.csv, row 3, column pl_bmasse: not a number"
    assert [f.error for f in failures] == [error]
    assert alerts == [("test.merger.dead", error)]
    assert handled(metrics, topology.MERGER.name, "dead") == 1


def test_the_error_policy_retries_with_backoff_then_dead_letters_at_the_limit() -> None:
    policy = ErrorPolicy(delivery_limit=3)
    busy = RepositoryBusyError("someone else writes branches")
    first = policy.failed(delivery(failures=0), busy)
    later = policy.failed(delivery(failures=2), busy)
    last = policy.failed(delivery(failures=3), busy)
    assert (first.settle, first.outcome) == (Settle.REQUEUE, Outcome.RETRY)
    assert first.delay < later.delay
    # The requeue that uses up x-delivery-limit: the queue dead-letters the message.
    assert (last.settle, last.outcome) == (Settle.REQUEUE, Outcome.DEAD)
    assert last.error.startswith("RepositoryBusyError: ")


def test_a_permanent_error_or_an_undecodable_body_is_dead_lettered_at_once() -> None:
    policy = ErrorPolicy(delivery_limit=3)
    for error in (InvalidRowError("f", 1, None, "bad"), UndecodableError("undecodable: x")):
        verdict = policy.failed(delivery(), error)
        assert (verdict.settle, verdict.outcome, verdict.error) == (
            Settle.REJECT,
            Outcome.DEAD,
            str(error),
        )


def test_a_twin_in_progress_waits_and_is_settled_with_the_first() -> None:
    dedup = Deduplicate()
    first, twin, later = delivery(), delivery(), delivery()
    assert dedup.before(first) is None
    assert dedup.before(twin) is Skip.WAITING
    assert dedup.settled(twin, Outcome.DUPLICATE) == []  # only the one that ran decides
    assert dedup.settled(first, Outcome.OK) == [twin]
    assert dedup.before(later) is Skip.HANDLED


def test_a_failed_message_is_not_remembered_as_handled() -> None:
    dedup = Deduplicate()
    first, again = delivery(), delivery()
    assert dedup.before(first) is None
    dedup.settled(first, Outcome.RETRY)
    assert dedup.before(again) is None


def test_deduplication_forgets_the_oldest_ids_beyond_its_memory() -> None:
    dedup = Deduplicate(memory=2)
    for n in range(3):
        d = delivery(message_id=f"m{n}")
        dedup.before(d)
        dedup.settled(d, Outcome.OK)
    assert dedup.before(delivery(message_id="m0")) is None
    assert dedup.before(delivery(message_id="m2")) is Skip.HANDLED
