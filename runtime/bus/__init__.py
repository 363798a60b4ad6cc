"""One bus interface; two implementations: in-memory (embedded run) and RabbitMQ."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Protocol, runtime_checkable

from common.messages import Message

Handler = Callable[[Message], Iterable[Message]]
"""A handler takes one message and returns the messages it produces; the bus publishes
those and only then acknowledges the input, so a crash in between redelivers the input."""


@runtime_checkable
class Flushing(Protocol):
    """A handler whose effects are durable only once ``flush`` returns (the publisher's run
    store commits many inputs at once). The broker's bus calls it before acknowledging what
    the handler took, whenever no delivery is waiting or a batch is full; a flush that raises
    sends those deliveries back to the queue."""

    def flush(self) -> None: ...
