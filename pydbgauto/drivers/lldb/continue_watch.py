"""The agent's guard over a synchronous ``process.Continue()`` (runs inside lldb's Python): one thread for
the session interrupts the run at its deadline or when the driver writes a cancel byte (or goes away).

Why one thread for the session: a thread started and joined around every resume cost ~0.1 ms a stop,
measured against a bare resume loop over the .NET 8 storm (706 against 760 stops/s). Why it does not
wake for every run: a wake at each run's start and end (to hand it the run's deadline) still cost
~0.18 ms of a ~1.2-ms stop (the same storm under a message predicate: 500 -> 576 stops/s without it),
the thread taking a core and the GIL while lldb resumes the target. So the thread sleeps in select() on
the cancel pipe and a wake pipe until the earliest deadline it knows; a run wakes it only when it brings
an earlier deadline (or a cancel is waiting). Runs of one wait share its deadline, so a storm of stops
wakes it not at all.

lldb ignores an interrupt sent while the process is stopped (one sent just before ``Continue`` resumes
it is lost), so a run past its deadline or cancelled is interrupted again every RETRY seconds until it
ends. A cancel byte that comes between runs is kept for the next run.
"""

from __future__ import annotations

import os
import select
import threading
import time
from typing import Any, List, Optional

from pydbgauto.drivers.lldb import protocol

RETRY = 0.02  # seconds between interrupts of a run that should have stopped


class ContinueWatch:
    def __init__(self, cancel_fd: Optional[int]) -> None:
        self.cancel_fd = cancel_fd
        self._lock = threading.Lock()
        self._running = False
        self._deadline: Optional[float] = None
        self._process: Any = None
        self._why: Optional[str] = None
        self._cancel = False  # a cancel byte (or the driver's end of file) waits for a run to stop
        self._gone = False  # the driver went away: every run is cancelled
        self._sleeping_until: Optional[float] = None  # when the thread's select() returns (None: never)
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        self._thread: Optional[threading.Thread] = None
        self.wakes = 0  # times a run woke the thread

    def begin(self, process: Any, deadline: Optional[float]) -> None:
        """A run starts (just before ``Continue``): interrupt it at ``deadline`` (monotonic; None: never)
        or on a cancel byte."""
        with self._lock:
            self._running, self._deadline, self._process, self._why = True, deadline, process, None
            sleeping = self._sleeping_until
            wake = self._cancel or (deadline is not None and (sleeping is None or deadline < sleeping))
        if self._thread is None:
            self._thread = threading.Thread(target=self._watch, name="pydbgauto-continue", daemon=True)
            self._thread.start()
        elif wake:
            self.wakes += 1
            os.write(self._wake_w, b"w")

    def end(self) -> Optional[str]:
        """The run ended (``Continue`` returned); why it was interrupted (EVENT_TIMEOUT, EVENT_CANCELLED)
        or None."""
        with self._lock:
            self._running = False
            why = self._why
            if not self._gone:
                self._cancel = False  # it was this run's: the driver sends another if it still wants one
            return why

    def _next_sleep(self) -> Optional[float]:
        """Interrupt the run if it is due; the seconds to sleep before looking again (None: until woken)."""
        with self._lock:
            now = time.monotonic()
            due = self._running and (self._cancel or (self._deadline is not None and now >= self._deadline))
            if due:
                if self._why is None:
                    self._why = protocol.EVENT_CANCELLED if self._cancel else protocol.EVENT_TIMEOUT
                self._process.SendAsyncInterrupt()
                self._sleeping_until = now + RETRY
            elif self._running and self._deadline is not None:
                self._sleeping_until = self._deadline
            else:
                self._sleeping_until = None
            return None if self._sleeping_until is None else max(0.0, self._sleeping_until - now)

    def _watch(self) -> None:
        while True:
            timeout = self._next_sleep()
            fds: List[int] = [self._wake_r]
            if self.cancel_fd is not None and not self._gone:
                fds.append(self.cancel_fd)
            ready, _, _ = select.select(fds, [], [], timeout)
            if self._wake_r in ready:
                _drain(self._wake_r)
            if self.cancel_fd is not None and self.cancel_fd in ready:
                data = os.read(self.cancel_fd, 64)
                with self._lock:
                    self._cancel = True  # a cancel byte, or the driver went away: stop the wait either way
                    self._gone = self._gone or not data


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 64):
            pass
    except BlockingIOError:
        pass
