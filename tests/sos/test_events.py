"""parse_events: table of (text, expected events)."""

from __future__ import annotations

from typing import Any, Dict, List, Tuple

import pytest

from pydbgauto import DebugEvent, parse_events

CASES: Dict[str, Tuple[str, List[Dict[str, Any]]]] = {
    "first chance, notify only": (
        "(1a2c.3d4): CLR exception - code e0434352 (first chance)\n",
        [dict(pid=0x1A2C, tid=0x3D4, description="CLR exception", code=0xE0434352, chance=1)],
    ),
    "second chance with location after registers": (
        "(1a2c.3d4): Access violation - code c0000005 (!!! second chance !!!)\n"
        "rax=0000000000000000 rbx=0000000000000001\n"
        "ModLoad: 00007ffb`6c2a0000 00007ffb`6c2b8000   C:\\app\\x.dll\n"
        "ThrowingApp!Crash+0x12:\n"
        "00007ffb`6c2a1012 c70000000000    mov     dword ptr [rax],0\n",
        [dict(description="Access violation", code=0xC0000005, chance=2, location="ThrowingApp!Crash+0x12")],
    ),
    "CLR type and message after banner": (
        "(2d8c.1f34): CLR exception - code e0434352 (first chance)\r\n"
        "CLR exception type: System.IO.IOException\r\n"
        '    "Disk: full, "really""\r\n',
        [dict(clr_type="System.IO.IOException", clr_message='Disk: full, "really"', chance=1)],
    ),
    "lastevent not available, backticked code": (
        "Last event: 2d8c.1f34: CLR exception - code e0434352 (first/second chance not available)\n",
        [dict(chance=None, code=0xE0434352, pid=0x2D8C)],
    ),
    "lastevent breakpoint, no code": (
        "0:000> .lastevent\nLast event: 3e8.2b8: Hit breakpoint 0\n  debugger time: Mon\n",
        [dict(description="Hit breakpoint 0", code=None, chance=None)],
    ),
    "prompt ends what belongs to an event": (
        "(1a2c.3d4): CLR exception - code e0434352 (first chance)\n0:000:x86> !pe\nKERNELBASE!Raise+0x1:\n",
        [dict(location=None)],
    ),
    "multi-process prompt between two events": (
        "(1a2c.3d4): Break instruction exception - code 80000003 (first chance)\n1:019> g\n"
        "(bee.f00): C++ EH exception - code e06d7363 (first chance)\n",
        [dict(code=0x80000003), dict(pid=0xBEE, tid=0xF00, description="C++ EH exception")],
    ),
    "no banner": ("ModLoad: 00400000 00420000   app.exe\n0:000> \n", []),
}


@pytest.mark.parametrize("text,expected", list(CASES.values()), ids=list(CASES))
def test_events(text: str, expected: List[Dict[str, Any]]) -> None:
    events = parse_events(text)
    assert len(events) == len(expected)
    for event, fields in zip(events, expected):
        assert isinstance(event, DebugEvent)
        for key, value in fields.items():
            assert getattr(event, key) == value, key
