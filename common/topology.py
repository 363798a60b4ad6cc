"""The one place that says which queue hears which events."""

from __future__ import annotations

from dataclasses import dataclass

from common.messages import RoutingKey

EXCHANGE = "oec-sync"


@dataclass(frozen=True)
class WorkQueue:
    name: str
    routing_keys: tuple[RoutingKey, ...]


INDEXER = WorkQueue("oec-sync.indexer", (RoutingKey.CATALOGUE_DOWNLOADED,))
MERGER = WorkQueue("oec-sync.merger", (RoutingKey.PLANET_MATCHED,))
PUBLISHER = WorkQueue(
    "oec-sync.publisher",
    (
        RoutingKey.RUN_STARTED,
        RoutingKey.CATALOGUE_FAILED,
        RoutingKey.RUN_PLANNED,
        RoutingKey.SYSTEM_CHANGED,
        RoutingKey.PLANET_UNCHANGED,
        RoutingKey.PLANET_FAILED,
    ),
)
WORK_QUEUES = (INDEXER, MERGER, PUBLISHER)
