"""continue_watch.py: one thread interrupts each run at its deadline, also right after a run it
interrupted (a wake byte that run left behind must not make it skip the next). The lldb process is a
test double here (InterruptRecorder: only SendAsyncInterrupt, which it records); the real one is exercised
by every integration test that waits in slices (tests/integration/test_watch.py and others)."""

from __future__ import annotations

import os
import threading
import time
from typing import List

from pydbgauto.drivers.lldb import protocol
from pydbgauto.drivers.lldb.continue_watch import ContinueWatch


class InterruptRecorder:
    """Test double of lldb.SBProcess: a run "continues" until SendAsyncInterrupt is called."""

    def __init__(self) -> None:
        self.interrupted = threading.Event()
        self.calls: List[float] = []

    def SendAsyncInterrupt(self) -> None:  # noqa: N802 - lldb's name
        self.calls.append(time.monotonic())
        self.interrupted.set()

    def run(self, watch: ContinueWatch, deadline: float, longest: float = 5.0) -> str:
        self.interrupted.clear()
        watch.begin(self, deadline)
        self.interrupted.wait(longest)
        return str(watch.end())


def test_each_run_is_interrupted_at_its_deadline_even_after_an_interrupted_one() -> None:
    watch = ContinueWatch(None)
    process = InterruptRecorder()
    for _ in range(20):  # timeout after timeout: each leaves a wake byte behind
        started = time.monotonic()
        assert process.run(watch, started + 0.02) == protocol.EVENT_TIMEOUT
        assert time.monotonic() - started < 2.0


def test_a_run_that_ends_by_itself_is_not_interrupted_and_the_next_is() -> None:
    watch = ContinueWatch(None)
    process = InterruptRecorder()
    watch.begin(process, time.monotonic() + 10)
    time.sleep(0.05)
    assert watch.end() is None and not process.calls  # ended before its deadline
    started = time.monotonic()
    assert process.run(watch, started + 0.05) == protocol.EVENT_TIMEOUT
    assert len(process.calls) == 1


def test_a_cancel_byte_interrupts_the_run() -> None:
    read_end, write_end = os.pipe()
    watch = ContinueWatch(read_end)
    process = InterruptRecorder()
    threading.Timer(0.05, lambda: os.write(write_end, b"c")).start()
    assert process.run(watch, time.monotonic() + 10) == protocol.EVENT_CANCELLED


class LosesFirstInterrupt(InterruptRecorder):
    """Test double of lldb.SBProcess that drops the first interrupt, as lldb does with one that comes
    before Continue has resumed the process."""

    def SendAsyncInterrupt(self) -> None:  # noqa: N802 - lldb's name
        self.calls.append(time.monotonic())
        if len(self.calls) > 1:
            self.interrupted.set()


def test_a_lost_interrupt_is_sent_again_until_the_run_stops() -> None:
    watch = ContinueWatch(None)
    process = LosesFirstInterrupt()
    assert process.run(watch, time.monotonic()) == protocol.EVENT_TIMEOUT
    assert len(process.calls) >= 2


def test_a_cancel_byte_between_runs_cancels_the_next_run() -> None:
    read_end, write_end = os.pipe()
    watch = ContinueWatch(read_end)
    process = InterruptRecorder()
    watch.begin(process, None)
    assert watch.end() is None
    os.write(write_end, b"c")
    time.sleep(0.1)  # read by the thread while no run is going
    assert process.run(watch, time.monotonic() + 10) == protocol.EVENT_CANCELLED
    assert process.run(watch, time.monotonic() + 0.05) == protocol.EVENT_TIMEOUT  # it was that run's only


def test_runs_that_share_a_deadline_do_not_wake_the_thread() -> None:
    """A storm of stops within one wait: the thread sleeps through them (it costs the target a core)."""
    watch = ContinueWatch(None)
    process = InterruptRecorder()
    deadline = time.monotonic() + 30
    for _ in range(200):
        watch.begin(process, deadline)
        assert watch.end() is None
    for _ in range(200):
        watch.begin(process, None)
        assert watch.end() is None
    assert watch.wakes <= 1 and not process.calls
    assert process.run(watch, time.monotonic() + 0.05) == protocol.EVENT_TIMEOUT  # an earlier one wakes it
