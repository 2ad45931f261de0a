"""The agent's bounded reading of a stopped thread's managed stack (runs inside lldb's Python).

``clrstack`` cannot be cut short (SOS under lldb never sees an interrupt) and on a stack overflow's
~260,000 frames it runs for minutes. So the agent first counts the thread's frames with lldb's own
unwinder, up to ``limit``; only a thread with fewer frames gets ``clrstack``. A deeper one is read
by following the frame-pointer chain (``[rbp]`` = the caller's rbp, ``[rbp+8]`` = the return address:
JIT-ed code keeps rbp frames on x64 Linux) through one read of its stack mapping, and only the
frames shown are named: ``ip2md`` for managed code (once per distinct address), lldb's symbol for
native code. ``pydbgauto.sos.deepstack.build_stack`` turns the reply into a ManagedStack whose
``truncated`` says what was cut. Every step is bounded in frames and in seconds.
"""

from __future__ import annotations

import struct
import time
from typing import Any, Dict, List, Optional, Tuple

import lldb  # type: ignore[import-not-found]

from pydbgauto.drivers.lldb.frame_chain import read_chain
from pydbgauto.sos.clrstack import parse_clrstack
from pydbgauto.sos.deepstack import find_cycle, parse_ip2md_name

MAX_WALK = 4_000_000  # frames followed along the rbp chain at most
MAX_STACK_READ = 64 << 20  # bytes of stack mapping read at most


def read_stack(
    agent: Any,
    thread_id: Optional[int],
    limit: int = 1000,
    top: int = 24,
    bottom: int = 12,
    budget: float = 10.0,
) -> Dict[str, Any]:
    """``{"deep": False, "text": <clrstack>}`` for a thread of at most ``limit`` frames, else a bounded
    reading (``"deep": True``; keys documented in ``deepstack.build_stack``)."""
    started = time.monotonic()
    deadline = started + budget
    process = agent._require_process()
    thread = process.GetThreadByID(thread_id) if thread_id is not None else process.GetSelectedThread()
    if not thread.IsValid():
        thread = process.GetSelectedThread()
    process.SetSelectedThread(thread)
    chain = read_chain(agent, thread)
    if chain is not None:
        text = agent.stop_cache.by_chain(agent, chain, limit)
        if text is not None:
            return {"deep": False, "text": text, "probe_seconds": round(time.monotonic() - started, 4)}
    probed: List[Tuple[int, int, int]] = []  # (pc, sp, rbp) of lldb's frames
    notes: List[str] = []
    while len(probed) <= limit:
        frame = thread.GetFrameAtIndex(len(probed))
        if not frame.IsValid():
            break
        rbp = frame.FindRegister("rbp")
        probed.append((frame.GetPC(), frame.GetSP(), rbp.GetValueAsUnsigned() if rbp.IsValid() else 0))
        if time.monotonic() > deadline:
            notes.append(f"lldb's unwinder ran out of time after {len(probed)} frames")
            break
    probe_seconds = round(time.monotonic() - started, 4)
    if len(probed) <= limit and not notes:
        key = (thread.GetThreadID(), tuple((pc, sp) for pc, sp, _ in probed))
        text = agent.stop_cache.clrstack(agent, key, chain)
        try:
            parsed = parse_clrstack(text)
        except Exception:
            return {"deep": False, "text": text, "frames": len(probed), "probe_seconds": probe_seconds}
        if parsed.frames or parsed.error:
            return {"deep": False, "text": text, "frames": len(probed), "probe_seconds": probe_seconds}
        # SOS walked nothing on a thread that has frames (.NET 10 fail-fast at its abort): name lldb's.
        return _named(
            agent,
            thread,
            [p[:2] for p in probed],
            None,
            deadline,
            {
                "deep": True,
                "reason": "clrstack-empty",
                "clrstack": text,
                "depth": len(probed),
                "complete": True,
                "limit": limit,
                "notes": notes,
            },
            top=len(probed),
            bottom=0,
        )
    frames = [p[:2] for p in probed]
    complete = _follow_chain(agent, process, probed, frames, deadline, notes)
    ips = [ip for ip, _ in frames]
    cycle = find_cycle(ips)
    return _named(
        agent,
        thread,
        frames,
        cycle,
        deadline,
        {
            "deep": True,
            "reason": "deep",
            "depth": len(frames),
            "complete": complete,
            "limit": limit,
            "notes": notes,
            "seconds_walking": round(time.monotonic() - started, 3),
        },
        top=top,
        bottom=bottom,
    )


