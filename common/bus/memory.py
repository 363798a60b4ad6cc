"""The embedded run's bus: a FIFO in one process, same semantics as the broker's queues.

A handler that raises gives up on its message at once (no retries: in one process there is
nothing transient to wait out). As on the broker, a planet or catalogue given up on becomes
its failure event (``common.messages.failure_of``) and the run completes without it; an
error in a handler whose message nothing waits for (the publisher's own) ends the run.
"""

from __future__ import annotations

import logging
from collections import defaultdict, deque
from collections.abc import Callable

from common.bus import Handler
from common.messages import Message, RoutingKey, failure_of
from common.topology import WorkQueue

log = logging.getLogger(__name__)


class MemoryBus:
    """Delivers in publication order; ``delivered`` hears of each message once handled."""

    def __init__(self, delivered: Callable[[Message], None] | None = None) -> None:
        self._routes: dict[RoutingKey, list[Handler]] = defaultdict(list)
        self._pending: deque[Message] = deque()
        self._delivered = delivered
        self.published: dict[RoutingKey, int] = defaultdict(int)

    def publish(self, message: Message) -> None:
        self.published[message.routing_key] += 1
        self._pending.append(message)

    def subscribe(self, queue: WorkQueue, handler: Handler) -> None:
        for key in queue.routing_keys:
            self._routes[key].append(handler)

    def run_until_idle(self) -> None:
        """Deliver messages, and what their handlers produce, until none is left."""
        while self._pending:
            message = self._pending.popleft()
            for handler in self._routes.get(message.routing_key, ()):
                for output in self._handle(handler, message):
                    self.publish(output)
            if self._delivered is not None:
                self._delivered(message)

    @staticmethod
    def _handle(handler: Handler, message: Message) -> list[Message]:
        try:
            return list(handler(message))
        except Exception as exc:
            failure = failure_of(message, f"{type(exc).__name__}: {exc}")
            if failure is None:
                raise
            log.debug("handler failed", exc_info=True)
            log.warning("gave up on a %s message: %s", message.routing_key.value, failure.error)
            return [failure]
