"""The agent's guard over a synchronous ``process.Continue()`` (runs inside lldb's Python): one thread for
the session interrupts the run at its deadline or when the driver writes a cancel byte (or goes away).

Why one thread for the session: a thread started and joined around every resume cost ~0.1 ms a stop,
measured against a bare resume loop over the .NET 8 storm (706 against 760 stops/s). The thread sleeps
in select() on the cancel pipe and a wake pipe, so a run's end is seen at once (a polling sleep here once
cost 40 ms a stop); between runs it waits on a condition.
"""

from __future__ import annotations

import os
import select
import threading
import time
from typing import Any, Optional

from pydbgauto.drivers.lldb import protocol


class ContinueWatch:
    def __init__(self, cancel_fd: Optional[int]) -> None:
        self.cancel_fd = cancel_fd
        self._cond = threading.Condition()
        self._run = 0  # which run the thread may interrupt
        self._running = False
        self._deadline: Optional[float] = None
        self._process: Any = None
        self._why: Optional[str] = None
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        self._thread: Optional[threading.Thread] = None

    def begin(self, process: Any, deadline: Optional[float]) -> None:
        """A run starts (just before ``Continue``): interrupt it at ``deadline`` (monotonic; None: never)
        or on a cancel byte."""
        with self._cond:
            self._run += 1
            self._running, self._deadline, self._process, self._why = True, deadline, process, None
            self._cond.notify()
        if self._thread is None:
            self._thread = threading.Thread(target=self._watch, name="pydbgauto-continue", daemon=True)
            self._thread.start()

    def end(self) -> Optional[str]:
        """The run ended (``Continue`` returned); why it was interrupted (EVENT_TIMEOUT, EVENT_CANCELLED)
        or None."""
        with self._cond:
            self._running = False
            why = self._why
            self._cond.notify()
        os.write(self._wake_w, b"w")  # out of its select(): the next run may have another deadline
        return why

    def _interrupt(self, run: int, why: str) -> bool:
        with self._cond:
            if not self._running or self._run != run:
                return False  # that run is over: nothing to interrupt
            self._why = why
            self._process.SendAsyncInterrupt()
            return True

    def _watch(self) -> None:
        while True:
            with self._cond:
                while not self._running:
                    self._cond.wait()
                run, deadline = self._run, self._deadline
            fds = [self._wake_r] + ([self.cancel_fd] if self.cancel_fd is not None else [])
            while True:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    self._interrupt(run, protocol.EVENT_TIMEOUT)
                    break
                ready, _, _ = select.select(fds, [], [], remaining)
                if self._wake_r in ready:
                    _drain(self._wake_r)
                    with self._cond:
                        if self._running and self._run == run:
                            continue  # a wake left by an earlier run (ended after a timeout): watch on
                    break  # this run ended
                if ready:  # a cancel byte, or the driver went away (end of file): stop the wait either way
                    os.read(self.cancel_fd, 64)  # type: ignore[arg-type]
                    if self._interrupt(run, protocol.EVENT_CANCELLED):
                        break
            with self._cond:  # wait for this run to end before looking for the next
                while self._running and self._run == run:
                    self._cond.wait(0.05)


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 64):
            pass
    except BlockingIOError:
        pass
