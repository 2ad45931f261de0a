"""A stack too deep for ``clrstack`` (a stack overflow: 260,000 frames), read in bounds. Pure.

SOS's ``clrstack`` has no frame limit and cannot be interrupted from lldb (its host's ``GetInterrupt``
always says no): on the 260,000 frames of a .NET stack overflow it runs for minutes. pydbgauto's
agent therefore probes a stopped thread's depth with lldb's unwinder first; past a limit it does not
run ``clrstack`` but walks the frame-pointer chain in one read of the stack's memory, names the
frames it shows with ``ip2md`` (one per distinct instruction pointer), and hands the result here:

- :func:`find_cycle` finds the block of frames that repeats (the recursion), so it is shown once;
- :func:`build_stack` turns the agent's reply into a :class:`ManagedStack` whose ``truncated`` says
  what was cut (how many frames there were, which are shown, the cycle and its repeat count).
"""

from __future__ import annotations

import re
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from pydbgauto.models import ManagedStack, StackFrame

_METHOD_NAME = re.compile(r"^\s*Method Name:\s+(.+?)\s*$", re.MULTILINE)


def parse_ip2md_name(text: str) -> Optional[str]:
    """``ip2md``: the method's name as SOS prints it (``Ns.Type.Method(Int32)``), None if not managed code."""
    m = _METHOD_NAME.search(text)
    return m.group(1) if m else None


def find_cycle(
    ips: Sequence[int], *, search: int = 256, max_period: int = 64, min_repeats: int = 8
) -> Optional[Tuple[int, int, int]]:
    """``(start, period, repeats)`` of the first block of ``period`` frames that repeats at least
    ``min_repeats`` times in a row, starting within the first ``search`` frames; None if none does."""
    n = len(ips)
    for start in range(min(search, n)):
        for period in range(1, max_period + 1):
            if start + period * min_repeats > n:
                break
            if all(ips[start + i] == ips[start + i + period] for i in range(period * (min_repeats - 1))):
                end = start + period * (min_repeats - 1)
                while end + period < n and ips[end] == ips[end + period]:
                    end += 1
                repeats = (end - start) // period + 1
                return start, period, repeats
    return None


def _frame(item: Mapping[str, Any]) -> StackFrame:
    name = item.get("name")
    managed = item.get("kind") == "managed"
    module = item.get("module")
    site = name or f"{module or '?'}!{int(item['ip']):#x}"
    if not managed and name and module:
        site = f"{module}!{name}"
    return StackFrame(
        sp=int(item.get("sp") or 0),
        ip=int(item["ip"]),
        call_site=site,
        kind="managed" if managed else "native",
        method=name,
        module=None if managed else module,
    )


def build_stack(reply: Mapping[str, Any]) -> ManagedStack:
    """The agent's bounded reading of one thread (``op_stop_stack``, ``"deep": true``) as a ManagedStack.

    ``reply``: ``thread_id``, ``depth`` (frames counted), ``complete`` (the walk reached the stack's
    base), ``limit`` (the frame count past which clrstack is not run), ``top``/``bottom`` (frames:
    ``sp``, ``ip``, ``kind``, ``name``, ``module``), ``cycle`` (``start``, ``period``, ``repeats``,
    ``frames``) or None, and ``notes`` (what else could not be read).
    """
    frames: List[StackFrame] = [_frame(f) for f in reply.get("top") or ()]
    if reply.get("reason") == "clrstack-empty":
        return ManagedStack(
            os_thread_id=reply.get("thread_id"),
            frames=tuple(frames),
            error="clrstack showed no frames for this thread (a runtime that is failing fast); these are "
            "lldb's frames, managed ones named with ip2md",
            depth=int(reply.get("depth") or 0),
            raw=str(reply.get("clrstack") or ""),
        )
    cycle: Optional[Dict[str, Any]] = reply.get("cycle")
    parts: List[str] = []
    depth = int(reply.get("depth") or 0)
    counted = f"{depth:,} frames" if reply.get("complete") else f"at least {depth:,} frames"
    parts.append(
        f"stack cut: {counted}, more than the {int(reply.get('limit') or 0):,} that clrstack is run for "
        "(it would take minutes)"
    )
    shown = [f"frames 0-{len(frames) - 1}" if frames else "no top frames"]
    if cycle:
        cycle_frames = [_frame(f) for f in cycle.get("frames") or ()]
        frames.extend(cycle_frames)
        names = " <- ".join(f.method or f.call_site for f in cycle_frames)
        shown.append(
            f"the cycle of {cycle['period']} frame(s) from frame {cycle['start']} once "
            f"({names}; repeated {cycle['repeats']:,} times)"
        )
    bottom = [_frame(f) for f in reply.get("bottom") or ()]
    if bottom:
        frames.extend(bottom)
        shown.append(f"the {len(bottom)} frames below the cycle" if cycle else f"{len(bottom)} more frames")
    parts.append("shown: " + ", ".join(shown))
    parts.extend(reply.get("notes") or ())
    return ManagedStack(
        os_thread_id=reply.get("thread_id"),
        frames=tuple(frames),
        truncated="; ".join(parts),
        depth=depth,
        raw="",
    )
