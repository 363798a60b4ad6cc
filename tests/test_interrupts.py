"""Signals in this process: SIGINT/SIGTERM become Interrupted, or wait for the end of a block
that must not be cut in two."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import signal

import pytest
from pydantic import BaseModel, field_serializer

from common import topology
from common.interrupts import Interrupted, checkpoint, deferred, raising
from common.messages import CatalogueDownloaded, Message
from common.records import Source
from runtime.bus.memory import MemoryBus


def test_sigterm_and_sigint_raise_interrupted_with_the_shells_exit_code() -> None:
    for signum, code in ((signal.SIGTERM, 143), (signal.SIGINT, 130)):
        with pytest.raises(Interrupted) as caught, raising():
            os.kill(os.getpid(), signum)
            signal.pause()  # not reached: the handler raises first
        assert caught.value.exit_code == code


def test_a_deferred_signal_arrives_after_the_block_not_within() -> None:
    before = signal.getsignal(signal.SIGINT)  # SIG_IGN where the tests were started with &
    done: list[str] = []
    with pytest.raises(Interrupted), raising():
        with deferred():
            os.kill(os.getpid(), signal.SIGINT)
            done.append("the rest of the block")
        done.append("after the block")  # not reached: the held signal is delivered first

    assert done == ["the rest of the block"]
    assert signal.getsignal(signal.SIGINT) is before


class Signalling(BaseModel):
    """A model whose serialisation receives SIGINT half-way, as pydantic-core does when
    Ctrl-C comes while it serialises (it runs the handler, then wraps what it raised)."""

    name: str

    @field_serializer("name")
    def _name(self, name: str) -> str:
        os.kill(os.getpid(), signal.SIGINT)
        return name


def test_a_signal_a_library_wraps_in_its_own_error_still_stops_the_run() -> None:
    seen: list[Message] = []

    def serialising(message: Message) -> list[Message]:
        Signalling(name="x").model_dump_json()  # raises PydanticSerializationError
        return []

    bus = MemoryBus(seen.append)
    bus.subscribe(topology.INDEXER, serialising)
    bus.publish(
        CatalogueDownloaded.from_bytes("run", Source.NASA, "nasa.csv", b"data", dt.datetime.now())
    )
    with pytest.raises(Interrupted) as caught, raising():
        bus.run_until_idle()  # not given up as a failed catalogue: interrupted

    assert caught.value.exit_code == 130
    assert seen == []


def test_a_signal_a_library_swallows_stops_the_run_at_the_next_checkpoint() -> None:
    with pytest.raises(Interrupted), raising():
        with contextlib.suppress(Exception):
            Signalling(name="x").model_dump_json()
        checkpoint("match")
