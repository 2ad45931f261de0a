"""The part of a capture that waits until the target runs again: sha256, verification, the record.

The target is held stopped only for what must see it stopped: the decision, the thread list and the dump
write (the dump is of the stopped state either way). The watch then resumes it (its next wait, or the
detach at the end) and calls :meth:`Pending.resumed`; the rest runs on a thread meanwhile: the
independent reader reopens the dump, its sha256 is taken and the capture record is written, with the
pause the target had (stop -> resume). Order and crash-safety stay: the decision is logged before the
dump, the dump is complete and named before its record.

A signal before that work is done cancels it: the dump is removed (all or nothing, as when a signal
came during the write) and the record says so.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable, Generic, Optional, TypeVar

log = logging.getLogger(__name__)

# After a signal: how long the watch waits for a check under way before it drops the dump itself.
CANCEL_GRACE = 10.0

T = TypeVar("T")


class Pending(Generic[T]):
    """One capture's after-resume work, on a thread of its own.

    Once :meth:`resumed` is called, ``check(pause)`` runs (``pause``: seconds from ``stopped_at`` to the
    resume, monotonic clock), then ``keep(result)``; after :meth:`cancel`, ``drop(pause)`` instead (the
    check is skipped if it has not begun). A cancelled check that overruns ``CANCEL_GRACE`` in
    :meth:`finish` is left behind and ``drop`` runs on the caller's thread: exactly one of ``keep`` and
    ``drop`` runs, once.
    """

    def __init__(
        self,
        stopped_at: float,
        check: Callable[[float], T],
        keep: Callable[[T], None],
        drop: Callable[[float], None],
    ) -> None:
        self.stopped_at = stopped_at
        self.pause: Optional[float] = None
        self._check, self._keep, self._drop = check, keep, drop
        self._go = threading.Event()
        self._cancelled = threading.Event()
        self._claim = threading.Lock()
        self._owner = ""  # who finishes the capture: "thread" or "caller"
        self._thread = threading.Thread(target=self._run, name="pydbgauto-after-resume", daemon=True)
        self._thread.start()

    def resumed(self) -> None:
        """The target runs again (or will in this thread's very next call): start the work."""
        if self.pause is None:
            self.pause = time.monotonic() - self.stopped_at
        self._go.set()

    def cancel(self) -> None:
        """A signal came: the dump is not to be kept unchecked."""
        self._cancelled.set()

    def finish(self) -> None:
        """Wait until the capture is finished (kept or dropped)."""
        self.resumed()
        self._thread.join(CANCEL_GRACE if self._cancelled.is_set() else None)
        if self._thread.is_alive() and self._take("caller"):
            log.warning("the dump's check did not end within %.0f s of the signal: dropping it", CANCEL_GRACE)
            self._drop(self.pause or 0.0)

    def _take(self, who: str) -> bool:
        with self._claim:
            if not self._owner:
                self._owner = who
            return self._owner == who

    def _run(self) -> None:
        self._go.wait()
        pause = self.pause or 0.0
        try:
            result = None if self._cancelled.is_set() else self._check(pause)
            if not self._take("thread"):
                return  # the caller gave up on it and dropped the dump
            if self._cancelled.is_set():
                self._drop(pause)
            else:
                self._keep(result)  # type: ignore[arg-type]
        except Exception:  # noqa: BLE001 - a bug here must be seen, not lose the watch's thread silently
            log.exception("the capture's after-resume work failed")
