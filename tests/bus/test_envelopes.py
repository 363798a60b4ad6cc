"""Encoding and naming, no broker needed."""

from __future__ import annotations

from common.bus.rabbitmq import topology_for
from common.bus.wire import body_json, decode_delivery, encode
from tests.brokerutil import settings_for
from tests.bus.test_rabbitmq import matched


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
