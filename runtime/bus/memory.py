"""The embedded run's bus: a FIFO in one process, same semantics as the broker's queues.

Every handler runs inside the same middleware as on the broker (runtime/bus/middleware.py:
log context, de-duplication, metrics), with one difference in the error policy: a handler
that raises gives up on its message at once (:class:`~runtime.bus.middleware.GiveUp`; in one
process there is nothing transient to wait out). As on the broker, a planet or catalogue
given up on becomes its failure event (``common.messages.failure_of``) and the run completes
without it; an error in a handler whose message nothing waits for (the publisher's own) ends
the run.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict, deque
from collections.abc import Callable, Sequence

from common.interrupts import interruption
from common.messages import Message, RoutingKey, failure_of
from common.topology import WorkQueue
from runtime.bus import Handler, middleware
from runtime.bus.middleware import Delivery, GiveUp, Metrics, Middleware, Outcome, standard
from runtime.telemetry import BusMetrics, StatusSnapshot

log = logging.getLogger(__name__)


class MemoryBus:
    """Delivers in publication order; ``delivered`` hears of each message once handled.
    ``middleware`` runs around every handler (default: the standard list, giving up on a
    failed message at once)."""

    def __init__(
        self,
        delivered: Callable[[Message], None] | None = None,
        middleware: Sequence[Middleware] | None = None,
    ) -> None:
        self._routes: dict[RoutingKey, list[tuple[WorkQueue, Handler]]] = defaultdict(list)
        self._pending: deque[Message] = deque()
        self._delivered = delivered
        self.published: dict[RoutingKey, int] = defaultdict(int)
        self.snapshot = StatusSnapshot("embedded")
        self.metrics = BusMetrics()
        if middleware is None:
            middleware = standard(GiveUp(), Metrics(self.metrics, self.snapshot))
        self.middleware = list(middleware)

    def publish(self, message: Message) -> None:
        self.published[message.routing_key] += 1
        self._pending.append(message)

    def subscribe(self, queue: WorkQueue, handler: Handler) -> None:
        for key in queue.routing_keys:
            self._routes[key].append((queue, handler))

    def run_until_idle(self) -> None:
        """Deliver messages, and what their handlers produce, until none is left."""
        while self._pending:
            message = self._pending.popleft()
            for queue, handler in self._routes.get(message.routing_key, ()):
                for output in self._handle(queue, handler, message):
                    self.publish(output)
            if self._delivered is not None:
                self._delivered(message)

    def _handle(self, queue: WorkQueue, handler: Handler, message: Message) -> list[Message]:
        delivery = Delivery(
            work=queue,
            queue=queue.name,
            routing_key=message.routing_key.value,
            message_id=message.message_id,
            run_id=message.run_id,
        )
        with middleware.contexts(self.middleware, delivery):
            if middleware.skip_of(self.middleware, delivery) is not None:
                # One thread: a twin is never in progress, only handled before.
                middleware.settled(self.middleware, delivery, Outcome.DUPLICATE)
                return []
            started = time.perf_counter()
            try:
                outputs = list(handler(message))
            except Exception as exc:
                if (stop := interruption()) is not None:
                    # Ctrl-C inside a library that wrapped it: not the message's fault.
                    raise stop from exc
                error = exc
            else:
                middleware.timed(self.middleware, delivery, time.perf_counter() - started)
                middleware.settled(self.middleware, delivery, Outcome.OK)
                return outputs
            middleware.timed(self.middleware, delivery, time.perf_counter() - started)
            verdict = middleware.verdict_of(self.middleware, delivery, error)
            middleware.dead(self.middleware, delivery, verdict.error)
            middleware.settled(self.middleware, delivery, Outcome.DEAD)
        described = f"{type(error).__name__}: {error}"
        failure = failure_of(message, described)
        if failure is None:
            raise error
        # Outside the log context: the run's console shows the line as it always did.
        log.warning("gave up on a %s message: %s", message.routing_key.value, described)
        return [failure]
