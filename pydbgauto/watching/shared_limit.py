"""``max_dumps`` across the loops of several processes (``pydbgauto.watch_all``): one count under a lock."""

from __future__ import annotations

import threading
from typing import Optional

import attr

from pydbgauto.models import StopEvent
from pydbgauto.models import DecisionRecord
from pydbgauto.policy import DumpPolicy, PolicyState


class SharedLimit:
    """``max_dumps`` across several watches: a count of dump decisions under a lock, and the event that
    ends every watch once it is reached."""

    def __init__(self, limit: Optional[int], stop: threading.Event) -> None:
        self.limit = limit
        self.dumps = 0
        self.lock = threading.Lock()
        self.stop = stop

    @property
    def reached(self) -> bool:
        return self.limit is not None and self.dumps >= self.limit


class SharedLimitState(PolicyState):
    """One process's :class:`PolicyState` whose ``max_dumps`` check counts the dumps of every process.

    Every other check (duplicates, ``skip_first``, ``cooldown``, disk) stays this process's own."""

    def __init__(self, policy: DumpPolicy, shared: SharedLimit) -> None:
        super().__init__(policy)
        self.shared = shared

    def _decide(
        self, event: StopEvent, matched: bool, now: float, free_disk: Optional[int]
    ) -> DecisionRecord:
        with self.shared.lock:
            if not self.shared.reached:
                decision = super()._decide(event, matched, now, free_disk)
                if decision.dump:
                    self.shared.dumps += 1
                    if self.shared.reached:
                        self.shared.stop.set()
                return decision
            own = self.dumps
            self.dumps = self.policy.max_dumps or own  # the total is reached: the limit check answers
            try:
                decision = super()._decide(event, matched, now, free_disk)
            finally:
                self.dumps = own
            if decision.reason == "limit":
                decision = attr.evolve(
                    decision,
                    detail=f"#{event.sequence} {event.exception_type or 'unknown exception'}: "
                    f"max_dumps={self.shared.limit} dumps across all processes decided already "
                    f"({own} of them in this one)",
                )
            return decision
