"""The bus of a service process: RabbitMQ with the service's status snapshot and metrics, and
an alert to the admin (common/alerts.py, with its cooldown) for every message it gives up on."""

from __future__ import annotations

from common import alerts
from common.bus.middleware import DeadLetterHook
from common.bus.rabbitmq import RabbitMQBus
from common.config import Settings
from common.status import Service


def service_bus(settings: Settings, service: Service) -> RabbitMQBus:
    return RabbitMQBus(
        settings.bus,
        settings.amqp_url,
        service.name,
        snapshot=service.snapshot,
        metrics=service.metrics,
        on_dead_letter=alerting_hook(settings, service.name),
    )


def alerting_hook(settings: Settings, service: str) -> DeadLetterHook:
    """A dead-letter hook that alerts the admin."""
    notifier = alerts.Notifier(settings)

    def hook(queue: str, routing_key: str, message_id: str, error: str, run_id: str | None) -> None:
        notifier(alerts.dead_lettered(service, queue, routing_key, message_id, error, run_id))

    return hook
