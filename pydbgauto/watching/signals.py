"""Signals during a watch: SIGINT, SIGTERM and SIGHUP end it like Ctrl-C, once; never cutting its detach."""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType
from typing import Any, Dict, Optional

from pydbgauto import interrupts
from pydbgauto.errors import Interrupted

log = logging.getLogger(__name__)

# The signals that end a watch like Ctrl-C (the command exits with 128 + the signal's number).
END_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class SignalGuard:
    """While a watch runs in the main thread, SIGINT/SIGTERM/SIGHUP raise :class:`Interrupted` where the
    main thread is (a wait, a command, a predicate), once: after the first one (``defer``) they are only
    recorded, so the detach that follows is never cut short."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled and threading.current_thread() is threading.main_thread()
        self.signum: Optional[int] = None
        self.deferred = False
        self._old: Dict[int, Any] = {}

    def __enter__(self) -> "SignalGuard":
        if not self.enabled:
            return self
        for signum in END_SIGNALS:
            old = signal.getsignal(signum)
            if old in (signal.SIG_DFL, signal.default_int_handler):  # never replace the caller's own
                self._old[signum] = old
                signal.signal(signum, self._handler)
        return self

    def _handler(self, signum: int, frame: Optional[FrameType]) -> None:
        if self.signum is None:
            self.signum = signum
        if not self.deferred:
            self.deferred = True
            interrupts.deliver(Interrupted(signum))  # now, or once the driver's critical statements ran
            return
        log.warning("%s received while the watch is ending: it ends as soon as it has detached", signum)

    def defer(self) -> None:
        """From now on signals are recorded, not raised (the watch is ending)."""
        self.deferred = True

    def __exit__(self, *exc: object) -> None:
        for signum, old in self._old.items():
            signal.signal(signum, old)
        self._old.clear()
