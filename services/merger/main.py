"""``oec-sync merger``: one competing consumer of planet.matched; run as many as needed."""

from __future__ import annotations

from common import topology
from common.config import Settings
from common.memo import Memo
from common.status import Service
from services.merger.handler import remembering
from services.servicebus import service_bus


def main(settings: Settings, port: int | None) -> None:
    service = Service.from_settings("merger", settings)
    bus = service_bus(settings, service)
    # Each worker remembers what it merged; workers sharing a data folder share it.
    bus.subscribe(topology.MERGER, remembering(Memo(settings.memo_path, autosave=True)))
    service.serve(settings.status_host, port)
    try:
        bus.run_forever()
    finally:
        service.close()
