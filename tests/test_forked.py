"""runtime/forked.py: work done in forked children comes back item by item; what fails
there, or belonged to a child that died, comes back as None for the run to do itself; no
child outlives its Ahead."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time

import pytest

from runtime.forked import Ahead

RUN = os.getpid()


def squared(n: int) -> bytes:
    if n == 7:
        raise ValueError("seven fails wherever it is done")
    return str(n * n).encode()


def groups(items: range, size: int = 2) -> list[list[tuple[str, int]]]:
    keyed = [(str(n), n) for n in items]
    return [keyed[i : i + size] for i in range(0, len(keyed), size)]


def test_children_answer_for_their_groups_and_the_run_keeps_every_nth() -> None:
    with Ahead(3, squared, "test") as ahead:
        ahead.start(groups(range(12)))
        answers = {n: ahead.value(str(n)) for n in range(12)}

    # Groups (0,1) (2,3) (4,5) (6,7) (8,9) (10,11): the run keeps the 1st and 4th.
    kept = {0, 1, 6, 7}
    assert {n for n, a in answers.items() if a is None} == kept
    assert all(answers[n] == str(n * n).encode() for n in set(range(12)) - kept)
    assert multiprocessing.active_children() == []


def test_a_busy_run_leaves_every_group_to_the_children() -> None:
    with Ahead(3, squared, "test") as ahead:
        ahead.start(groups(range(6), size=1), busy=True)
        answers = [ahead.value(str(n)) for n in range(6)]

    assert answers == [str(n * n).encode() for n in range(6)]  # none left to the run


def test_an_item_that_fails_in_a_child_comes_back_as_none() -> None:
    with Ahead(2, squared, "test") as ahead:
        ahead.start(groups(range(10), size=1))  # 7 is a child's (odd groups)
        answers = {n: ahead.value(str(n)) for n in range(10)}

    assert answers[7] is None
    assert answers[9] == b"81"  # the same child went on after it


def dies_at_five(n: int) -> bytes:
    if n == 5 and os.getpid() != RUN:
        os.kill(os.getpid(), signal.SIGKILL)  # as the kernel's OOM killer would
    return str(n).encode()


def test_the_items_of_a_child_that_died_come_back_as_none_without_waiting_for_ever() -> None:
    with Ahead(2, dies_at_five, "test") as ahead:
        ahead.start(groups(range(10), size=1))  # the child has 1, 3, 5, 7, 9
        answers = {n: ahead.value(str(n)) for n in range(10)}

    assert [answers[n] for n in (1, 3)] == [b"1", b"3"]
    assert [answers[n] for n in (5, 7, 9)] == [None, None, None]


def sleeps(n: int) -> bytes:
    time.sleep(60)
    return b""


def test_closing_stops_a_child_at_work() -> None:
    started = time.monotonic()
    with Ahead(2, sleeps, "test") as ahead:
        ahead.start(groups(range(4)))
        assert len(multiprocessing.active_children()) == 1

    assert multiprocessing.active_children() == []
    assert time.monotonic() - started < 30


@pytest.mark.parametrize("processes", [0, 1])
def test_with_fewer_than_two_processes_nothing_is_forked(processes: int) -> None:
    with Ahead(processes, squared, "test") as ahead:
        ahead.start(groups(range(6)))
        assert multiprocessing.active_children() == []
        assert [ahead.value(str(n)) for n in range(6)] == [None] * 6
