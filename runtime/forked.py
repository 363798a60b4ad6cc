"""Work done ahead in forked child processes, its results taken as they are needed.

The embedded run is one process: its merges and its builds would keep one core busy while
the others wait. When the run knows a batch of work (a catalogue's planets to merge, the
files to build), :meth:`Ahead.start` forks a few children at that moment. They inherit the
work (nothing is serialised on the way in) and go through it in the order the run will ask
for it, each claiming the next group nobody has and sending back one ``bytes`` result per
item (what the memo keeps of it), a group at a time. The run goes on meanwhile; when it
reaches a group nobody has claimed it does that group itself, and :meth:`Ahead.value` waits
for a child's result only when the run reaches a group a child claimed. So the work splits
by each side's pace: a fixed share would leave one side idle while the other finishes.

An item whose work raises in a child comes back as None, and so do the items of a child
that died: the run then does them itself, so that an error takes the usual way. Children
ignore SIGINT (Ctrl-C reaches the whole process group, and the run decides what it means)
and are killed when the run ends or is interrupted. A child whose run was killed outright
stops at its next send, the pipe broken.
"""

from __future__ import annotations

import contextlib
import fcntl
import gc
import multiprocessing
import pickle
import signal
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from types import TracebackType
from typing import Any, Generic, TypeVar

from common.interrupts import WAKE_SECONDS

Item = TypeVar("Item")
Results = list[tuple[str, bytes | None]]  # (item key, result or None)

# Children inherit the work by fork (POSIX; OEC Sync runs where git, flock and /proc are).
_FORKS = "fork" in multiprocessing.get_all_start_methods()


# A group's results are 150-220 kB (16 built files, 50 merged planets). Through a 64 KiB
# pipe a child waited at every send: the run's thread that reads the pipe needs the GIL
# for each read, which the run's busy main thread lets go only every 5 ms. The child sat
# idle a third of the time (both cores 1.5 busy instead of 2); 1 MiB (Linux's limit for
# an unprivileged process) holds a group, and a first run's build ends 0.4 s sooner.
PIPE_BYTES = 1 << 20

_RUN = -1  # a group the run does itself, where it is asked for
_RUN_AHEAD = -2  # a group the run did while it waited for a child's; its results are kept


@dataclass
class _Child:
    process: BaseProcess
    connection: Connection
    finished: bool = False


@dataclass
class _Batch(Generic[Item]):
    """The groups of one :meth:`Ahead.start`, who claimed each (in memory the children
    share), and what the run found there (it reads each group's claim once)."""

    groups: Sequence[Sequence[tuple[str, Item]]]
    claims: Any  # a multiprocessing RawArray of signed bytes, one per group
    children: list[_Child] = field(default_factory=list)
    owners: dict[int, int] = field(default_factory=dict)
    last: int = -1  # no group after this one is free: where the run looks for one to do

    def claim_last(self) -> int | None:
        """Claim for the run the last group nobody has (the children go from the first)."""
        while self.last >= 0 and self.claims[self.last]:
            self.last -= 1
        if self.last < 0:
            return None
        self.claims[self.last] = _RUN_AHEAD
        self.owners[self.last] = _RUN_AHEAD
        return self.last


