"""A predicate evaluated under the watch's deadline, on a worker thread that is kept for the next stop.

Why a worker: a predicate that never returns must not hang the watch with its target stopped, and
Python cannot kill a thread; so the predicate runs on a daemon thread and the watch waits for it only
until the deadline. Why kept: a thread started for each stop cost ~0.1 ms of a ~2.5-ms round trip to
Python on the .NET 8 storm (its start waits for the new thread to run). A worker goes back to the pool
when its predicate returns, even one that overran: its late verdict is dropped.
"""

from __future__ import annotations

import queue
import threading
import time
from typing import Any, Callable, List, Optional, Tuple

from pydbgauto import predicates as preds

SLICE = 0.2  # the waiting thread wakes this often, so a signal still ends the watch
# A predicate may always take this long, even started at or past the deadline: a stop that came just
# before the watch's time was up is decided, not blamed on a predicate that overran (a survey's, a
# callable of a few ms).
GRACE = 0.25

_Job = Tuple[Callable[[], Any], List[Any], threading.Event]


class _Worker:
    def __init__(self, pool: "_Pool") -> None:
        self.jobs: "queue.SimpleQueue[_Job]" = queue.SimpleQueue()
        self._pool = pool
        threading.Thread(target=self._run, name="pydbgauto-predicate", daemon=True).start()

    def _run(self) -> None:
        while True:
            call, box, done = self.jobs.get()
            try:
                box.append(call())
            except BaseException:  # noqa: BLE001 - no answer: the waiter says so
                pass
            finally:
                self._pool.give_back(self)  # first: the next stop's predicate takes this worker again
                done.set()


class _Pool:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle: List[_Worker] = []

    def take(self) -> _Worker:
        with self._lock:
            if self._idle:
                return self._idle.pop()
        return _Worker(self)

    def give_back(self, worker: _Worker) -> None:
        with self._lock:
            self._idle.append(worker)


_POOL = _Pool()


def evaluate_within(
    predicate: preds.Predicate,
    facts: preds.Facts,
    deadline: Optional[float],
    evaluate: Callable[[preds.Predicate, preds.Facts], preds.Verdict] = preds.evaluate,
) -> Optional[preds.Verdict]:
    """Evaluate on a worker thread until ``deadline`` (monotonic; None: no limit), or for ``GRACE``
    seconds when that is later; None when it overran.

    The calling thread waits in short slices, so a signal still ends the watch. A predicate that never
    returns keeps its worker (the pool makes another); one that returns late gives its worker back.
    """
    box: List[preds.Verdict] = []
    done = threading.Event()
    if deadline is not None:
        deadline = max(deadline, time.monotonic() + GRACE)
    _POOL.take().jobs.put((lambda: evaluate(predicate, facts), box, done))
    while not done.is_set():
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            return None
        done.wait(SLICE if left is None else min(SLICE, left))
    return box[0] if box else preds.Verdict(False, "the predicate ended without an answer")
