"""What one process knows of its own work, for the status API and Prometheus: the bus writes
a :class:`StatusSnapshot` and :class:`BusMetrics`, the status API (runtime/status.py) reads them.

No web framework here: the bus and the embedded run record into these without serving them.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Gauge, Histogram
from prometheus_client import Counter as PromCounter

RECENT_RUNS = 20


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class RunActivity:
    """What one service saw of one run."""

    run_id: str
    first_seen: dt.datetime
    last_seen: dt.datetime
    handled: Counter[str] = field(default_factory=Counter)  # routing key -> messages
    failed: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "first_seen": self.first_seen.isoformat(),
            "last_seen": self.last_seen.isoformat(),
            "handled": dict(self.handled),
            "failed": self.failed,
        }


@dataclass(frozen=True)
class QueueDepth:
    messages: int
    consumers: int
    at: dt.datetime


class StatusSnapshot:
    """Thread-safe facts about one service process, written by the bus, read by the API."""

    def __init__(self, service: str) -> None:
        self.service = service
        self.started_at = _now()
        self._lock = threading.Lock()
        self.connected = False
        self.consuming = False
        self.connected_since: dt.datetime | None = None
        self.reconnects = 0
        self.last_error: str | None = None
        self.last_message: dict[str, Any] | None = None
        self.queue_depths: dict[str, QueueDepth] = {}
        self.runs: OrderedDict[str, RunActivity] = OrderedDict()
        self._providers: dict[str, Callable[[], Any]] = {}
        self._ready_checks: list[Callable[[], bool]] = []
        self.needs_consumer = True

    # --- written by the bus ---

    def set_connected(self, connected: bool, error: str | None = None) -> None:
        with self._lock:
            if connected and not self.connected:
                self.connected_since = _now()
            if not connected:
                self.consuming = False
                self.connected_since = None
                if error:
                    self.last_error = error
            self.connected = connected

    def set_consuming(self, consuming: bool) -> None:
        with self._lock:
            self.consuming = consuming

    def count_reconnect(self) -> None:
        with self._lock:
            self.reconnects += 1

    def record(
        self, run_id: str, message_id: str, routing_key: str, queue: str, outcome: str
    ) -> None:
        now = _now()
        with self._lock:
            self.last_message = {
                "run_id": run_id,
                "message_id": message_id,
                "routing_key": routing_key,
                "queue": queue,
                "outcome": outcome,
                "at": now,  # formatted when asked for: a run records 23,000 of these
            }
            run = self.runs.get(run_id)
            if run is None:
                run = self.runs[run_id] = RunActivity(run_id, now, now)
                while len(self.runs) > RECENT_RUNS:
                    self.runs.popitem(last=False)
            self.runs.move_to_end(run_id)
            run.last_seen = now
            run.handled[routing_key] += 1
            if outcome in {"dead", "retry"}:
                run.failed += 1

    def set_queue_depth(self, queue: str, messages: int, consumers: int) -> None:
        with self._lock:
            self.queue_depths[queue] = QueueDepth(messages, consumers, _now())

    # --- written by the service ---

    def provide(self, key: str, provider: Callable[[], Any]) -> None:
        """Add ``key`` to /status, computed by ``provider`` at request time."""
        self._providers[key] = provider

    def ready_when(self, check: Callable[[], bool]) -> None:
        """An extra condition for /readyz (e.g. the alias index is loaded)."""
        self._ready_checks.append(check)

    # --- read by the API ---

    def ready(self) -> bool:
        with self._lock:
            broker_ok = self.connected and (self.consuming or not self.needs_consumer)
        return broker_ok and all(check() for check in self._ready_checks)

    def as_dict(self) -> dict[str, Any]:
        with self._lock:
            runs = [r.as_dict() for r in reversed(self.runs.values())]
            body: dict[str, Any] = {
                "service": self.service,
                "started_at": self.started_at.isoformat(),
                "broker": {
                    "connected": self.connected,
                    "consuming": self.consuming,
                    "connected_since": self.connected_since.isoformat()
                    if self.connected_since
                    else None,
                    "reconnects": self.reconnects,
                    "last_error": self.last_error,
                },
                "last_message": self.last_message
                and {**self.last_message, "at": self.last_message["at"].isoformat()},
                "queues": {
                    name: {
                        "messages": d.messages,
                        "consumers": d.consumers,
                        "at": d.at.isoformat(),
                    }
                    for name, d in sorted(self.queue_depths.items())
                },
                "current_run": runs[0]["run_id"] if runs else None,
                "recent_runs": runs,
            }
        for key, provider in self._providers.items():
            body[key] = provider()
        return body


class BusMetrics:
    """Prometheus metrics of one process; labels are bounded (queues, routing keys, outcomes)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.handled = PromCounter(
            "oec_sync_messages_handled",
            "Messages taken from a work queue, by outcome "
            "(ok, duplicate, retry, dead, stale = left for redelivery).",
            ["queue", "routing_key", "outcome"],
            registry=r,
        )
        self.published = PromCounter(
            "oec_sync_messages_published",
            "Messages published and confirmed by the broker.",
            ["routing_key"],
            registry=r,
        )
        self.handler_seconds = Histogram(
            "oec_sync_handler_seconds",
            "Time in a handler, per queue.",
            ["queue"],
            buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120),
            registry=r,
        )
        self.queue_messages = Gauge(
            "oec_sync_queue_messages", "Ready messages per queue.", ["queue"], registry=r
        )
        self.connected = Gauge(
            "oec_sync_broker_connected", "1 while connected to RabbitMQ.", registry=r
        )
        self.reconnects = PromCounter(
            "oec_sync_broker_reconnects", "Connections lost and re-established.", registry=r
        )
