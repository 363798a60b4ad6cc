"""The garbage collector's thresholds for a process that holds a run in memory."""

from __future__ import annotations

import gc

# A run keeps ~10^6 objects alive (records, patches, outcomes) and makes few reference
# cycles. With CPython's default (700, 10, 10) a young collection runs every 700
# allocations and a full one each time the survivors grow by a quarter, rescanning
# everything the run holds: 3 of the 9 s of a run with nothing to do, 7 CPU seconds of
# a cold one (bench/bench_incremental.py). Collections still happen, a hundred times
# less often.
THRESHOLDS = (100_000, 50, 100)


def tune_for_batches() -> None:
    """Collect rarely, and never rescan what was loaded at start-up (modules, settings)."""
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)


def spare_the_exit() -> None:
    """Leave what the process still holds to its end. At exit the interpreter collects
    everything once more, scanning every object a command left (a first run's: 0.15 s of
    its end, measured in alternating runs); frozen, they are only freed."""
    gc.freeze()
