"""A fork, vfork or vfork-done of the target that lldb let pass unhandled, handled as lldb would have.

lldb-server stops the target at each fork and vfork (lldb always asks it to) and lldb, once told,
detaches the child and resumes (ProcessGDBRemote::DidFork / DidVFork / DidVForkDone). But when lldb's
interrupt (our time limit, a cancel, a break-in) meets such a stop, lldb marks the stop interrupted and
skips that work (lldb 19, Process.cpp, ProcessEventData::DoOnRemoval: "if (m_interrupted) return;"):

- vfork: the child stays traced and stopped in lldb-server. The parent, resumed, waits in the kernel for
  that child to exec, cannot be stopped, and lldb hangs in the next interrupt (seen: a service starting
  processes, ``Process.Start``, hung at its first watch in two of three runs).
- vfork done: the software breakpoints DidVFork took out of the memory the child shared are not put back:
  every exception after it would be missed.
- fork: the child stays stopped in lldb-server.

So at an interrupted stop the agent does what lldb would have, with the packets it sends (gdb-remote
``z0``/``Z0`` for each enabled breakpoint site, ``D;<pid>`` for the child). One difference: a fork's
child is let go with lldb's int3s still in its copy of memory (lldb takes them out there first, which
needs the server switched to the child behind lldb's back); a child that runs into one dies of SIGTRAP.
Proven on FilterApp's ``spawn`` (docs/linux.md, "A target that starts processes").
"""

from __future__ import annotations

from typing import Callable, Iterable, List, Sequence, Tuple

FORK, VFORK, VFORK_DONE = 12, 13, 14  # lldb.eStopReasonFork, eStopReasonVFork, eStopReasonVForkDone
REASONS = (FORK, VFORK, VFORK_DONE)
INTERNAL_IDS = 256  # lldb's own breakpoints (the dynamic loader's) have ids -1, -2, ...


def plan(stops: Iterable[Tuple[int, int]], sites: Sequence[int], traced: Callable[[int], bool]) -> List[str]:
    """The packets that do lldb's skipped work. ``stops``: (stop reason, its first datum: the child's pid
    for a fork or vfork) of each thread; ``sites``: the addresses of the enabled breakpoint sites;
    ``traced``: whether a child is still held by lldb-server (one lldb did detach is left alone)."""
    packets: List[str] = []
    for reason, child in stops:
        if reason == VFORK and traced(child):
            packets += [f"z0,{address:x},1" for address in sites]  # the child runs in the parent's memory
            packets.append(f"D;{child:x}")
        elif reason == FORK and traced(child):
            packets.append(f"D;{child:x}")
        elif reason == VFORK_DONE:
            packets += [f"Z0,{address:x},1" for address in sites]
    return packets


def enabled_sites(target: object) -> List[int]:
    """Where lldb has a software breakpoint in the target: every enabled, resolved location of its
    breakpoints and of its own internal ones, each address once (lldb keeps one site per address)."""
    found = set()
    breakpoints = list(target.breakpoint_iter())  # type: ignore[attr-defined]
    misses = 0
    for bp_id in range(-1, -INTERNAL_IDS, -1):
        bp = target.FindBreakpointByID(bp_id)  # type: ignore[attr-defined]
        if not bp.IsValid():
            misses += 1
            if misses > 32:
                break
            continue
        misses = 0
        breakpoints.append(bp)
    for bp in breakpoints:
        if not bp.IsEnabled():
            continue
        for i in range(bp.GetNumLocations()):
            location = bp.GetLocationAtIndex(i)
            if location.IsEnabled() and location.IsResolved():
                found.add(location.GetLoadAddress())
    return sorted(a for a in found if a)
