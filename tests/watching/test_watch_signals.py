"""SIGINT/SIGTERM/SIGHUP during a watch (watching/signals.py): raised once in the main thread as
Interrupted, then only recorded; the previous handlers come back; a caller's own handler is kept."""

from __future__ import annotations

import signal
import threading
from typing import List

import pytest

from pydbgauto.errors import Interrupted
from pydbgauto.watching.signals import END_SIGNALS, SignalGuard


def test_the_first_signal_raises_interrupted_the_next_is_only_recorded() -> None:
    before = {s: signal.getsignal(s) for s in END_SIGNALS}
    with SignalGuard(True) as guard:
        assert all(signal.getsignal(s) == guard._handler for s in END_SIGNALS)
        with pytest.raises(Interrupted) as info:
            signal.raise_signal(signal.SIGINT)
        assert info.value.signum == signal.SIGINT and guard.signum == signal.SIGINT and guard.deferred
        signal.raise_signal(signal.SIGINT)  # the watch is ending: recorded, not raised
        assert guard.signum == signal.SIGINT
    assert {s: signal.getsignal(s) for s in END_SIGNALS} == before


def test_defer_before_any_signal_records_it() -> None:
    with SignalGuard(True) as guard:
        guard.defer()
        signal.raise_signal(signal.SIGINT)
        assert guard.signum == signal.SIGINT


def test_a_handler_of_the_caller_is_not_replaced() -> None:
    seen: List[int] = []
    old = signal.signal(signal.SIGINT, lambda signum, frame: seen.append(signum))
    try:
        with SignalGuard(True):
            signal.raise_signal(signal.SIGINT)
        assert seen == [signal.SIGINT]
    finally:
        signal.signal(signal.SIGINT, old)


def test_off_the_main_thread_the_guard_does_nothing() -> None:
    guards: List[SignalGuard] = []
    thread = threading.Thread(target=lambda: guards.append(SignalGuard(True)))
    thread.start()
    thread.join()
    assert not guards[0].enabled
    assert not SignalGuard(False).enabled
