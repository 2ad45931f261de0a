"""One breakpoint hit that lldb reports twice: told apart here (runs inside lldb's Python).

Seen on .NET 8 (__cxa_rethrow's breakpoint) under load, traced stop by stop: a thread stops at a
breakpoint (the hit, reported); at the resume lldb steps it over the site, and an interrupt that comes
then (a wait's time limit, a cancel, the log's flush: the run is stopped by SIGSTOP) stops it before that
step ran: the thread is still on the site, pc, sp and fp as at the hit, stop reason "signal". At the next
resume lldb lets it run into the int3 again and reports a second hit, the same throw. So: a thread that was
at a breakpoint when a run began and is found, after it, not at a breakpoint but with the same registers
has not moved; its next hit with those registers (pc, sp, fp) again is that same hit, not reported again.

What it cannot tell: a thread that in one interrupted run stepped over, went all the way round (a throw,
its catch, the next throw at the same depth) and was stopped by the interrupt exactly between its call to
the site and the int3 there, with the same pc, sp and fp: its next hit would be taken for the old one. The
interrupt would have to land on that one instruction of the whole cycle; a wait has one at its end, a
flush at most one per ``flush_after`` (watch: 0.5 s) and only while resumed stops wait to be logged.
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

import lldb  # type: ignore[import-not-found]

Signature = Tuple[int, int, int]


def signature(thread: Any) -> Optional[Signature]:
    """pc, sp and fp: the registers lldb-server sends with every stop (any other costs a round trip to it,
    0.25-0.4 ms a stop measured here, once per throw on .NET 8)."""
    frame = thread.GetFrameAtIndex(0)
    if not frame.IsValid():
        return None
    return (frame.GetPC(), frame.GetSP(), frame.GetFP())


class Rehits:
    def __init__(self) -> None:
        self.at_breakpoint: Dict[int, Optional[Signature]] = {}  # at the start of the run
        self.unexecuted: Dict[int, Signature] = {}  # still on the site of a hit already reported
        self.count = 0

    def before_run(self, process: Any) -> None:
        """Just before ``Continue``: remember the threads that stand at a breakpoint."""
        self.at_breakpoint = {
            t.GetThreadID(): signature(t) for t in process if t.GetStopReason() == lldb.eStopReasonBreakpoint
        }

    def is_repeat(self, thread: Any, reason: int) -> bool:
        """At a stop, for each thread: True when this breakpoint stop is a hit already reported."""
        tid = thread.GetThreadID()
        if reason == lldb.eStopReasonBreakpoint:
            expected = self.unexecuted.pop(tid, None)
            if expected is not None and signature(thread) == expected:
                self.count += 1
                return True
            return False
        before = self.at_breakpoint.get(tid)
        if before is not None and signature(thread) == before:
            self.unexecuted[tid] = before  # lldb's step over the site was cut short
        elif self.unexecuted:
            self.unexecuted.pop(tid, None)
        return False
