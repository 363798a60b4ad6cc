"""Merging a catalogue's planets in forked processes, ahead of the embedded run's bus.

The embedded run is one process: merging 11,739 planets would keep one core busy while the
other waits. When the indexer has matched a catalogue, the planets it sends to be merged
are handed to a few child processes forked at that moment. They inherit the matched
planets (nothing is serialised on the way in) and send back each outcome as the memo keeps
it (:func:`common.memo.outcome_value`); the run takes it as it takes a remembered outcome,
as if an earlier run had merged the planet. Meanwhile the run goes on: it reads and matches
the other catalogue, and delivers the first planets as their outcomes arrive.

A planet whose merge raises in a child comes back without an outcome and is merged again in
the run's own process, so that its error takes the usual way; so are the planets of a child
that died. Children ignore SIGINT (Ctrl-C reaches the whole process group, and the run
decides what it means) and are killed when the run ends or is interrupted. A child whose
run was killed outright stops at its next send, the pipe broken.
"""

from __future__ import annotations

import gc
import multiprocessing
import pickle
import signal
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from types import TracebackType

from common.memo import outcome_value
from common.messages import Message, PlanetMatched, PlanetsMatched, PlanetUnchanged, SystemChanged
from runtime.bus import Handler

_FORK = multiprocessing.get_context("fork")

# Fewer planets than this are merged in the run's own process: a fork and its pipe cost more
# than they save (a run after 1 % of the rows changed merges ~100 planets).
MIN_PLANETS = 1000

Outcomes = list[tuple[str, bytes | None]]  # (planet.matched message id, memo value or None)


@dataclass
class _Child:
    process: BaseProcess
    connection: Connection
    finished: bool = False


class MergingAhead:
    """Merges what :meth:`start` is given with ``merge`` (services/merger/handler.py
    :func:`handle`) in ``processes`` children (fewer than two: none, every planet is merged
    in the run's process); :meth:`value` is a planet's outcome."""

    def __init__(self, processes: int, merge: Handler) -> None:
        self.processes = processes
        self.merge = merge
        self._children: list[_Child] = []
        self._owner: dict[str, _Child] = {}
        self._values: dict[str, bytes | None] = {}
        self._arrived = threading.Condition()

    def __enter__(self) -> MergingAhead:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def start(self, messages: Iterable[Message]) -> None:
        """Fork the children for the planets of these planets.matched (the indexer's output
        for one catalogue), each taking every n-th message, in the order the bus delivers."""
        batches = [m for m in messages if isinstance(m, PlanetsMatched)]
        if self.processes < 2 or sum(len(b.planets) for b in batches) < MIN_PLANETS:
            return
        for share in (batches[k :: self.processes] for k in range(self.processes)):
            receiving, sending = _FORK.Pipe(duplex=False)
            process = _FORK.Process(
                target=_merge_share,
                args=(self.merge, share, sending, receiving),
                name="oec-sync merger",
            )
            process.start()
            sending.close()
            child = _Child(process, receiving)
            self._children.append(child)
            self._owner.update((p.message_id, child) for b in share for p in b.planets)
            threading.Thread(target=self._receive, args=(child,), daemon=True).start()

    def value(self, planet: PlanetMatched) -> bytes | None:
        """The outcome a child computed for ``planet`` (waiting for it), as the memo keeps
        it; None if no child was given the planet or its merge failed there."""
        child = self._owner.pop(planet.message_id, None)
        if child is None:
            return None
        with self._arrived:
            self._arrived.wait_for(lambda: planet.message_id in self._values or child.finished)
            return self._values.pop(planet.message_id, None)

    def _receive(self, child: _Child) -> None:
        """Take in a child's outcomes as they come, until it has sent all (or died)."""
        try:
            while True:
                outcomes: Outcomes = pickle.loads(child.connection.recv_bytes())
                with self._arrived:
                    self._values.update(outcomes)
                    self._arrived.notify_all()
        except (EOFError, OSError):
            pass
        finally:
            with self._arrived:
                child.finished = True
                self._arrived.notify_all()

    def close(self) -> None:
        """Stop every child still merging (an interrupted or failed run) and wait for all."""
        for child in self._children:
            if child.process.is_alive():
                child.process.kill()
            child.process.join()
            child.connection.close()
        self._children.clear()
        self._owner.clear()
        self._values.clear()


def _merge_share(
    merge: Handler, share: list[PlanetsMatched], sending: Connection, receiving: Connection
) -> None:
    """A child's work: merge each planet of ``share``, one send per message."""
    receiving.close()  # the run's end of the pipe: if the run dies, a send here fails
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    # What the child inherited is never collected here: a collection would touch (and so
    # copy) every page of the run's heap.
    gc.freeze()
    for batch in share:
        outcomes: Outcomes = []
        for planet in batch.planets:
            value: bytes | None = None
            try:
                (outcome,) = merge(planet)
                assert isinstance(outcome, SystemChanged | PlanetUnchanged)
                value = outcome_value(outcome)
            except Exception:  # merged again in the run's process, which reports it
                value = None
            outcomes.append((planet.message_id, value))
        sending.send_bytes(pickle.dumps(outcomes, pickle.HIGHEST_PROTOCOL))
    sending.close()
