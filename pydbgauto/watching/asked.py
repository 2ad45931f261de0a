"""A callable predicate decided while the target runs: the debugger's in-target code asks about a throw
(``Driver.ask_about_throws``; on lldb, .NET 8: drivers/lldb/python_question.py) and the predicate is
evaluated here, on the asking thread's behalf, on the thin stop that the ask carries (watching/thin.py:
the type, message and HResult). A throw it cannot match goes on without a stop, and is logged as one the
debugger let go. Anything else stops the target, where the watch decides as before, but with the verdict
given here, so the predicate runs once per throw, as on a thin stop: a match; a predicate that touched
what the ask does not carry (the stack, the inner exceptions, ...: :data:`thin.NEEDS_MORE`, then
evaluated on the full stop); an error (evaluated again at the stop, which logs it).

The predicate runs on the answering thread while the watch's own thread may evaluate it at a stop, so
both hold :attr:`lock` (one evaluation at a time, as without the ask). A predicate that needs the stop for
most throws costs an ask and a stop each: past ``GIVE_UP_AFTER`` asks with more than half of them needing
more, the answer tells the driver to ask no more.
"""

from __future__ import annotations

import threading
import time
from typing import Dict, Optional, Tuple

from pydbgauto import predicates as preds
from pydbgauto.drivers.base import AskedThrow, AskedVerdict
from pydbgauto.models import ManagedException, StopEvent
from pydbgauto.stop_events import FIELDS_READ
from pydbgauto.watching import thin

GIVE_UP_AFTER = 32
LOCK_WAIT = 1.0  # the watch's thread holds the lock this long (a slow predicate at a stop): just stop


class AskedThrows:
    def __init__(self, predicate: preds.Predicate, lock: threading.Lock, pid: Optional[int]) -> None:
        self.predicate = predicate
        self.lock = lock
        self.pid = pid
        self.asked = self.needed_more = self.let_go = 0
        # thread id -> (exception object, verdict) of the last throw it was stopped for
        self._verdicts: Dict[int, Tuple[int, preds.Verdict]] = {}

    def decide(self, throw: AskedThrow) -> AskedVerdict:
        """On the answering thread: True, the throw cannot match; False, stop; None, stop and ask no more."""
        exception = ManagedException(
            address=throw.exception_address,
            type=throw.type_chain[0],
            message=throw.message,
            hresult=throw.hresult,
            truncated=FIELDS_READ,
        )
        event = StopEvent(
            kind="first-chance",
            pid=self.pid,
            thread_id=throw.thread_id,
            exception_address=throw.exception_address,
            exception=exception,
            description="asked by the target (no stop)",
            time=time.time(),
            type_chain=throw.type_chain,
        )
        facts, touches = thin.facts_of(event)
        if not self.lock.acquire(timeout=LOCK_WAIT):
            return False
        try:
            verdict = thin.evaluate(self.predicate, facts)
        finally:
            self.lock.release()
        self.asked += 1
        if thin.needed_more(verdict, touches):
            self.needed_more += 1
            verdict = thin.NEEDS_MORE
        elif not verdict.matched and not verdict.error:
            self.let_go += 1
            return True
        if verdict is thin.NEEDS_MORE or not verdict.error:  # an error: the stop evaluates it again, logs it
            self._verdicts[throw.thread_id] = (throw.exception_address, verdict)
        if self.asked >= GIVE_UP_AFTER and 2 * self.needed_more > self.asked:
            return None
        return False

    def verdict_for(self, event: StopEvent) -> Optional[preds.Verdict]:
        """The verdict already given for this stop's throw (thin.NEEDS_MORE: read the full stop), once."""
        if event.thread_id is None:
            return None
        given = self._verdicts.pop(event.thread_id, None)
        if given is None or given[0] != event.exception_address:
            return None
        return given[1]
