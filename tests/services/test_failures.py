"""A planet no merger can handle, over RabbitMQ: the run completes without it, and says so.

The bar is the embedded run on the same inputs, minus the poisoned planet's system.
"""

from __future__ import annotations

import time
import urllib.error
from typing import Any

import pika
import pytest

from common.messages import PLANETS_PER_MESSAGE, PlanetsMatched
from runtime.bus.wire import decode_delivery, encode
from tests.brokerutil import blocking_channel, http_json, queue_depth, settings_for, wait_for
from tests.services.conftest import Cluster, Reference, branches, drafts

pytestmark = pytest.mark.rabbitmq

TOKEN = "status-token-for-the-poisoned-run"


def single_source_system(reference: Reference) -> dict[str, Any]:
    """A proposed change to an existing system that comes from one catalogue row only: with
    that row poisoned, the system has nothing to propose."""
    for system in reference.report["systems"]:
        rows = {(c["source"], c["source_row"]) for c in system["changes"]}
        if not system["new"] and not system["new_planets"] and len(rows) == 1:
            return system
    raise AssertionError("the sample has no system changed by a single row")


def poison(cluster: Cluster, source: str, row: int) -> str:
    """Take every planets.matched out of the merger queue and put them back, the planet of
    (source, row) with its system file cut in half: no merger can parse it. Returns the
    poisoned planet's name."""
    settings = settings_for(cluster.env["OEC_SYNC_BUS__PREFIX"])
    queue = f"{settings.bus.prefix}.merger"
    connection, channel = blocking_channel(settings)
    poisoned = ""
    with connection:
        channel.confirm_delivery()
        taken: list[tuple[Any, pika.BasicProperties, bytes]] = []
        while (got := channel.basic_get(queue))[0] is not None:
            taken.append(got)
        for _, properties, body in taken:
            message = decode_delivery(properties, "planets.matched", body)
            assert isinstance(message, PlanetsMatched)
            for i, planet in enumerate(message.planets):
                record = planet.record
                if (record.source.value, record.row) == (source, row):
                    assert planet.system_text
                    cut = planet.system_text[: len(planet.system_text) // 2]
                    message.planets[i] = planet.model_copy(update={"system_text": cut})
                    envelope = encode(message, "test", settings.bus.compress_min_bytes)
                    properties, body, poisoned = envelope.properties, envelope.body, record.name
            channel.basic_publish("", queue, body, properties)
        channel.basic_ack(0, multiple=True)  # the originals, now that their copies are in
    assert poisoned, f"no planet.matched for {source} row {row}"
    return poisoned


def test_a_poisoned_planet_is_reported_failed_and_the_rest_is_published(
    cluster: Cluster, reference: Reference
) -> None:
    cluster.env["OEC_SYNC_STATUS_TOKEN"] = TOKEN
    indexer = cluster.start("indexer")
    publisher = cluster.start("publisher")
    for process in (indexer, publisher):
        process.wait_ready()
    with pytest.raises(urllib.error.HTTPError) as refused:
        http_json(publisher.url("/runs"))  # without the token
    assert refused.value.code == 401

    started = time.monotonic()
    run_id = cluster.fetch()
    prefix = cluster.env["OEC_SYNC_BUS__PREFIX"]
    settings = settings_for(prefix)

    def planned() -> list[int]:
        runs = publisher.get("/runs")
        progress = runs[0]["progress"] if runs else {}
        counts = [p["planned"] for p in progress.values()]
        return counts if len(counts) == 2 and all(counts) else []

    planets = wait_for(planned, 60, "the indexer to plan both catalogues")
    batches = sum(-(-n // PLANETS_PER_MESSAGE) for n in planets)
    wait_for(lambda: queue_depth(settings, f"{prefix}.merger") == batches, 30, "the planets")
    target = single_source_system(reference)
    ((source, row),) = {(c["source"], c["source_row"]) for c in target["changes"]}
    planet = poison(cluster, source, row)

    cluster.start("merger").wait_ready()
    cluster.wait_complete(publisher, run_id, timeout=60)
    print(f"\npoisoned run complete {time.monotonic() - started:.1f} s after the fetch")

    report = publisher.get(f"/runs/{run_id}")
    assert report["state"] == "complete"
    (failed,) = report["failed_planets"]
    assert (failed["source"], failed["row"], failed["planet"]) == (source, row, planet)
    assert "x-delivery-limit" in failed["error"]
    assert report["catalogues"][source]["failed"] == 1
    assert publisher.get("/runs")[0]["failed_planets"] == 1

    # The rest is published exactly as the embedded run did.
    stem = target["branch"].removeprefix("oec-sync/")
    assert branches(cluster.repo) == {
        ref: commit
        for ref, commit in reference.branches.items()
        if ref != f"refs/heads/{target['branch']}"
    }
    assert drafts(cluster.outbox) == {
        name: text
        for name, text in reference.drafts.items()
        if name not in {f"{stem}.md", f"{stem}.json"}
    }
    # The message itself waits in .dead, to be replayed once the cause is fixed.
    assert queue_depth(settings, f"{prefix}.merger.dead") == 1
