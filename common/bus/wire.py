"""The wire format: a typed message as an AMQP body and properties, and back.

A body is the message's JSON, gzip-compressed from ``compress_min_bytes`` up; the AMQP
``type`` property carries the routing key (it survives dead-lettering, which rewrites the
key), ``message_id`` the content address, and the headers the run id, the source and, on a
replay, the replay id (common/topology.py: :class:`~common.topology.Header`).
"""

from __future__ import annotations

import gzip
import time
from dataclasses import dataclass
from typing import Any

import pika
from pika.spec import BasicProperties

from common.messages import Message, decode
from common.topology import Header

JSON = "application/json"
GZIP = "gzip"
PERSISTENT = pika.DeliveryMode.Persistent  # written to disk by the queues that take it

Headers = dict[str, Any]


@dataclass(frozen=True)
class Envelope:
    """One message as it goes on the wire; ``exchange`` None means the topology's exchange."""

    routing_key: str
    properties: BasicProperties
    body: bytes
    exchange: str | None = None


def encode(
    message: Message, app_id: str, compress_min_bytes: int, replay: str | None = None
) -> Envelope:
    body = message.model_dump_json().encode()
    encoding = None
    if compress_min_bytes and len(body) >= compress_min_bytes:
        # System XML and catalogue CSVs shrink 4-8x; level 1 costs little CPU.
        body = gzip.compress(body, compresslevel=1, mtime=0)
        encoding = GZIP
    headers: Headers = {Header.RUN_ID.value: message.run_id}
    source = getattr(message, "source", None) or getattr(
        getattr(message, "record", None), "source", None
    )
    if source is not None:
        headers[Header.SOURCE.value] = str(source)
    if replay:
        headers[Header.REPLAY.value] = replay
    properties = BasicProperties(
        content_type=JSON,
        content_encoding=encoding,
        delivery_mode=PERSISTENT,
        message_id=message.message_id,
        type=message.routing_key.value,  # survives dead-lettering, which rewrites the key
        timestamp=int(time.time()),
        app_id=app_id,
        headers=headers,
    )
    return Envelope(message.routing_key.value, properties, body)


def body_json(properties: BasicProperties, body: bytes) -> bytes:
    return gzip.decompress(body) if properties.content_encoding == GZIP else body


def message_routing_key(properties: BasicProperties, routing_key: str) -> str:
    return properties.type or routing_key


def decode_delivery(properties: BasicProperties, routing_key: str, body: bytes) -> Message:
    return decode(message_routing_key(properties, routing_key), body_json(properties, body))
