"""Encoding and naming, no broker needed."""

from __future__ import annotations

import datetime as dt

from common.messages import CatalogueDownloaded
from common.records import Source
from runtime.bus.rabbitmq import topology_for
from runtime.bus.wire import body_json, decode_delivery, encode
from tests.brokerutil import settings_for
from tests.bus.test_rabbitmq import matched
from tests.paths import SAMPLE


def test_envelopes_round_trip() -> None:
    message = matched(5)
    envelope = encode(message, "test", compress_min_bytes=1024, replay="r1")
    assert envelope.properties.content_encoding == "gzip"
    assert envelope.properties.message_id == message.message_id
    assert envelope.properties.headers["x-oec-source"] == "nasa"
    assert envelope.properties.headers["x-oec-replay"] == "r1"
    assert len(envelope.body) < len(body_json(envelope.properties, envelope.body))
    again = decode_delivery(envelope.properties, "ignored", envelope.body)
    assert again == message


def test_settings_prefix_isolates_tests() -> None:
    a = topology_for(settings_for("test-a").bus)
    b = topology_for(settings_for("test-b").bus)
    names_a = {s.name for s in a.queues()} | {a.exchange, a.dead_letter_exchange}
    names_b = {s.name for s in b.queues()} | {b.exchange, b.dead_letter_exchange}
    assert not names_a & names_b


def test_a_download_carries_its_bytes_on_the_wire() -> None:
    data = (SAMPLE / "nasa.csv").read_bytes()
    message = CatalogueDownloaded.from_bytes(
        "r1", Source.NASA, "nasa.csv", data, dt.datetime(2026, 12, 7, tzinfo=dt.UTC)
    )
    envelope = encode(message, "test", compress_min_bytes=1 << 30)

    again = decode_delivery(envelope.properties, "ignored", envelope.body)

    assert isinstance(again, CatalogueDownloaded)
    assert again.content() == data == message.content()
    assert again.message_id == message.message_id
    assert again.model_dump_json() == message.model_dump_json()
