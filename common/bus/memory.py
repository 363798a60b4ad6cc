"""The embedded run's bus: a FIFO in one process, same semantics as the broker's queues."""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Callable

from common.bus import Handler
from common.messages import Message, RoutingKey
from common.topology import WorkQueue


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
                for output in handler(message):
                    self.publish(output)
            if self._delivered is not None:
                self._delivered(message)
