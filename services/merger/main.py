"""``oec-sync merger``: one competing consumer of planets.matched; run as many as needed."""

from __future__ import annotations

from common import topology
from runtime.config import Settings
from runtime.memo import Memo
from runtime.status import Service
from services.merger.handler import each_planet, remembering
from services.servicebus import service_bus


def main(settings: Settings, port: int | None) -> None:
    service = Service.from_settings("merger", settings)
    bus = service_bus(settings, service)
    # Each worker remembers what it merged; workers sharing a data folder share it.
    memo = Memo(settings.memo_path, autosave=True)
    bus.subscribe(topology.MERGER, each_planet(remembering(memo)))
    service.serve(settings.status_host, port)
    try:
        bus.run_forever()
    finally:
        service.close()
