"""Signals in this process: SIGINT/SIGTERM become Interrupted, or wait for the end of a block
that must not be cut in two."""

from __future__ import annotations

import os
import signal

import pytest

from common.interrupts import Interrupted, deferred, raising


def test_sigterm_and_sigint_raise_interrupted_with_the_shells_exit_code() -> None:
    for signum, code in ((signal.SIGTERM, 143), (signal.SIGINT, 130)):
        with pytest.raises(Interrupted) as caught, raising():
            os.kill(os.getpid(), signum)
            signal.pause()  # not reached: the handler raises first
        assert caught.value.exit_code == code


def test_a_deferred_signal_arrives_after_the_block_not_within() -> None:
    done: list[str] = []
    with pytest.raises(Interrupted), raising():
        with deferred():
            os.kill(os.getpid(), signal.SIGINT)
            done.append("the rest of the block")
        done.append("after the block")  # not reached: the held signal is delivered first

    assert done == ["the rest of the block"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
