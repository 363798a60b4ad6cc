"""Replay from the event stream, and the dead-letter queues: list, replay, purge.

Replayed messages keep their ``message_id`` and carry an ``x-oec-replay`` header (passed on
to every message they cause), so the bus runs the handlers again instead of treating them as
redeliveries, while the consumers' own idempotency (the publisher's run store, branches that
are already up to date) makes sure a replay opens no branch or pull request twice.

A replay does not append to the replay log: the bus publishes whatever carries the header
to the work exchange, which routes to the work queues but not to the stream (common/topology.py).
A replay reads the events published before it started, so it ends even while new ones come.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pika
from pika.adapters.blocking_connection import BlockingChannel
from pika.spec import BasicProperties

from common.bus.rabbitmq import RabbitMQBus, connection_parameters, declare, topology_for
from common.bus.wire import Envelope, body_json, message_routing_key
from common.config import Settings
from common.topology import WORK_QUEUES, Header, WorkQueue

log = logging.getLogger(__name__)

Offset = int | dt.datetime | str  # a stream offset, a time, or "first" / "last"


def new_replay_id() -> str:
    return f"replay-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"


@dataclass(frozen=True)
class Selection:
    """Which events to replay; empty fields select everything."""

    routing_keys: frozenset[str] = frozenset()
    run_id: str | None = None
    source: str | None = None
    message_ids: frozenset[str] = frozenset()

    def __call__(self, routing_key: str, properties: BasicProperties) -> bool:
        headers = properties.headers or {}
        return (
            (not self.routing_keys or routing_key in self.routing_keys)
            and (self.run_id is None or headers.get(Header.RUN_ID.value) == self.run_id)
            and (self.source is None or headers.get(Header.SOURCE.value) == self.source)
            and (not self.message_ids or properties.message_id in self.message_ids)
        )


@dataclass
class ReplayResult:
    replay_id: str
    read: int = 0
    selected: int = 0
    published: int = 0
    first_offset: int | None = None
    last_offset: int | None = None
    by_routing_key: dict[str, int] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "replay_id": self.replay_id,
            "read": self.read,
            "selected": self.selected,
            "published": self.published,
            "first_offset": self.first_offset,
            "last_offset": self.last_offset,
            "by_routing_key": self.by_routing_key,
        }


def _channel(settings: Settings) -> tuple[pika.BlockingConnection, BlockingChannel]:
    connection = pika.BlockingConnection(
        connection_parameters(settings.amqp_url, settings.bus, "replay")
    )
    channel = connection.channel()
    declare(channel, topology_for(settings.bus))
    return connection, channel


def read_stream(
    settings: Settings,
    offset: Offset,
    idle_timeout: float = 2.0,
    until: dt.datetime | None = None,
) -> Iterator[tuple[int, str, BasicProperties, bytes]]:
    """(offset, routing key, properties, body) of each event from ``offset`` on.

    Ends when the stream has been quiet for ``idle_timeout`` seconds, or at the first event
    published after ``until`` (by its ``timestamp``, whole seconds). Replayed events that an
    older version wrote to the stream are left out: the stream holds their originals.
    """
    connection, channel = _channel(settings)
    stream = topology_for(settings.bus).stream
    try:
        # Stream consumers need a prefetch and manual acks:
        # https://www.rabbitmq.com/docs/streams#consuming
        channel.basic_qos(prefetch_count=500)
        for method, properties, body in channel.consume(
            stream,
            arguments={Header.STREAM_OFFSET.value: offset},
            inactivity_timeout=idle_timeout,
        ):
            if method is None:
                return
            channel.basic_ack(method.delivery_tag)
            if until is not None and (properties.timestamp or 0) > until.timestamp():
                return
            headers = properties.headers or {}
            if headers.get(Header.REPLAY.value):
                continue
            position = int(headers.get(Header.STREAM_OFFSET.value, -1))
            yield position, message_routing_key(properties, method.routing_key), properties, body
    finally:
        if connection.is_open:
            channel.cancel()
            connection.close()


def replay(
    settings: Settings,
    offset: Offset,
    selection: Selection,
    *,
    until: dt.datetime | None = None,
    dry_run: bool = False,
    idle_timeout: float = 2.0,
    replay_id: str | None = None,
) -> ReplayResult:
    """Republish the selected events of the stream from ``offset`` up to ``until`` (default:
    the moment the replay starts)."""
    until = until or dt.datetime.now(dt.UTC)
    result = ReplayResult(replay_id or new_replay_id())
    bus: RabbitMQBus | None = (
        None if dry_run else RabbitMQBus(settings.bus, settings.amqp_url, "replay").start()
    )
    batch: list[Envelope] = []

    def flush() -> None:
        if bus is not None and batch:
            bus.publish_envelopes(batch)
            result.published += len(batch)
        batch.clear()

    try:
        for position, routing_key, properties, body in read_stream(
            settings, offset, idle_timeout, until
        ):
            result.read += 1
            if not selection(routing_key, properties):
                continue
            result.selected += 1
            result.first_offset = position if result.first_offset is None else result.first_offset
            result.last_offset = position
            result.by_routing_key[routing_key] = result.by_routing_key.get(routing_key, 0) + 1
            result.events.append(_describe(position, routing_key, properties))
            headers = {**(properties.headers or {}), Header.REPLAY.value: result.replay_id}
            headers.pop(Header.STREAM_OFFSET.value, None)
            # With the replay header, the bus sends it to the work exchange: not to the stream.
            batch.append(Envelope(routing_key, _with_headers(properties, headers), body))
            if len(batch) >= 500:
                flush()
        flush()
    finally:
        if bus is not None:
            bus.stop()
    log.info("replay done", extra=result.as_dict())
    return result


def _with_headers(properties: BasicProperties, headers: dict[str, Any]) -> BasicProperties:
    return BasicProperties(
        content_type=properties.content_type,
        content_encoding=properties.content_encoding,
        delivery_mode=pika.DeliveryMode.Persistent,
        message_id=properties.message_id,
        type=properties.type,
        timestamp=properties.timestamp,
        app_id=properties.app_id,
        headers=headers,
    )


def _describe(
    position: int | None, routing_key: str, properties: BasicProperties
) -> dict[str, Any]:
    headers = properties.headers or {}
    published = (
        dt.datetime.fromtimestamp(properties.timestamp, dt.UTC).isoformat()
        if properties.timestamp
        else None
    )
    described: dict[str, Any] = {
        "routing_key": routing_key,
        "message_id": properties.message_id,
        "run_id": headers.get(Header.RUN_ID.value),
        "source": headers.get(Header.SOURCE.value),
        "published_at": published,
    }
    if position is not None:
        described["offset"] = position
    return described


# --- dead letters ---


@dataclass
class DeadLetter:
    queue: str
    routing_key: str
    message_id: str | None
    run_id: str | None
    reason: str | None
    died_at: str | None
    deaths: int
    summary: str

    def as_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


def _dead_queues(settings: Settings, queue: str | None) -> list[tuple[WorkQueue, str]]:
    topology = topology_for(settings.bus)
    works = [topology.work_queue(queue)] if queue else list(WORK_QUEUES)
    return [(work, topology.dead_queue(work)) for work in works]


def _dead_letter(
    queue: str, routing_key: str, properties: BasicProperties, body: bytes
) -> DeadLetter:
    headers = properties.headers or {}
    deaths = headers.get(Header.DEATH.value) or []
    first = deaths[0] if deaths else {}
    died = first.get("time")
    try:
        content = json.loads(body_json(properties, body))
        summary = ", ".join(
            f"{k}={content[k]}" for k in ("source", "planet", "row") if k in content
        ) or ", ".join(
            f"{k}={content['record'][k]}"
            for k in ("source", "name", "row")
            if k in content.get("record", {})
        )
    except (ValueError, OSError, TypeError):
        summary = f"{len(body)} undecodable bytes"
    return DeadLetter(
        queue=queue,
        routing_key=routing_key,
        message_id=properties.message_id,
        run_id=headers.get(Header.RUN_ID.value),
        reason=headers.get(Header.FIRST_DEATH_REASON.value) or first.get("reason"),
        died_at=died.isoformat() if isinstance(died, dt.datetime) else None,
        deaths=sum(int(d.get("count", 1)) for d in deaths),
        summary=summary,
    )


def list_dead_letters(
    settings: Settings, queue: str | None = None, limit: int = 1000
) -> list[DeadLetter]:
    """Look at the dead letters without taking them: they are fetched unacknowledged and
    returned to their queue when the channel closes."""
    found: list[DeadLetter] = []
    connection, channel = _channel(settings)
    with connection:
        for _work, dead in _dead_queues(settings, queue):
            taken = 0
            while taken < limit:
                method, properties, body = channel.basic_get(dead, auto_ack=False)
                if method is None:
                    break
                taken += 1
                key = message_routing_key(properties, method.routing_key)
                found.append(_dead_letter(dead, key, properties, body))
            if taken:
                channel.basic_nack(0, multiple=True, requeue=True)
    return found


def replay_dead_letters(
    settings: Settings,
    queue: str | None = None,
    message_ids: frozenset[str] = frozenset(),
    replay_id: str | None = None,
) -> tuple[str, int]:
    """Send dead letters back to the work queue they died in (after a fix); returns the
    replay id and how many went back. Each is removed from ``.dead`` only once the broker
    confirmed its copy in the work queue."""
    replay_id = replay_id or new_replay_id()
    topology = topology_for(settings.bus)
    moved = 0
    connection, channel = _channel(settings)
    with connection:
        channel.confirm_delivery()
        for work, dead in _dead_queues(settings, queue):
            keep: list[int] = []
            while True:
                method, properties, body = channel.basic_get(dead, auto_ack=False)
                if method is None:
                    break
                if message_ids and properties.message_id not in message_ids:
                    keep.append(method.delivery_tag)
                    continue
                headers = {
                    k: v
                    for k, v in (properties.headers or {}).items()
                    if not k.startswith(("x-death", "x-first-death", "x-last-death", "x-delivery"))
                }
                headers[Header.REPLAY.value] = replay_id
                # Straight to the queue it died in (default exchange), so no other queue and
                # not the replay log sees it twice.
                channel.basic_publish(
                    "", topology.queue(work), body, _with_headers(properties, headers)
                )
                channel.basic_ack(method.delivery_tag)
                moved += 1
            for tag in keep:
                channel.basic_nack(tag, requeue=True)
    return replay_id, moved


def purge_dead_letters(settings: Settings, queue: str | None = None) -> dict[str, int]:
    purged: dict[str, int] = {}
    connection, channel = _channel(settings)
    with connection:
        for _work, dead in _dead_queues(settings, queue):
            purged[dead] = int(channel.queue_purge(dead).method.message_count)
    return purged
