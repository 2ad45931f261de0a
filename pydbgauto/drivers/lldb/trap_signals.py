"""The stub's trap when another signal stops the thread first (pure: no lldb, no process).

The trap is ``tgkill(SIGURG)`` to the thread itself (filter_stub.py); lldb normally reports a SIGURG stop
with the pc at ``trap_pc``, just behind the ``syscall``. Seen under load (tests/integration/
test_quiet_waits.py, about one run in eight; traced stop by stop, docs/linux-fast-filter.md): an interrupt's
SIGSTOP reaches the thread as its ``tgkill`` returns, so the stop is SIGSTOP at ``trap_pc``. Most often
the SIGURG stop follows at ``trap_pc`` at the next resume; sometimes it comes only after the thread has
run on (it went through the funnel, the throw unreported), at another pc, where it used to be taken for
the target's own SIGURG. So: a thread at ``trap_pc`` has taken the trap, whatever signal stopped it. Its
throw is handled at that stop and its SIGURG is owed: when it comes (at the trap with the same stack
pointer and exception object, or anywhere else) it is dropped, not reported again and not passed on.

A key is (sp, exception object). A later throw of the same thread at the same depth has the same sp but
a new object, so its trap is never taken for the owed signal. A signal stop at ``trap_pc`` whose key is
that of the trap just handled (its SIGURG already reported, this signal coming before the next
instruction) is that same throw: nothing owed, nothing to handle.
"""

from __future__ import annotations

from typing import Dict, Optional, Tuple

Key = Tuple[int, Optional[int]]


class TrapSignals:
    def __init__(self) -> None:
        self.owed: Dict[int, Key] = {}  # thread -> the trap handled at another signal's stop
        self.last: Dict[int, Key] = {}  # thread -> the trap handled last
        self.early = 0  # traps handled at another signal's stop
        self.dropped = 0  # owed SIGURGs that came and were dropped

    def urg_at_trap(self, thread_id: int, key: Key) -> bool:
        """A SIGURG stop at ``trap_pc``: True when it is a trap to handle, False when it is the owed one."""
        if self.owed.pop(thread_id, None) == key:
            self.dropped += 1
            return False
        self.last[thread_id] = key  # a new trap (an owed SIGURG, if any, was merged into its tgkill's)
        return True

    def other_signal_at_trap(self, thread_id: int, key: Key) -> bool:
        """Another signal's stop at ``trap_pc``: True when it is a trap to handle now (its SIGURG owed)."""
        if self.last.get(thread_id) == key:
            return False  # the trap just handled: its SIGURG was reported already
        self.owed[thread_id] = self.last[thread_id] = key
        self.early += 1
        return True

    def urg_elsewhere(self, thread_id: int) -> bool:
        """A SIGURG stop away from the trap: True when it is a trap's owed SIGURG (drop it)."""
        if self.owed.pop(thread_id, None) is None:
            return False
        self.dropped += 1
        return True
