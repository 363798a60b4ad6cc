"""What a bus does around every handler, one small class per policy, composed in a list
(Dramatiq's middleware): log context, de-duplication, the error policy, the dead-letter alert
and metrics. Both buses apply such a list (:func:`standard`), so a handler meets the same
policy in the embedded run as behind RabbitMQ; only the error policy differs (in one process
there is nothing transient to wait out, so :class:`GiveUp` gives up at once).

The hooks, in the order a bus calls them for one delivery (each has a do-nothing default)::

    context(d)            a context manager the whole handling runs in (log fields)
    before(d)             None to run the handler, or a Skip: a duplicate of a message handled
                          before (settled at once) or of one in progress (settled with it)
    timed(d, seconds)     the handler's time, whether it returned or raised
    failed(d, exc)        the first Verdict given decides: dead-letter now, or requeue after
                          a delay (and dead-letter when the delivery limit is used up)
    dead(d, error)        the message is given up on (an alert)
    settled(d, outcome)   the delivery's outcome; returns deliveries parked behind it, which
                          the bus settles the same way

The list's order is the order of the hooks' calls; ``context`` managers nest in it.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, ExitStack, nullcontext
from dataclasses import dataclass, field
from enum import Enum, StrEnum
from typing import Any

from common.errors import PermanentError, RetryableError
from common.topology import Topology, WorkQueue
from runtime.logging import log_context
from runtime.telemetry import BusMetrics, StatusSnapshot

log = logging.getLogger(__name__)

DEDUP_MEMORY = 200_000  # message ids remembered per process for idempotency


class Outcome(StrEnum):
    """How a delivery ended (the ``outcome`` label of oec_sync_messages_handled)."""

    OK = "ok"
    DUPLICATE = "duplicate"
    RETRY = "retry"
    DEAD = "dead"
    STALE = "stale"  # its channel went away before it was settled: the broker redelivers it


class Settle(StrEnum):
    """What the bus tells the broker about a delivery."""

    ACK = "ack"
    REQUEUE = "requeue"
    REJECT = "reject"  # without requeue: the quorum queue dead-letters it to <queue>.dead


class Skip(Enum):
    HANDLED = "handled"  # a duplicate of a message handled before: acknowledge it
    WAITING = "waiting"  # its twin is in progress: settled like that one, when it is


class UndecodableError(PermanentError):
    """A body that is no message of ours: no retry will decode it."""


@dataclass(eq=False)
class Delivery:
    """One message on its way to a handler, as the middleware sees it. Compared by identity:
    two deliveries of one message are two deliveries."""

    work: WorkQueue
    queue: str  # the queue's name under the bus's prefix
    routing_key: str
    message_id: str
    run_id: str
    replay: str = ""  # the replay id, "" for a new event
    failures: int = 0  # earlier failed deliveries (quorum queues' x-delivery-count)
    headers: dict[str, Any] = field(default_factory=dict)
    transport: Any = None  # the bus's own handle (the broker's delivery tag and channel)

    @property
    def key(self) -> tuple[str, str, str] | None:
        """What idempotency compares: the same message in the same queue, same replay."""
        return (self.queue, self.message_id, self.replay) if self.message_id else None


@dataclass(frozen=True)
class Verdict:
    """The error policy's decision on a failed delivery."""

    settle: Settle
    outcome: Outcome
    error: str  # what the dead-letter alert and the failure event say
    delay: float = 0.0  # seconds to wait before requeueing (backoff)


class Middleware:
    """A policy around handlers; override the hooks it needs (see the module docstring)."""

    def context(self, delivery: Delivery) -> AbstractContextManager[None]:
        return nullcontext()

    def before(self, delivery: Delivery) -> Skip | None:
        return None

    def timed(self, delivery: Delivery, seconds: float) -> None:
        return None

    def failed(self, delivery: Delivery, error: Exception) -> Verdict | None:
        return None

    def dead(self, delivery: Delivery, error: str) -> None:
        return None

    def settled(self, delivery: Delivery, outcome: Outcome) -> list[Delivery]:
        return []


