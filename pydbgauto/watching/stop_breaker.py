"""Ends a watch's wait when its ``stop`` event is set, by breaking into it (the driver's ``interrupt_wait``).

Without it the wait ran in slices of ``poll_interval``, each ended by breaking in and resuming the target,
only to look at ``stop``: a watched service (every process of a name under ``watch_all``, or a pytest
``dotnet_watch``) was stopped once or twice a second for nothing. This thread waits on ``stop`` in Python
instead, and once it is set breaks into the wait running (``interrupt_wait``: only a wait, never a
request of its own), again every ``RETRY`` seconds until the loop has ended (one that came between two
waits did nothing). Drivers without ``interrupt_wait`` keep the slices.
"""

from __future__ import annotations

import logging
import threading
from typing import Optional

from pydbgauto.errors import PydbgautoError
from pydbgauto.session import Session

log = logging.getLogger(__name__)

RETRY = 0.05
# How long one break-in may take (the driver's own grace to interrupt is within it).
BREAK_TIMEOUT = 30.0


class StopBreaker:
    """``with StopBreaker(session, stop):`` around the waits of a loop that checks ``stop`` between them
    and takes an event of kind ``break`` as the end of a wait."""

    def __init__(self, session: Session, stop: threading.Event) -> None:
        self.session = session
        self.stop = stop
        self._done = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def __enter__(self) -> "StopBreaker":
        self._thread = threading.Thread(target=self._run, name="pydbgauto-stop-breaker", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        if self._thread is not None:
            self._thread.join(BREAK_TIMEOUT + 5)

    def _run(self) -> None:
        while not self._done.is_set():
            if not self.stop.wait(0.1):  # a wait in Python: the target is not touched
                continue
            try:
                self.session.driver.interrupt_wait(BREAK_TIMEOUT)
            except PydbgautoError as e:  # the wait ended another way meanwhile (an event, the exit)
                log.debug("break-in to end the watch: %s", e)
            self._done.wait(RETRY)
