"""Work done ahead in forked child processes, its results taken as they are needed.

The embedded run is one process: its merges and its builds would keep one core busy while
the others wait. When the run knows a batch of work (a catalogue's planets to merge, the
files to build), :meth:`Ahead.start` forks a few children at that moment. They inherit the
work (nothing is serialised on the way in), each does its share, in the order the run will
ask for it, and sends back one ``bytes`` result per item (what the memo keeps of it), a
group at a time. The run goes on meanwhile and does its own share, and :meth:`Ahead.value`
waits for a child's result only when the run reaches it.

An item whose work raises in a child comes back as None, and so do the items of a child
that died: the run then does them itself, so that an error takes the usual way. Children
ignore SIGINT (Ctrl-C reaches the whole process group, and the run decides what it means)
and are killed when the run ends or is interrupted. A child whose run was killed outright
stops at its next send, the pipe broken.
"""

from __future__ import annotations

import gc
import multiprocessing
import pickle
import signal
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from types import TracebackType
from typing import Generic, TypeVar

from common.interrupts import WAKE_SECONDS

Item = TypeVar("Item")
Results = list[tuple[str, bytes | None]]  # (item key, result or None)

# Children inherit the work by fork (POSIX; OEC Sync runs where git, flock and /proc are).
_FORKS = "fork" in multiprocessing.get_all_start_methods()


@dataclass
class _Child:
    process: BaseProcess
    connection: Connection
    finished: bool = False


class Ahead(Generic[Item]):
    """Does ``work`` on what :meth:`start` is given in ``processes`` - 1 children, beside
    the run (fewer than two processes: nothing is done ahead, and :meth:`value` answers
    None)."""

    def __init__(self, processes: int, work: Callable[[Item], bytes], name: str) -> None:
        self.processes = processes
        self.work = work
        self.name = name
        self._children: list[_Child] = []
        self._owner: dict[str, _Child] = {}
        self._results: dict[str, bytes | None] = {}
        self._arrived = threading.Condition()

    def __enter__(self) -> Ahead[Item]:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def start(self, groups: Sequence[Sequence[tuple[str, Item]]], busy: bool = False) -> None:
        """Fork the children for ``groups`` of (key, item), in the order the run will ask
        for them. The run is one of the ``processes``: of every n groups it keeps the first
        for itself (:meth:`value` answers None) and each child takes one, sending its
        results a group at once; a run that is ``busy`` meanwhile (it has other work before
        it needs these results) keeps none. A child costs memory (what it makes, and the
        pages of the run's heap it touches and so copies: a first run's build child grows
        to ~170 MiB of its own), which the run's own share does not."""
        if self.processes < 2 or not _FORKS:
            return
        # One batch's children at a time: the run needs the earlier batch's results first
        # anyway, and two batches' children side by side would add a child's memory.
        for child in self._children:
            child.process.join()
        fork = multiprocessing.get_context("fork")
        children = self.processes - 1
        shares = (
            [groups[k::children] for k in range(children)]
            if busy
            else [groups[k :: self.processes] for k in range(1, self.processes)]
        )
        for share in shares:
            receiving, sending = fork.Pipe(duplex=False)
            process = fork.Process(
                target=_work_share,
                args=(self.work, share, sending, receiving),
                name=f"oec-sync {self.name}",
            )
            process.start()
            sending.close()
            child = _Child(process, receiving)
            self._children.append(child)
            self._owner.update((key, child) for group in share for key, _ in group)
            threading.Thread(target=self._receive, args=(child,), daemon=True).start()

    def value(self, key: str) -> bytes | None:
        """The result a child sent for ``key`` (waiting for it); None if no child was given
        the item, or its work failed there."""
        child = self._owner.pop(key, None)
        if child is None:
            return None
        with self._arrived:
            # In slices, so that a Ctrl-C the kernel handed to another thread is seen here.
            while not self._arrived.wait_for(
                lambda: key in self._results or child.finished, WAKE_SECONDS
            ):
                pass
            return self._results.pop(key, None)

    def _receive(self, child: _Child) -> None:
        """Take in a child's results as they come, until it has sent all (or died)."""
        try:
            while True:
                results: Results = pickle.loads(child.connection.recv_bytes())
                with self._arrived:
                    self._results.update(results)
                    self._arrived.notify_all()
        except (EOFError, OSError):
            pass
        finally:
            with self._arrived:
                child.finished = True
                self._arrived.notify_all()

    def close(self) -> None:
        """Stop every child still working (an interrupted or failed run) and wait for all."""
        for child in self._children:
            if child.process.is_alive():
                child.process.kill()
            child.process.join()
            child.connection.close()
        self._children.clear()
        self._owner.clear()
        self._results.clear()


def _work_share(
    work: Callable[[Item], bytes],
    share: Sequence[Sequence[tuple[str, Item]]],
    sending: Connection,
    receiving: Connection,
) -> None:
    """A child's part: ``work`` on each item of ``share``, one send per group."""
    receiving.close()  # the run's end of the pipe: if the run dies, a send here fails
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    # What the child inherited is never collected here: a collection would touch (and so
    # copy) every page of the run's heap.
    gc.freeze()
    for group in share:
        results: Results = []
        for key, item in group:
            result: bytes | None = None
            try:
                result = work(item)
            except Exception:  # done again by the run, which reports it
                result = None
            results.append((key, result))
        sending.send_bytes(pickle.dumps(results, pickle.HIGHEST_PROTOCOL))
    sending.close()