class LogContext(Middleware):
    """Every log line written while a message is handled names its run, message and queue."""

    def context(self, delivery: Delivery) -> AbstractContextManager[None]:
        return log_context(
            run_id=delivery.run_id or None,
            message_id=delivery.message_id or None,
            routing_key=delivery.routing_key,
            queue=delivery.queue,
        )


class Deduplicate(Middleware):
    """A message handled before in this queue is acknowledged without running the handler
    again; one delivered twice at once waits for its twin's outcome. Remembers the last
    ``memory`` message ids (a redelivery comes soon after the first delivery)."""

    def __init__(self, memory: int = DEDUP_MEMORY) -> None:
        self.memory = memory
        self._handled: OrderedDict[tuple[str, str, str], None] = OrderedDict()
        self._in_progress: dict[tuple[str, str, str], tuple[Delivery, list[Delivery]]] = {}
        self._lock = threading.Lock()

    def before(self, delivery: Delivery) -> Skip | None:
        key = delivery.key
        if key is None:
            return None
        with self._lock:
            if key in self._handled:
                log.info("already handled; acknowledging the duplicate")
                return Skip.HANDLED
            progress = self._in_progress.get(key)
            if progress is not None:
                progress[1].append(delivery)
                return Skip.WAITING
            self._in_progress[key] = (delivery, [])
            return None

    def settled(self, delivery: Delivery, outcome: Outcome) -> list[Delivery]:
        key = delivery.key
        if key is None:
            return []
        with self._lock:
            progress = self._in_progress.get(key)
            if progress is None or progress[0] is not delivery:
                return []  # a duplicate or a twin: the one that ran decides
            del self._in_progress[key]
            if outcome is Outcome.OK:
                self._handled[key] = None
                while len(self._handled) > self.memory:
                    self._handled.popitem(last=False)
            return progress[1]


class ErrorPolicy(Middleware):
    """The broker's policy, by error type (common/errors.py), never by text:

    - a :class:`~common.errors.PermanentError` (or an undecodable body): dead-lettered at once;
    - a :class:`~common.errors.RetryableError`: requeued after an exponential backoff (up to
      30 s); once ``delivery_limit`` failed deliveries are used up, the queue dead-letters it;
    - any other exception is a bug for this input: requeued like a retryable one with a short
      backoff (2 s cap), so a poison message ends in ``.dead`` instead of blocking the queue.
    """

    def __init__(self, delivery_limit: int) -> None:
        self.delivery_limit = delivery_limit

    def failed(self, delivery: Delivery, error: Exception) -> Verdict:
        if isinstance(error, UndecodableError):
            log.error("undecodable message; dead-lettering it", exc_info=error)
            return Verdict(Settle.REJECT, Outcome.DEAD, str(error))
        if isinstance(error, PermanentError):
            log.error("permanent failure; dead-lettering the message", exc_info=error)
            return Verdict(Settle.REJECT, Outcome.DEAD, str(error))
        retryable = isinstance(error, RetryableError)
        failures = delivery.failures
        log.warning(
            "handler failed; requeueing"
            + ("" if retryable else " (the delivery limit catches a poison message)"),
            exc_info=None if retryable else error,
            extra={"error": str(error), "failed_deliveries": failures},
        )
        if failures >= self.delivery_limit:
            # This requeue uses up x-delivery-limit: the queue dead-letters the message.
            return Verdict(Settle.REQUEUE, Outcome.DEAD, f"{type(error).__name__}: {error}")
        cap = 30.0 if retryable else 2.0
        return Verdict(Settle.REQUEUE, Outcome.RETRY, str(error), delay=min(cap, 0.1 * 2**failures))


class GiveUp(Middleware):
    """The embedded run's policy: a message whose handler raised is given up on at once (its
    failure event accounts for it); the bus says so in one warning line."""

    def failed(self, delivery: Delivery, error: Exception) -> Verdict:
        log.debug("handler failed", exc_info=error)
        return Verdict(Settle.REJECT, Outcome.DEAD, f"{type(error).__name__}: {error}")


