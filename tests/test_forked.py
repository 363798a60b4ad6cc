"""runtime/forked.py: work done in forked children comes back item by item; what fails
there, or belonged to a child that died, comes back as None for the run to do itself; no
child outlives its Ahead."""

from __future__ import annotations

import multiprocessing
import os
import pickle
import signal
import threading
import time

import pytest

from runtime import forked
from runtime.forked import Ahead, results_pipe

RUN = os.getpid()


def squared(n: int) -> bytes:
    if n == 7:
        raise ValueError("seven fails wherever it is done")
    return str(n * n).encode()


def groups(items: range, size: int = 2) -> list[list[tuple[str, int]]]:
    keyed = [(str(n), n) for n in items]
    return [keyed[i : i + size] for i in range(0, len(keyed), size)]


def children_done(timeout: float = 30.0) -> None:
    """Wait until every child has sent all it will and ended: a run busy elsewhere."""
    deadline = time.monotonic() + timeout
    while multiprocessing.active_children() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert multiprocessing.active_children() == []


def test_a_run_busy_elsewhere_leaves_every_group_to_the_children() -> None:
    with Ahead(3, squared, "test") as ahead:
        ahead.start(groups(range(12)))
        children_done()
        answers = {n: ahead.value(str(n)) for n in range(12)}

    assert answers == {n: None if n == 7 else str(n * n).encode() for n in range(12)}


done_by_run: list[int] = []


def slower_in_children(n: int) -> bytes:
    if os.getpid() == RUN:
        done_by_run.append(n)
    time.sleep(0.05 if os.getpid() != RUN else 0.01)
    return str(n * n).encode()


def test_a_run_that_catches_up_with_a_child_does_the_last_groups_meanwhile() -> None:
    done_by_run.clear()
    answers: dict[int, bytes] = {}
    ahead_of_time: set[int] = set()
    with Ahead(2, slower_in_children, "test") as ahead:
        ahead.start(groups(range(40)))
        time.sleep(0.3)  # the child claims the first groups
        for n in range(40):
            done = set(done_by_run)
            answer = ahead.value(str(n))
            if answer is None:  # the run's group: it does it itself
                answer = slower_in_children(n)
            elif n in done:
                ahead_of_time.add(n)
            answers[n] = answer

    assert answers == {n: str(n * n).encode() for n in range(40)}
    from_children = set(range(40)) - set(done_by_run)
    assert from_children
    # Done by the run while it waited, from the last group down, and never again.
    assert 39 in ahead_of_time
    assert sorted(done_by_run) == sorted(set(done_by_run))


def test_a_new_batch_waits_for_the_earlier_one_doing_its_last_groups_meanwhile() -> None:
    done_by_run.clear()
    with Ahead(2, slower_in_children, "test") as ahead:
        ahead.start(groups(range(40)))
        time.sleep(0.3)  # the child claims the first groups
        ahead.start(groups(range(100, 104)))  # the child of the first batch has ended
        helped = set(done_by_run)
        first = {n: ahead.value(str(n)) for n in range(40)}
        second = {n: ahead.value(str(n)) for n in range(100, 104)}

    # The run did the first batch's last groups while it waited, and kept their results.
    assert 39 in helped
    assert all(first[n] == str(n * n).encode() for n in helped)
    assert all(first[n] in (None, str(n * n).encode()) for n in range(40))
    assert set(range(40)) - helped  # and the child the first ones
    assert all(second[n] in (None, str(n * n).encode()) for n in range(100, 104))


def test_arrived_says_whether_a_value_would_wait_for_a_child() -> None:
    with Ahead(2, sleeps, "test") as ahead:
        ahead.start(groups(range(4)))  # the child sleeps on the first group
        assert not ahead.arrived("0")  # claimed by the child (or about to be)
        assert not ahead.arrived("3")  # nobody has claimed its group yet
        assert ahead.value("3") is None  # the run claims it: done here
        assert ahead.arrived("3")
        assert ahead.arrived("not given")
    with Ahead(2, squared, "test") as ahead:
        ahead.start(groups(range(4)))
        children_done()
        assert ahead.arrived("0") and ahead.value("0") == b"0"


def test_an_item_that_fails_in_a_child_comes_back_as_none() -> None:
    with Ahead(2, squared, "test") as ahead:
        ahead.start(groups(range(10), size=1))
        children_done()
        answers = {n: ahead.value(str(n)) for n in range(10)}

    assert answers[7] is None
    assert answers[9] == b"81"  # the same child went on after it


def dies_at_five(n: int) -> bytes:
    if n == 5 and os.getpid() != RUN:
        os.kill(os.getpid(), signal.SIGKILL)  # as the kernel's OOM killer would
    return str(n).encode()


def test_the_items_of_a_child_that_died_come_back_as_none_without_waiting_for_ever() -> None:
    with Ahead(2, dies_at_five, "test") as ahead:
        ahead.start(groups(range(10), size=1))
        children_done()  # it died at 5: 6 to 9 nobody claimed
        answers = [ahead.value(str(n)) for n in range(10)]

    assert answers[:6] == [b"0", b"1", b"2", b"3", b"4", None]  # 5: the run does it itself
    # The others the run does itself too, or did while it found the child not yet gone.
    assert all(answers[n] in (None, str(n).encode()) for n in range(6, 10))


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


def test_a_groups_results_go_into_the_pipe_while_the_run_is_busy() -> None:
    """A child sends a group's results (150-220 kB on the full data) and goes on to its
    next group even while the run does not read: the run's reader needs the GIL, which a
    busy run lets go only every few milliseconds."""
    receiving, sending = results_pipe()
    sent = threading.Event()

    def send() -> None:
        sending.send_bytes(b"r" * 250_000)
        sent.set()

    threading.Thread(target=send, daemon=True).start()
    try:
        assert sent.wait(10), "the send waited for a reader"
        assert receiving.recv_bytes() == b"r" * 250_000
    finally:
        sending.close()
        receiving.close()


def large(n: int) -> bytes:
    return bytes(400_000)  # three fill the pipe


def test_a_result_the_run_cannot_take_in_stops_its_child(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def loads(data: bytes) -> object:
        raise pickle.UnpicklingError("a result that cannot be read")

    monkeypatch.setattr(forked.pickle, "loads", loads)
    monkeypatch.setattr(threading, "excepthook", lambda args: None)  # the thread's traceback
    with Ahead(2, large, "test") as ahead:
        ahead.start(groups(range(20), size=1))
        deadline = time.monotonic() + 30
        while not ahead.arrived("0"):  # the child's first result came, and was not taken in
            assert time.monotonic() < deadline
            time.sleep(0.01)
        answers = {n: ahead.value(str(n)) for n in range(20)}
        # A new batch waits for the earlier one's child: it must not wait for ever.
        starting = threading.Thread(target=ahead.start, args=(groups(range(20, 22)),))
        starting.start()
        starting.join(timeout=30)
        assert not starting.is_alive()

    assert answers[0] is None  # for the run to do itself
    assert all(answer in (None, large(n)) for n, answer in answers.items())
    assert multiprocessing.active_children() == []
