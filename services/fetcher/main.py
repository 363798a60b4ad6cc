"""``oec-sync fetcher --once``: download the catalogues and announce them; the CronJob.

The catalogue.downloaded events carry the bytes, so every service (and the snapshot archive,
fed from the bus) reads them without a shared filesystem. Nothing is published when no
catalogue could be downloaded; the exit status then says so.
"""

from __future__ import annotations

import logging

import httpx

from common import alerts
from common.bus.rabbitmq import RabbitMQBus
from common.config import Settings
from common.messages import CatalogueDownloaded, CatalogueFailed, Message, RunStarted
from common.records import Source
from common.status import Service
from services.fetcher.handler import default_client, fetch
from services.servicebus import service_bus

log = logging.getLogger(__name__)


def fetch_once(
    settings: Settings,
    locations: dict[Source, str],
    bus: RabbitMQBus,
    client: httpx.Client | None = None,
) -> tuple[str | None, list[Message]]:
    """Download, publish through ``bus`` (started here; every message confirmed by the
    broker) and return the run id and the messages. The run id is None, and nothing is
    published, when no catalogue came."""
    with client or default_client() as http:
        messages = fetch(locations, http)
    started = next(m for m in messages if isinstance(m, RunStarted))
    failures = {str(m.source): m.error for m in messages if isinstance(m, CatalogueFailed)}
    for source, error in failures.items():
        log.warning("download failed", extra={"source": source, "error": error})
    if not any(isinstance(m, CatalogueDownloaded) for m in messages):
        alerts.notify(alerts.no_catalogue(started.run_id, failures), settings)
        return None, messages
    bus.start()
    try:
        bus.publish_many(messages)
    finally:
        bus.stop()
    log.info(
        "run started",
        extra={"run_id": started.run_id, "catalogues": [str(s) for s in started.catalogues]},
    )
    return started.run_id, messages


def main(
    settings: Settings, locations: dict[Source, str], port: int | None
) -> tuple[str | None, list[Message]]:
    """One fetch: the run id (None when no catalogue came) and the messages, as
    :func:`fetch_once`. ``port``: status API while it runs (None: none, the CronJob
    default)."""
    service = Service.from_settings("fetcher", settings)
    service.serve(settings.status_host, port)
    try:
        bus = service_bus(settings, service)
        return fetch_once(settings, locations, bus)
    finally:
        service.close()