class Ahead(Generic[Item]):
    """Does ``work`` on what :meth:`start` is given in ``processes`` - 1 children, beside
    the run (fewer than two processes: nothing is done ahead, and :meth:`value` answers
    None)."""

    def __init__(self, processes: int, work: Callable[[Item], bytes], name: str) -> None:
        self.processes = processes
        self.work = work
        self.name = name
        self._children: list[_Child] = []
        self._group_of: dict[str, tuple[_Batch[Item], int]] = {}
        self._batch: _Batch[Item] | None = None  # the last one started
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

    def start(self, groups: Sequence[Sequence[tuple[str, Item]]]) -> None:
        """Fork the children for ``groups`` of (key, item), in the order the run will ask
        for them. Each group is done by whoever claims it first: a child claims the next
        group nobody has and sends its results at once; the run claims a group when it asks
        for its first item and does that group itself (:meth:`value` answers None), and
        while it waits for a child it does the last groups nobody has. So a run busy
        elsewhere leaves every group to the children, and one that is not takes its part at
        its own pace. A child costs memory (what it makes, and the pages of the run's heap
        it touches and so copies: a first run's build child grows to ~170 MiB of its own),
        which the run's own part does not."""
        if self.processes < 2 or not _FORKS:
            return
        # One batch's children at a time: the run needs the earlier batch's results first
        # anyway, and two batches' children side by side would add a child's memory. The
        # run does the earlier batch's last free groups meanwhile, rather than wait idle.
        if (earlier := self._batch) is not None:
            self._do_last_groups(earlier, lambda: all(c.finished for c in earlier.children))
        for child in self._children:
            child.process.join()
        fork = multiprocessing.get_context("fork")
        # Who does each group: 0 nobody yet, a child's number, or the run's. Shared memory, no
        # lock: a child killed while holding one would stop the run. If the run and a child
        # claim a group at the same moment, both do it, and the run takes its own result.
        batch = _Batch(groups, fork.RawArray("b", len(groups)), last=len(groups) - 1)
        for number in range(1, self.processes):
            receiving, sending = results_pipe()
            process = fork.Process(
                target=_work_claimed,
                args=(self.work, groups, batch.claims, number, sending, receiving),
                name=f"oec-sync {self.name}",
            )
            process.start()
            sending.close()
            child = _Child(process, receiving)
            self._children.append(child)
            batch.children.append(child)
            threading.Thread(target=self._receive, args=(child,), daemon=True).start()
        self._group_of.update(
            (key, (batch, index)) for index, group in enumerate(groups) for key, _ in group
        )
        self._batch = batch

    def value(self, key: str) -> bytes | None:
        """The result a child sent for ``key``; None if the run does the item itself (it
        reached the item's group before any child, or nobody was given it) or its work
        failed. While a child's result has not come, the run does the last groups nobody
        has claimed, keeping their results for when it asks for them: a run that catches up
        with a child would otherwise wait at each of its groups in turn."""
        found = self._group_of.pop(key, None)
        if found is None:
            return None
        batch, index = found
        owner = batch.owners.get(index)
        if owner is None:
            owner = batch.claims[index]
            if owner == 0:
                batch.claims[index] = owner = _RUN
            batch.owners[index] = owner
        if owner == _RUN:
            return None
        if owner == _RUN_AHEAD:
            return self._results.pop(key, None)
        child = batch.children[owner - 1]
        self._do_last_groups(batch, lambda: self._came(key, child))
        with self._arrived:
            # In slices, so that a Ctrl-C the kernel handed to another thread is seen here.
            while not self._arrived.wait_for(lambda: self._came(key, child), WAKE_SECONDS):
                pass
            return self._results.pop(key, None)

    def arrived(self, key: str) -> bool:
        """Whether :meth:`value` would answer for ``key`` without waiting for a child: its
        result has come (or its child died), or no child was given it. A group no child has
        claimed yet has not arrived: its child is about to claim it."""
        found = self._group_of.get(key)
        if found is None:
            return True
        batch, index = found
        owner: int = batch.claims[index]
        if owner <= 0:
            return owner != 0
        with self._arrived:
            return self._came(key, batch.children[owner - 1])

    def _do_last_groups(self, batch: _Batch[Item], until: Callable[[], bool]) -> None:
        """Do the last groups of ``batch`` nobody has claimed, until ``until()`` or none is
        left, keeping their results for when the run asks for them."""
        while not until() and (ahead := batch.claim_last()) is not None:
            results = _worked(self.work, batch.groups[ahead])
            with self._arrived:
                self._results.update(results)

    def _came(self, key: str, child: _Child) -> bool:
        """Whether ``child`` has sent ``key``'s result or will send nothing more."""
        return key in self._results or child.finished

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
        except BaseException:
            # What is not taken in, the run does itself (its items come back as None); the
            # child, blocked on a full pipe, would wait for ever, and a next batch with it.
            child.process.kill()
            raise
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
        self._batch = None
        self._group_of.clear()
        self._results.clear()


def results_pipe() -> tuple[Connection, Connection]:
    """A child's pipe to the run (receiving end, sending end), :data:`PIPE_BYTES` large
    where the system allows it."""
    receiving, sending = multiprocessing.get_context("fork").Pipe(duplex=False)
    with contextlib.suppress(OSError, AttributeError):  # not Linux: the system's size
        fcntl.fcntl(sending.fileno(), fcntl.F_SETPIPE_SZ, PIPE_BYTES)
    return receiving, sending


def _work_claimed(
    work: Callable[[Item], bytes],
    groups: Sequence[Sequence[tuple[str, Item]]],
    claims: Any,
    number: int,
    sending: Connection,
    receiving: Connection,
) -> None:
    """A child's part: ``work`` on each group nobody has claimed, one send per group."""
    receiving.close()  # the run's end of the pipe: if the run dies, a send here fails
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    # What the child inherited is never collected here: a collection would touch (and so
    # copy) every page of the run's heap.
    gc.freeze()
    for index, group in enumerate(groups):
        if claims[index]:
            continue
        claims[index] = number
        sending.send_bytes(pickle.dumps(_worked(work, group), pickle.HIGHEST_PROTOCOL))
    sending.close()


def _worked(work: Callable[[Item], bytes], group: Sequence[tuple[str, Item]]) -> Results:
    """``work`` on each item of ``group``; None for an item whose work raised (the run does
    it again in its usual way, which reports the error)."""
    results: Results = []
    for key, item in group:
        result: bytes | None = None
        try:
            result = work(item)
        except Exception:
            result = None
        results.append((key, result))
    return results
