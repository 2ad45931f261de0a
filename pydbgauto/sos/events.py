"""cdb event banners in a stretch of debugger output -> list of :class:`DebugEvent`. Pure.

Forms (research/cdb-protocol.md 5)::

    (1a2c.3d4): CLR exception - code e0434352 (first chance)
    (1a2c.3d4): Access violation - code c0000005 (!!! second chance !!!)
    Last event: 1a2c.3d4: CLR exception - code e0434352 (first/second chance not available)
    Last event: 1a2c.3d4: Hit breakpoint 0

Newer WinDbg follows a CLR banner with ``CLR exception type: <Type>`` and the message
indented in double quotes. A stop that breaks prints registers, then ``module!symbol+off:``
(the location) and a disassembly line. ModLoad lines, prompts (``0:000>``, ``0:000:x86>``,
``1:019>``) and anything else in between are passed over.
"""

from __future__ import annotations

import re
from typing import Dict, List, Optional

import attr

from pydbgauto.models import DebugEvent
from pydbgauto.sos.common import normalise

_CHANCE = r"(?:\s+\((?P<chance>[^)]*chance[^)]*)\))?"
_BANNER = re.compile(
    r"^\((?P<pid>[0-9A-Fa-f]+)\.(?P<tid>[0-9A-Fa-f]+)\):\s+(?P<desc>.*?)"
    r"(?:\s+-\s+code\s+(?P<code>[0-9A-Fa-f`]+))?" + _CHANCE + r"\s*$"
)
_LAST_EVENT = re.compile(
    r"^Last event:\s+(?P<pid>[0-9A-Fa-f]+)\.(?P<tid>[0-9A-Fa-f]+):\s+(?P<desc>.*?)"
    r"(?:\s+-\s+code\s+(?P<code>[0-9A-Fa-f`]+))?" + _CHANCE + r"\s*$"
)
_CLR_TYPE = re.compile(r"^CLR exception type:\s*(.+?)\s*$")
_CLR_MESSAGE = re.compile(r'^\s+"(.*)"\s*$')
# "KERNELBASE!RaiseException+0x69:" alone on a line, before the disassembly line.
_LOCATION = re.compile(r"^(?P<loc>[\w.$@-]+!\S+?):\s*$")
_PROMPT = re.compile(r"^\s*(?:\d+:)?\d+:\d+(?::\w+)?>")


def parse_events(text: str) -> List[DebugEvent]:
    """All event banners in ``text``, in order; an empty list when there are none."""
    events: List[DebugEvent] = []
    extra: Dict[str, str] = {}
    open_ = False  # are we still in the lines that follow the last banner?
    for line in normalise(text).split("\n"):
        m = _BANNER.match(line) or _LAST_EVENT.match(line)
        if m:
            _flush(events, extra)
            events.append(_event(m))
            open_ = True
            continue
        if not open_:
            continue
        if _PROMPT.match(line):
            _flush(events, extra)  # what follows a prompt is a command's reply, not this event
            open_ = False
            continue
        if "clr_type" not in extra:
            t = _CLR_TYPE.match(line)
            if t:
                extra["clr_type"] = t.group(1)
                continue
        elif "clr_message" not in extra:
            msg = _CLR_MESSAGE.match(line)
            if msg:
                extra["clr_message"] = msg.group(1)
                continue
        if "location" not in extra:
            loc = _LOCATION.match(line)
            if loc:
                extra["location"] = loc.group("loc")
    _flush(events, extra)
    return events


def _event(m: "re.Match[str]") -> DebugEvent:
    chance_text = (m.group("chance") or "").lower()
    chance: Optional[int] = None
    if "not available" not in chance_text:
        if "first" in chance_text:
            chance = 1
        elif "second" in chance_text:
            chance = 2
    code = m.group("code")
    return DebugEvent(
        pid=int(m.group("pid"), 16),
        tid=int(m.group("tid"), 16),
        description=m.group("desc").strip(),
        code=int(code.replace("`", ""), 16) if code else None,
        chance=chance,
    )


def _flush(events: List[DebugEvent], extra: Dict[str, str]) -> None:
    """Attach the lines seen after the last banner to it; a prompt ends what belongs to it."""
    if events and extra:
        events[-1] = attr.evolve(events[-1], **extra)
    extra.clear()
