"""The one place that says which queue hears which events."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TypedDict

from common.messages import RoutingKey

EXCHANGE = "oec-sync"


@dataclass(frozen=True)
class WorkQueue:
    name: str
    routing_keys: tuple[RoutingKey, ...]
    # A queue of dead letters instead of events: bound to the dead-letter exchange, it takes a
    # copy of every message these work queues give up on (their `.dead` queues keep theirs).
    dead_letters_of: tuple[WorkQueue, ...] = ()


INDEXER = WorkQueue("oec-sync.indexer", (RoutingKey.CATALOGUE_DOWNLOADED,))
# planet.matched, one planet alone: a planet a merger failed on, sent on for the error policy
# (services/merger/handler.py each_planet), or a replay of runs before planets.matched.
MERGER = WorkQueue("oec-sync.merger", (RoutingKey.PLANETS_MATCHED, RoutingKey.PLANET_MATCHED))
PUBLISHER = WorkQueue(
    "oec-sync.publisher",
    (
        RoutingKey.RUN_STARTED,
        RoutingKey.CATALOGUE_FAILED,
        RoutingKey.RUN_PLANNED,
        RoutingKey.SYSTEM_CHANGED,
        RoutingKey.PLANET_UNCHANGED,
        RoutingKey.PLANET_FAILED,
        RoutingKey.PLANET_OUTCOMES,
    ),
)
# The snapshot archive's bookkeeping (runtime/archive.py Recorder, consumed by the publisher
# process, which holds DATA_DIR): the downloads and how their runs ended.
ARCHIVE = WorkQueue(
    "oec-sync.archive",
    (
        RoutingKey.CATALOGUE_DOWNLOADED,
        RoutingKey.CATALOGUE_FAILED,
        RoutingKey.RUN_PLANNED,
        RoutingKey.RUN_COMPLETED,
    ),
)
# What the indexer and the mergers give up on, turned into catalogue.failed / planet.failed
# (runtime/bus/rabbitmq.py, in the publisher process), so that a run completes with the
# failure instead of waiting for its run_timeout.
FAILURES = WorkQueue("oec-sync.failures", (), dead_letters_of=(INDEXER, MERGER))
WORK_QUEUES = (INDEXER, MERGER, PUBLISHER, ARCHIVE, FAILURES)


# --- The broker's side of the topology (runtime/bus/rabbitmq.py declares exactly this) ---


class QueueType(StrEnum):
    """``x-queue-type``: https://www.rabbitmq.com/docs/queues#optional-arguments"""

    QUORUM = "quorum"
    STREAM = "stream"


class ExchangeType(StrEnum):
    TOPIC = "topic"
    DIRECT = "direct"


class DeadLetterStrategy(StrEnum):
    """https://www.rabbitmq.com/docs/quorum-queues#dead-lettering"""

    # The dead-lettering queue keeps a message until the dead-letter queue has confirmed it,
    # so a dead letter is never lost on the way to `.dead` (needs x-overflow reject-publish).
    AT_LEAST_ONCE = "at-least-once"


class Overflow(StrEnum):
    REJECT_PUBLISH = "reject-publish"


QueueArguments = TypedDict(
    "QueueArguments",
    {
        "x-queue-type": QueueType,
        # https://www.rabbitmq.com/docs/quorum-queues#poison-message-handling
        "x-delivery-limit": int,
        # https://www.rabbitmq.com/docs/dlx
        "x-dead-letter-exchange": str,
        "x-dead-letter-routing-key": str,
        "x-dead-letter-strategy": DeadLetterStrategy,
        "x-overflow": Overflow,
        # https://www.rabbitmq.com/docs/streams#retention
        "x-max-age": str,
        "x-max-length-bytes": int,
    },
    total=False,
)


class Header(StrEnum):
    """AMQP headers the bus writes or reads. ``x-`` ones without ``oec`` are RabbitMQ's."""

    RUN_ID = "x-oec-run-id"
    SOURCE = "x-oec-source"
    REPLAY = "x-oec-replay"  # set on replayed messages and on everything they cause
    DELIVERY_COUNT = "x-delivery-count"  # quorum queues: earlier failed deliveries
    DEATH = "x-death"  # https://www.rabbitmq.com/docs/dlx#effects
    FIRST_DEATH_REASON = "x-first-death-reason"
    FIRST_DEATH_QUEUE = "x-first-death-queue"
    STREAM_OFFSET = "x-stream-offset"  # https://www.rabbitmq.com/docs/streams#consuming


