"""One bus interface; two implementations: in-memory (embedded run) and RabbitMQ."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from common.messages import Message

Handler = Callable[[Message], Iterable[Message]]
"""A handler takes one message and returns the messages it produces; the bus publishes
those and only then acknowledges the input, so a crash in between redelivers the input."""
