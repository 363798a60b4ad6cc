"""``oec-sync merger``: one competing consumer of planet.matched; run as many as needed."""

from __future__ import annotations

from common import topology
from common.bus.rabbitmq import RabbitMQBus, alerting_hook
from common.config import Settings
from common.status import Service
from services.merger.handler import handle


def main(settings: Settings, port: int | None) -> None:
    service = Service(
        "merger",
        settings.log_level,
        settings.log_json,
        settings.log_dir,
        settings.log_retention_days,
    )
    bus = RabbitMQBus(
        settings,
        "merger",
        snapshot=service.snapshot,
        metrics=service.metrics,
        on_dead_letter=alerting_hook(settings, "merger"),
    )
    bus.subscribe(topology.MERGER, handle)
    service.serve(settings.status_host, port)
    try:
        bus.run_forever()
    finally:
        service.close()
