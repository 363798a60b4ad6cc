"""The publisher's bus handler: ``PublisherHandler`` made durable by a ``RunStore``.

``DurablePublisher`` records each input before handling it, rebuilds a run from the store
after a restart, and finishes runs that went quiet (``run_timeout``) with what they have;
the run states are drawn in services/publisher/runstore.py.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from typing import Any

from common.messages import (
    Message,
    PlanetOutcomes,
    RunPlanned,
)
from services.publisher.handler import PublisherHandler, RunState
from services.publisher.reports import report as report_of_run
from services.publisher.runstore import MEMORY_RUNS, Announce, RunPhase, RunStore

log = logging.getLogger(__name__)


class DurablePublisher:
    """The publisher's bus handler: PublisherHandler + RunStore + the run timeout.

    Handling a message only records it (SQLite, committed for many at once by :meth:`flush`)
    and folds it into the run's state, so the delivery is acknowledged at once. Publishing a
    run whose planets are all accounted for (branches, pull requests: minutes with GitHub)
    happens on the publisher's finisher thread (:meth:`finish_ready`), never while a delivery
    waits for its ack, which would run into RabbitMQ's consumer timeout
    (https://www.rabbitmq.com/docs/consumers#acknowledgement-timeout).
    A run that was accounted for when the process died is finished after the restart.
    """

    def __init__(self, handler: PublisherHandler, store: RunStore, run_timeout: float) -> None:
        self.handler = handler
        self.store = store
        self.run_timeout = run_timeout
        self.lock = threading.RLock()  # the bus worker, the finisher and the API
        self.ready = threading.Event()  # set when a run became ready to finish
        self._finishing: set[str] = set()  # runs being published right now
        self._finished: OrderedDict[str, None] = OrderedDict()

    def state(self, run_id: str) -> RunState:
        state = self.handler.runs.get(run_id)
        if state is None:
            state = self.store.load(run_id) or RunState(run_id=run_id)
            self.handler.runs[run_id] = state
        return state

    def __call__(self, message: Message) -> list[Message]:
        if isinstance(message, PlanetOutcomes):
            return [out for outcome in message.outcomes() for out in self(outcome)]
        with self.lock:
            if message.run_id in self._finishing:
                # Being published (off the lock): only recorded now, and folded in when the
                # run's state is next loaded.
                self.store.add(message)
                return []
            state = self.state(message.run_id)
            if (
                isinstance(message, RunPlanned)
                and message.source in state.failed
                and message.source in (state.catalogues or [])
            ):
                log.info("catalogue planned after it had failed: reopening the run")
                del state.failed[message.source]
                state.completed = False
                self.store.reopen(message.run_id, str(message.source))
            replaced = state.replaced_failure(message)
            if replaced is not None and state.completed:
                log.info("a failed planet succeeded after all: reopening the run")
                state.completed = False
            if state.completed or state.moot(message):
                return []  # a complete run is final: redeliveries and replays change nothing
            if replaced is not None:
                # First: a crash in between leaves a collecting run, and the redelivery.
                self.store.forget_failure(message.run_id, replaced.message_id)
            self.store.add(message)
            state.record(message)
            if state.accounted():
                self.ready.set()
            return []

    def flush(self) -> None:
        """Make what was recorded durable; the bus acknowledges those deliveries after this
        (:class:`runtime.bus.Flushing`)."""
        self.store.flush()

    def finish_ready(self, announce: Announce) -> int:
        """Publish every unfinished run whose planets are all accounted for; ``announce``
        sends its run.completed before the run is recorded complete (a crash in between
        publishes it again, which changes nothing). Returns how many runs were finished."""
        finished = 0
        for run_id, _, _ in self.store.unfinished():
            with self.lock:
                state = self.state(run_id)
                if state.completed or not state.accounted() or run_id in self._finishing:
                    continue
                self._finishing.add(run_id)
            self._publish(state, RunPhase.COMPLETE, announce, time.time())
            finished += 1
            failed = len(state.failed_planets())
            log.info(
                "run complete" + (" with failed planets" if failed else ""),
                extra={"run_id": run_id, "systems": len(state.published), "failed": failed},
            )
        return finished

    def sweep(self, announce: Announce, now: float | None = None) -> int:
        """Publish, marked incomplete, every run quiet for ``run_timeout`` with news since
        its last publication. Returns how many runs timed out."""
        now = now or time.time()
        timed_out = 0
        for run_id, last_activity, published_at in self.store.unfinished():
            if now - last_activity < self.run_timeout:
                continue
            if published_at is not None and published_at >= last_activity:
                continue
            with self.lock:
                state = self.state(run_id)
                if state.completed or state.accounted() or run_id in self._finishing:
                    continue  # finish_ready's
                self._finishing.add(run_id)
            log.warning(
                "run timed out; publishing what it has, marked incomplete",
                extra={"run_id": run_id, "outcomes": len(state.outcomes)},
            )
            self._publish(state, RunPhase.INCOMPLETE, announce, now)
            timed_out += 1
        return timed_out

    def _publish(self, state: RunState, phase: RunPhase, announce: Announce, now: float) -> None:
        """Branches, pull requests and run.completed for a run marked finishing; without the
        lock, so deliveries keep being acknowledged while it takes minutes."""
        try:
            completed = self.handler.finish(state)
            if phase is RunPhase.INCOMPLETE:
                state.completed = False  # late outcomes may still complete it
            announce([completed])
            with self.lock:
                self.store.finished(state, phase, now)
                if phase is RunPhase.COMPLETE:
                    self._forget_finished(state.run_id)
                else:
                    self.handler.runs.pop(state.run_id, None)  # reload what came meanwhile
        finally:
            with self.lock:
                self._finishing.discard(state.run_id)

    def _forget_finished(self, run_id: str) -> None:
        self._finished[run_id] = None
        while len(self._finished) > MEMORY_RUNS:
            old, _ = self._finished.popitem(last=False)
            self.handler.runs.pop(old, None)

    def report(self, run_id: str) -> dict[str, Any] | None:
        """The run's report (as ``oec-sync run --report`` writes it) and its state."""
        with self.lock:
            cached = self.handler.runs.get(run_id)
        # A complete run no longer changes: its state in memory can be read as it is.
        state = cached if cached is not None and cached.completed else self.store.load(run_id)
        if state is None:
            return None
        phase = self.store.phase(run_id)
        return {"state": phase.value if phase else None, **report_of_run(state)}
