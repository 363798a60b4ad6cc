"""The embedded run's bus: a FIFO in one process, same semantics as the broker's queues."""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Callable, Iterable
from typing import Any

from common.bus import Handler
from common.messages import Message, RoutingKey
from common.topology import WorkQueue

Mapper = Callable[..., Iterable[Any]]
"""The ``map`` protocol, in order: the builtin, or a process pool's ``map``."""


class MemoryBus:
    """Delivers in publication order. Handlers subscribed as ``pure`` (functions of their
    message alone, such as the merger) get consecutive runs of their messages as one batch
    through ``mapper``, so a process pool can spread them over the cores like N mergers."""

    def __init__(
        self, mapper: Mapper = map, delivered: Callable[[Message], None] | None = None
    ) -> None:
        self._routes: dict[RoutingKey, list[Handler]] = defaultdict(list)
        self._pure: set[RoutingKey] = set()
        self._pending: deque[Message] = deque()
        self._mapper = mapper
        self._delivered = delivered
        self.published: dict[RoutingKey, int] = defaultdict(int)

    def publish(self, message: Message) -> None:
        self.published[message.routing_key] += 1
        self._pending.append(message)

    def subscribe(self, queue: WorkQueue, handler: Handler, *, pure: bool = False) -> None:
        for key in queue.routing_keys:
            self._routes[key].append(handler)
            if pure:
                self._pure.add(key)

    def run_until_idle(self) -> None:
        """Deliver messages, and what their handlers produce, until none is left."""
        while self._pending:
            key = self._pending[0].routing_key
            handlers = self._routes.get(key, [])
            if key in self._pure and len(handlers) == 1:
                batch = [self._pending.popleft()]
                while self._pending and self._pending[0].routing_key == key:
                    batch.append(self._pending.popleft())
                for message, outputs in zip(batch, self._mapper(handlers[0], batch), strict=True):
                    self._publish_all(outputs)
                    self._mark(message)
                continue
            message = self._pending.popleft()
            for handler in handlers:
                self._publish_all(handler(message))
            self._mark(message)

    def _publish_all(self, outputs: Iterable[Message]) -> None:
        for output in outputs:
            self.publish(output)

    def _mark(self, message: Message) -> None:
        if self._delivered is not None:
            self._delivered(message)
