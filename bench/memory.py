"""The memory a process and its children use together, sampled from /proc (Linux).

A run that forks children (runtime/forked.py) shares most of its pages with them, so
neither the sum of their peak resident sizes nor the largest one says what the machine
gives it. The proportional set size (PSS) counts a page shared by n processes as 1/n in
each: summed over the tree, that of the pages they allocated is the memory the run takes.
"""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path

PROC = Path("/proc")


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in (PROC / str(pid) / "task").glob("*"):
        with contextlib.suppress(OSError):
            found += [int(c) for c in (task / "children").read_text().split()]
    return found


def _pss_kib(pid: int) -> int:
    """The process's anonymous and shared-memory PSS: what it allocated, not the files it
    maps (git maps its pack files, which are page cache, not the run's memory)."""
    try:
        rollup = (PROC / str(pid) / "smaps_rollup").read_text().splitlines()
    except OSError:
        return 0
    fields = dict(line.split(":", 1) for line in rollup[1:])
    return sum(int(fields[name].split()[0]) for name in ("Pss_Anon", "Pss_Shmem") if name in fields)


def _tree(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo += _children(current)
    return sorted(found)


def tree_pss_mib(pid: int) -> float | None:
    """The summed anonymous PSS of ``pid`` and all its descendants now, in MiB; None if a
    process came or went while it was read (a fork between reading the parent and its new
    child would count the shared pages one and a half times)."""
    tree = _tree(pid)
    total = sum(_pss_kib(p) for p in tree)
    return total / 1024 if _tree(pid) == tree else None


class PeakTreeMemory:
    """Samples :func:`tree_pss_mib` of ``pid`` every ``interval`` seconds until stopped;
    ``peak`` is the largest sample (0 where /proc has no smaps_rollup)."""

    def __init__(self, pid: int, interval: float = 0.1) -> None:
        self.pid = pid
        self.interval = interval
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            if (sample := tree_pss_mib(self.pid)) is not None:
                self.peak = max(self.peak, sample)

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return self.peak
