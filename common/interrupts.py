"""Stopping on SIGINT/SIGTERM at a safe point, and the one test hook that picks the point.

``oec-sync run`` turns both signals into :class:`Interrupted` (a ``BaseException``, so no
``except Exception`` swallows it); the code that writes cleans up on the way out. The few
steps that must not be cut in two (committing the ref transaction and renaming the drafts
into place) run under :func:`deferred`, which holds a signal back until they are done.

Python runs signal handlers in the main thread only, so both are no-ops elsewhere.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

SIGNALS = (signal.SIGINT, signal.SIGTERM)

# Test hook: a stage name. The run stops at that named stage the first time it reaches it,
# says so on stderr and waits (at most PAUSE_SECONDS) for a signal, so that a test can
# interrupt a real run at a known point with a real signal.
PAUSE_ENV = "OEC_SYNC_PAUSE_AT"
PAUSE_SECONDS = 60.0
WAKE_SECONDS = 0.05  # the longest the main thread waits without looking for a signal

_signalled = threading.Event()  # set by a signal; ends a pause early
_paused: set[str] = set()


class Interrupted(BaseException):
    """The process got SIGINT or SIGTERM."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        """The shell's convention: 128 + the signal number (130 for Ctrl-C)."""
        return 128 + self.signum


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


# The signals raised as Interrupted in the current raising() block. A library can catch
# what a signal handler raised inside it and raise its own error instead (pydantic-core
# turns it into a PydanticSerializationError), or none at all: what arrived is kept here.
_received: list[int] = []


def _raise(signum: int, frame: FrameType | None) -> None:
    _signalled.set()
    _received.append(signum)
    raise Interrupted(signum)


def interruption() -> Interrupted | None:
    """The interruption under way, if a signal came in this raising() block: an error
    caught after it (however a library wrapped it) is to be treated as this."""
    return Interrupted(_received[0]) if _received else None


@contextmanager
def raising() -> Iterator[None]:
    """Within the block, SIGINT and SIGTERM raise :class:`Interrupted`."""
    if not _main_thread():
        yield
        return
    _received.clear()
    previous = {s: signal.signal(s, _raise) for s in SIGNALS}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, signal.SIG_DFL if handler is None else handler)


@contextmanager
def deferred() -> Iterator[None]:
    """Within the block a SIGINT or SIGTERM is held back; on leaving it is delivered to the
    handler that was in place before (so it raises, or terminates, just after the block)."""
    if not _main_thread():
        yield
        return
    caught: list[int] = []

    def hold(signum: int, frame: FrameType | None) -> None:
        _signalled.set()
        caught.append(signum)

    previous: dict[signal.Signals, Any] = {s: signal.signal(s, hold) for s in SIGNALS}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, signal.SIG_DFL if handler is None else handler)
        if caught:
            signal.raise_signal(caught[0])


def checkpoint(stage: str) -> None:
    """A named point of the run (``match``, ``branches``, ``drafts``, ``refs``).

    Raises :class:`Interrupted` if a signal came that a library swallowed (see
    :func:`interruption`). Otherwise does nothing unless ``OEC_SYNC_PAUSE_AT`` names this
    stage; then, the first time only, prints ``paused at <stage>`` to stderr and waits for a
    signal (see :data:`PAUSE_ENV`).
    """
    if (stop := interruption()) is not None:  # a signal some library swallowed
        raise stop
    if os.environ.get(PAUSE_ENV) != stage or stage in _paused:
        return
    _paused.add(stage)
    print(f"paused at {stage}", file=sys.stderr, flush=True)
    # In slices: the kernel may hand the signal to another of the run's threads (draft
    # writers, a child's receiver), and then nothing wakes a main thread blocked in one wait
    # to run the handler; between slices it runs.
    deadline = time.monotonic() + PAUSE_SECONDS
    while not _signalled.wait(WAKE_SECONDS) and time.monotonic() < deadline:
        pass