def _follow_chain(
    agent: Any,
    process: "lldb.SBProcess",
    probed: List[Tuple[int, int, int]],
    frames: List[Tuple[int, int]],
    deadline: float,
    notes: List[str],
) -> bool:
    """Extend ``frames`` along the rbp chain from lldb's last frame; True when it reached the base."""
    rbp = probed[-1][2]
    region = _mapping_of(process.GetProcessID(), rbp)
    if region is None:
        notes.append(f"the frame pointer {rbp:#x} of frame {len(probed) - 1} is in no stack mapping")
        return False
    low, high = rbp, min(region[1], rbp + MAX_STACK_READ)
    error = lldb.SBError()
    data = process.ReadMemory(low, high - low, error)
    if not error.Success() or data is None:
        notes.append(f"could not read the stack at {low:#x}: {error.GetCString()}")
        return False
    memory = bytes(data)
    steps = 0
    while True:
        offset = rbp - low
        if rbp % 8 or offset < 0 or offset + 16 > len(memory):
            return high == region[1]  # left the mapping: its base (or our read bound)
        saved, ret = struct.unpack_from("<QQ", memory, offset)
        if ret == 0:
            return True
        frames.append((ret, rbp + 16))
        steps += 1
        if saved <= rbp:
            return True  # the chain ends (the thread's first frame keeps no caller rbp)
        rbp = saved
        if steps >= MAX_WALK or (steps % 65536 == 0 and time.monotonic() > deadline):
            notes.append(f"the frame-pointer walk stopped after {len(frames):,} frames (time/count bound)")
            return False


def _mapping_of(pid: int, address: int) -> Optional[Tuple[int, int]]:
    try:
        with open(f"/proc/{pid}/maps") as f:
            for line in f:
                span = line.split(" ", 1)[0]
                start, end = (int(x, 16) for x in span.split("-"))
                if start <= address < end:
                    return start, end
    except OSError:
        return None
    return None


def _named(
    agent: Any,
    thread: "lldb.SBThread",
    frames: List[Tuple[int, int]],
    cycle: Optional[Tuple[int, int, int]],
    deadline: float,
    reply: Dict[str, Any],
    top: int,
    bottom: int,
) -> Dict[str, Any]:
    """Pick the frames to show (the top, the cycle once, the bottom) and name them, within the deadline."""
    n = len(frames)
    shown_top = list(range(min(top, cycle[0] if cycle else n, n)))
    cycle_idx = list(range(cycle[0], cycle[0] + cycle[1])) if cycle else []
    after = cycle[0] + cycle[1] * cycle[2] if cycle else len(shown_top)
    shown_bottom = list(range(after, min(n, after + bottom))) if bottom else []
    if shown_bottom and shown_bottom[-1] < n - 1:
        reply["notes"].append(
            f"{n - 1 - shown_bottom[-1]:,} frames below frame {shown_bottom[-1]:,} not shown"
        )
    names: Dict[int, Tuple[str, Optional[str], Optional[str]]] = {}
    target = agent.target
    skipped = 0

    def describe(index: int) -> Dict[str, Any]:
        nonlocal skipped
        ip, sp = frames[index]
        if ip not in names:
            if time.monotonic() > deadline:
                skipped += 1
                return {"index": index, "ip": ip, "sp": sp, "kind": "native", "name": None, "module": None}
            names[ip] = _name(agent, target, ip, return_address=index > 0)
        kind, name, module = names[ip]
        return {"index": index, "ip": ip, "sp": sp, "kind": kind, "name": name, "module": module}

    reply["thread_id"] = thread.GetThreadID()
    reply["top"] = [describe(i) for i in shown_top]
    reply["cycle"] = (
        {
            "start": cycle[0],
            "period": cycle[1],
            "repeats": cycle[2],
            "frames": [describe(i) for i in cycle_idx],
        }
        if cycle
        else None
    )
    reply["bottom"] = [describe(i) for i in shown_bottom]
    if skipped:
        reply["notes"].append(f"{skipped} frames left unnamed (out of time)")
    return reply


def _name(
    agent: Any, target: "lldb.SBTarget", ip: int, return_address: bool
) -> Tuple[str, Optional[str], Optional[str]]:
    """(kind, name, module) of the code at ``ip``: lldb's symbol in a module, else ip2md (managed)."""
    address = target.ResolveLoadAddress(ip - 1 if return_address else ip)
    module = address.GetModule()
    filename = module.GetFileSpec().GetFilename() if module.IsValid() else None
    if filename and not filename.lower().endswith((".dll", ".exe")):
        symbol = address.GetSymbol()
        name = symbol.GetName() if symbol.IsValid() else None
        return "native", name, filename
    managed = parse_ip2md_name(agent.hc(f"ip2md {ip:x}"))
    if managed:
        return "managed", managed, None
    return "native", None, None
