"""``map`` over forked processes that inherit their inputs instead of receiving them.

A process pool pickles every input to its workers; for the embedded run's messages (22 MB
of pydantic objects per full run) that costs more than the work it spreads. Forked
children already hold the inputs in memory, so only each child's results travel back.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterable
from typing import Any

_job: tuple[Callable[..., Any], list[tuple[Any, ...]]] | None = None


def _run(bounds: tuple[int, int]) -> list[Any]:
    assert _job is not None
    function, items = _job
    return [function(*items[i]) for i in range(*bounds)]


def fork_map(workers: int) -> Callable[..., list[Any]]:
    """A ``map(function, *iterables)`` that runs in ``workers`` forked processes, in order.

    ``function`` must be a pure function of its arguments; its results must pickle.
    """

    def mapper(function: Callable[..., Any], *iterables: Iterable[Any]) -> list[Any]:
        global _job
        items = list(zip(*iterables, strict=True))
        if workers <= 1 or len(items) < 2 * workers:
            return [function(*item) for item in items]
        size = -(-len(items) // (workers * 4))  # a few chunks each, for an even finish
        bounds = [(start, min(start + size, len(items))) for start in range(0, len(items), size)]
        _job = (function, items)
        try:
            with multiprocessing.get_context("fork").Pool(workers) as pool:
                chunks = pool.map(_run, bounds, chunksize=1)
        finally:
            _job = None
        return [result for chunk in chunks for result in chunk]

    return mapper
