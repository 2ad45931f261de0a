"""A Python callable asked about a .NET 9+ throw by the agent at its stop (runs inside lldb's Python).

Why: on .NET 9+ the stub cannot ask (its funnel runs in preemptive mode: a GC may move the object while
it is copied), so every throw stops and, for a callable, went back to pydbgauto's Python as an event
and waited for the next request to resume: ~2.5 ms a throw beyond lldb's own stop (docs/linux.md,
issue 10). The agent can ask instead, with the stub's record (verdict_ask.encode) over the same socket
pydbgauto's Python listens on for .NET 8's stub (python_question.py; it admits lldb's pid too): a
"n" resumes at once and the throw is logged by Python as let go; anything else (a type Python has not
seen, a message longer than the record, no answer, an error) reports the stop as before, where the
watch decides it with the verdict already given (watching/asked.py: the callable runs once per throw).
"""

from __future__ import annotations

import socket
import struct
from typing import Any, Dict

from pydbgauto.drivers.lldb import protocol
from pydbgauto.drivers.lldb.verdict_ask import CHARS, Request, encode

ANSWER_WAIT = 30.0  # seconds for Python's verdict (its callable's time); then the stop is reported


def wanted(agent: Any) -> bool:
    """A callable is asked at stops: no filter here, fields read at stops, Python listening, no stub
    asking it (.NET 8's question), and .NET 9+'s mechanism."""
    return (
        agent.filter is None
        and agent.report_fields
        and agent.ask_python is not None
        and not agent.asking_python
        and agent.mechanism == "append-frame"
    )


def let_go(agent: Any, event: Dict[str, Any]) -> bool:
    """True when Python answered that this first-chance stop cannot match (resume it, report nothing)."""
    address = event.get("exception_address")
    if event.get("kind") != protocol.EVENT_FIRST_CHANCE or not address:
        return False
    mt = agent._method_table(address)
    chain = agent._chain_of(mt) if mt is not None else None
    exception = agent._exception_from_fields(address, chain) if chain is not None else None
    if exception is None or exception.hresult is None or len(exception.message or "") > CHARS:
        return False  # reported: _add_fields reads it with SOS, Python learns the type
    request = Request(
        event["thread_id"], address, mt, exception.hresult & 0xFFFFFFFF, exception.message, False
    )
    try:
        record = encode(request)
    except (UnicodeError, struct.error):  # a message Python could not be sent whole: it reads the stop
        return False
    agent.stats["asked_at_stops"] += 1
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC) as conn:
            conn.settimeout(ANSWER_WAIT)
            conn.connect(agent.ask_python)
            conn.send(record)
            verdict = conn.recv(1)
    except OSError:
        return False
    if verdict != b"n":
        return False
    agent.stats["let_go_at_stops"] += 1
    return True
