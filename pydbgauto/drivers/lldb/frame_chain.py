"""A stopped thread's frame-pointer chain, read straight from its stack: the stop cache's cheap key
(runs inside lldb's Python).

Why: the stop cache proves a stop is like an earlier one by lldb's unwinding of the thread, and lldb
unwinds at ~0.15 ms a frame (``SBThread.GetFrameAtIndex``): 3-5 ms of every throw on a 20-frame stack,
three times the cost of the stop itself. The words that link the frames are in the stack: ``[rbp]`` is
the caller's rbp, ``[rbp+8]`` the return address (JIT-ed code and libcoreclr keep rbp frames on x64
Linux). Reading them takes a few page reads.

The chain (measured: docs/linux.md, "Start-up and stops", the frame-pointer chain): at a stop, the
pairs (``[rbp+8]``, ``rbp+16``) are lldb's (pc, sp) of every frame from the third on, down to the
first frame that keeps no frame pointer (libc's start-up frames). Frame 0 is the registers and frame 1
(a breakpoint at a function's first instruction) is ``[rsp]``, so the key holds pc, sp and ``[rsp]``
as well.

What a chain may stand for: a frame that keeps no frame pointer is not in the chain. So the chain is
used as a key only where it pins every managed frame ``clrstack`` printed (each (Child SP, IP) is one
of its pairs, or the frame ``[rsp]`` returns to): ``pins``. Then two stops with the same chain have
the same managed frames at the same places, which is what the text says.
"""

from __future__ import annotations

import re
import struct
from typing import Any, Dict, Optional, Tuple

PAGE = 4096
MAX_FRAMES = 512  # a longer chain is left to lldb's walk (and its deep-stack guard)
MAX_BYTES = 1 << 20  # of stack followed at most

# a managed frame's line: Child SP, IP, the method (an explicit Frame's line names "[Kind: address]")
_MANAGED_LINE = re.compile(r"^([0-9A-Fa-f]{16}) ([0-9A-Fa-f]{16}) +[^\s\[]", re.MULTILINE)

ChainKey = Tuple[int, ...]  # (tid, pc, sp, [sp], ret, frame sp, ret, frame sp, ...)


def read_chain(agent: Any, thread: Any) -> Optional[ChainKey]:
    """The chain key of a stopped thread, or None when its stack cannot be followed here."""
    frame = thread.GetFrameAtIndex(0)
    if not frame.IsValid():
        return None
    pc, sp = frame.GetPC(), frame.GetSP()
    rbp_register = frame.FindRegister("rbp")
    if not rbp_register.IsValid() or sp % 8:
        return None
    rbp = rbp_register.GetValueAsUnsigned()
    pages: Dict[int, bytes] = {}

    def word(address: int) -> int:
        page = address - address % PAGE
        if page not in pages:
            pages[page] = agent._read(page, PAGE)
        return int(struct.unpack_from("<Q", pages[page], address - page)[0])

    try:
        key = [thread.GetThreadID(), pc, sp, word(sp)]
    except Exception:  # noqa: BLE001 - a stack that cannot be read: lldb's walk decides
        return None
    while sp <= rbp < sp + MAX_BYTES and rbp % 8 == 0:
        try:
            saved, ret = word(rbp), word(rbp + 8)
        except Exception:  # noqa: BLE001 - rbp is no frame pointer here: the chain ends
            break
        if ret == 0:
            break
        key += (ret, rbp + 16)
        if len(key) > 4 + 2 * MAX_FRAMES:
            return None
        if saved <= rbp:
            break  # the chain ends (a frame that keeps no caller rbp)
        rbp = saved
    return tuple(key)


def pins(chain: ChainKey, clrstack: str) -> bool:
    """Whether every managed frame of ``clrstack`` (its Child SP and IP) is a pair of ``chain``."""
    pc, stop_sp = chain[1:3]
    pairs = set(zip(chain[4::2], chain[5::2])) | {(pc, stop_sp)}
    managed = [(int(ip, 16), int(child_sp, 16)) for child_sp, ip in _MANAGED_LINE.findall(clrstack)]
    # The frame whose SP is the stop's sp + 8 is pinned by [sp], its return address (its frame ends
    # where the stopped one's 8 bytes do). SOS may print another IP in it: .NET 10's DispatchEx, in a
    # p/invoke, is shown at the call site its InlinedCallFrame names.
    return bool(managed) and all(frame in pairs or frame[1] == stop_sp + 8 for frame in managed)