@dataclass(frozen=True)
class QueueSpec:
    name: str
    arguments: QueueArguments
    exchange: str
    binding_keys: tuple[str, ...]


@dataclass(frozen=True)
class Topology:
    """Names and arguments of everything on the broker, under one ``prefix``.

    The default prefix gives the names above (``oec-sync.indexer``); tests use a prefix of
    their own so that runs on one broker never see each other's messages.
    """

    prefix: str = EXCHANGE
    delivery_limit: int = 5
    stream_max_age: str = "7D"
    stream_max_bytes: int = 5 * 2**30

    @property
    def exchange(self) -> str:
        """The durable topic exchange every new event is published to. It routes everything
        to the stream and, through :attr:`work_exchange`, to the work queues."""
        return self.prefix

    @property
    def work_exchange(self) -> str:
        """The topic exchange the work queues are bound to. Replays (and what they cause) are
        published here directly: they reach the work queues and never the replay log, since
        a stream keeps what an exchange routes to it (https://www.rabbitmq.com/docs/e2e)."""
        return f"{self.prefix}.work"

    @property
    def dead_letter_exchange(self) -> str:
        """Direct exchange; a work queue dead-letters with its own name as routing key."""
        return f"{self.prefix}.dlx"

    @property
    def stream(self) -> str:
        """The replay log: every event, in order, kept for ``stream_max_age``."""
        return f"{self.prefix}.events"

    def queue(self, work: WorkQueue) -> str:
        return f"{self.prefix}.{work.name.rpartition('.')[2]}"

    def dead_queue(self, work: WorkQueue) -> str:
        return f"{self.queue(work)}.dead"

    def work_queue(self, name: str) -> WorkQueue:
        """The work queue a declared name (``<prefix>.merger``) or a role (``merger``) means."""
        for work in WORK_QUEUES:
            if name in {self.queue(work), work.name.rpartition(".")[2]}:
                return work
        raise KeyError(name)

    def work_arguments(self, work: WorkQueue) -> QueueArguments:
        return {
            "x-queue-type": QueueType.QUORUM,
            "x-delivery-limit": self.delivery_limit,
            "x-dead-letter-exchange": self.dead_letter_exchange,
            "x-dead-letter-routing-key": self.queue(work),
            "x-dead-letter-strategy": DeadLetterStrategy.AT_LEAST_ONCE,
            "x-overflow": Overflow.REJECT_PUBLISH,
        }

    def queues(self) -> list[QueueSpec]:
        """Every queue with its arguments and bindings, in declaration order."""
        specs: list[QueueSpec] = []
        for work in WORK_QUEUES:
            if work.dead_letters_of:
                source = self.dead_letter_exchange
                keys = tuple(self.queue(w) for w in work.dead_letters_of)
            else:
                source, keys = self.work_exchange, tuple(work.routing_keys)
            specs.append(QueueSpec(self.queue(work), self.work_arguments(work), source, keys))
            specs.append(
                QueueSpec(
                    self.dead_queue(work),
                    {"x-queue-type": QueueType.QUORUM},
                    self.dead_letter_exchange,
                    (self.queue(work),),
                )
            )
        stream_arguments: QueueArguments = {
            "x-queue-type": QueueType.STREAM,
            "x-max-age": self.stream_max_age,
            "x-max-length-bytes": self.stream_max_bytes,
        }
        specs.append(QueueSpec(self.stream, stream_arguments, self.exchange, ("#",)))
        return specs

    def exchanges(self) -> list[tuple[str, ExchangeType]]:
        return [
            (self.exchange, ExchangeType.TOPIC),
            (self.work_exchange, ExchangeType.TOPIC),
            (self.dead_letter_exchange, ExchangeType.DIRECT),
        ]

    def exchange_bindings(self) -> list[tuple[str, str, str]]:
        """(destination, source, binding key) of every exchange-to-exchange binding."""
        return [(self.work_exchange, self.exchange, "#")]