DeadLetterHook = Callable[[str, str, str, str, str | None], None]
"""Told (dead queue, routing key, message id, error, run id) when a message is given up on;
called on a worker thread, so it may take its time (e-mail), and must not raise."""


class DeadLetterAlert(Middleware):
    """Tells ``hook`` (the admin's alert) of every message given up on, with its dead queue."""

    def __init__(self, topology: Topology, hook: DeadLetterHook) -> None:
        self.topology = topology
        self.hook = hook

    def dead(self, delivery: Delivery, error: str) -> None:
        dead = self.topology.dead_queue(delivery.work)
        try:
            self.hook(
                dead, delivery.routing_key, delivery.message_id, error, delivery.run_id or None
            )
        except Exception:
            log.exception("the dead-letter hook failed")


class Metrics(Middleware):
    """Handler time and outcomes in Prometheus, and each run's activity in /status."""

    def __init__(self, metrics: BusMetrics, snapshot: StatusSnapshot) -> None:
        self.metrics = metrics
        self.snapshot = snapshot
        # Labelled children looked up once each: ``labels()`` costs more than the update.
        self._timers: dict[str, Any] = {}
        self._counts: dict[tuple[str, str, Outcome], Any] = {}

    def timed(self, delivery: Delivery, seconds: float) -> None:
        timer = self._timers.get(delivery.queue)
        if timer is None:
            timer = self._timers[delivery.queue] = self.metrics.handler_seconds.labels(
                delivery.queue
            )
        timer.observe(seconds)

    def settled(self, delivery: Delivery, outcome: Outcome) -> list[Delivery]:
        labels = (delivery.queue, delivery.routing_key or "?", outcome)
        count = self._counts.get(labels)
        if count is None:
            count = self._counts[labels] = self.metrics.handled.labels(*labels)
        count.inc()
        if delivery.run_id:
            self.snapshot.record(
                delivery.run_id, delivery.message_id, delivery.routing_key, delivery.queue, outcome
            )
        return []


def standard(
    errors: Middleware, metrics: Metrics, alert: DeadLetterAlert | None = None
) -> list[Middleware]:
    """The list both buses apply: log context outermost, then idempotency, the error policy
    (``errors``), the alert and the metrics."""
    return [LogContext(), Deduplicate(), errors, *([alert] if alert else []), metrics]


def contexts(middleware: Sequence[Middleware], delivery: Delivery) -> ExitStack:
    """The ``context`` of every middleware that has one, entered in the list's order (the
    others' do-nothing contexts cost an embedded run 0.2 s over 23,000 messages)."""
    stack = ExitStack()
    for each in middleware:
        if type(each).context is not Middleware.context:
            stack.enter_context(each.context(delivery))
    return stack


def skip_of(middleware: Sequence[Middleware], delivery: Delivery) -> Skip | None:
    for each in middleware:
        skip = each.before(delivery)
        if skip is not None:
            return skip
    return None


def verdict_of(middleware: Sequence[Middleware], delivery: Delivery, error: Exception) -> Verdict:
    """The first verdict given; without an error policy, the message is given up on."""
    for each in middleware:
        verdict = each.failed(delivery, error)
        if verdict is not None:
            return verdict
    return Verdict(Settle.REJECT, Outcome.DEAD, f"{type(error).__name__}: {error}")


def timed(middleware: Sequence[Middleware], delivery: Delivery, seconds: float) -> None:
    for each in middleware:
        each.timed(delivery, seconds)


def dead(middleware: Sequence[Middleware], delivery: Delivery, error: str) -> None:
    for each in middleware:
        each.dead(delivery, error)


def settled(
    middleware: Sequence[Middleware], delivery: Delivery, outcome: Outcome
) -> list[Delivery]:
    """Tell every middleware; the deliveries parked behind this one."""
    parked: list[Delivery] = []
    for each in middleware:
        parked += each.settled(delivery, outcome)
    return parked
