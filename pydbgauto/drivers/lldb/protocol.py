"""The wire between the lldb driver and its agent inside lldb: the one place both sides read it from.

A request is one line on lldb's stdin, ``pda <hex of a JSON object>``: the object holds ``token`` and
``op`` (an ``op_<name>`` method of the agent) and that op's arguments. The reply goes to the agent's
private reply pipe, framed by ``pydbgauto.drivers.framing``'s markers with the request's token, the end
marker's status ``ok`` or ``error``; its body is one JSON object: ``{"ok": true, "result": ...}`` or
``{"ok": false, "kind": <an error kind>, "error": <message>[, "traceback": ...]}``.

Both sides import this module: the agent inside lldb's embedded Python, so it imports only the standard
library and ``framing``.
"""

from __future__ import annotations

import json
from typing import Any, Dict, Mapping, Tuple

from pydbgauto.drivers.framing import end_marker, start_marker

COMMAND = "pda"  # the lldb command the agent adds; a request line is "pda <hex JSON>"

# Operations (the agent's op_<name> methods).
OP_INIT = "init"
OP_LAUNCH = "launch"
OP_ATTACH = "attach"
OP_ARM = "arm"
OP_DISARM = "disarm"
OP_SET_FILTER = "set_filter"
OP_RESUME = "resume"
OP_EXEC = "exec"
OP_STOP_STACK = "stop_stack"
OP_THREADS = "threads"
OP_DUMP = "dump"
OP_STATS = "stats"
OP_DETACH = "detach"
OP_KILL = "kill"
OP_ASK = "ask"  # the stub asks pydbgauto's Python (a callable predicate), at this socket name
OPS = frozenset(
    {
        OP_INIT,
        OP_LAUNCH,
        OP_ATTACH,
        OP_ARM,
        OP_DISARM,
        OP_SET_FILTER,
        OP_RESUME,
        OP_EXEC,
        OP_STOP_STACK,
        OP_THREADS,
        OP_DUMP,
        OP_STATS,
        OP_DETACH,
        OP_KILL,
        OP_ASK,
    }
)

# Keys of a request and of a reply body.
TOKEN = "token"
OP = "op"
OK = "ok"
RESULT = "result"
KIND = "kind"
ERROR = "error"
TRACEBACK = "traceback"
# End-marker statuses.
STATUS_OK = "ok"
STATUS_ERROR = "error"

# Event kinds in a resume reply's "kind" (the first three are pydbgauto.drivers.base.StopKind values).
EVENT_FIRST_CHANCE = "first-chance"
EVENT_SECOND_CHANCE = "second-chance"
EVENT_EXIT = "exit"
EVENT_TIMEOUT = "timeout"  # the wait's time limit passed: the target is stopped
EVENT_CANCELLED = "cancelled"  # the driver's cancel byte interrupted the wait
# Keys of an event.
FILTERED = "filtered"  # the first-chance stops the in-agent filter resumed since the last reply

# Error kinds (the driver maps them to pydbgauto.errors classes).
ERR_INTERNAL = "internal"  # a bug in the agent: the reply carries the traceback
ERR_NO_PROCESS = "no-process"
ERR_EXITED = "exited"
ERR_NOT_DOTNET = "not-dotnet"
ERR_LAUNCH = "launch"
ERR_ATTACH = "attach"
ERR_SOS = "sos"
ERR_ARM = "arm"
ERR_MEMORY = "memory"
ERR_STATE = "state"
ERR_CONTINUE = "continue"
ERR_THREAD = "thread"
ERR_DETACH = "detach"


def encode_request(token: str, op: str, args: Mapping[str, Any]) -> str:
    """The line to send on lldb's stdin."""
    payload = json.dumps(dict(args, **{TOKEN: token, OP: op})).encode("utf-8").hex()
    return f"{COMMAND} {payload}"


def decode_request(text: str) -> Tuple[str, str, Dict[str, Any]]:
    """(token, op, arguments) of what lldb passed to the ``pda`` command (the hex, without ``pda``).

    Raises ValueError or KeyError for text that is not a request; a request without an op gets op ""
    (no such op: the error reply still reaches the waiting driver by its token)."""
    request = json.loads(bytes.fromhex(text.strip()).decode("utf-8"))
    token = request.pop(TOKEN)
    op = request.pop(OP, "")
    return token, op, request


def result_body(result: Any) -> Dict[str, Any]:
    return {OK: True, RESULT: result}


def error_body(kind: str, message: str, traceback: str = "") -> Dict[str, Any]:
    body: Dict[str, Any] = {OK: False, KIND: kind, ERROR: message}
    if traceback:
        body[TRACEBACK] = traceback
    return body


def frame_reply(token: str, body: Mapping[str, Any]) -> str:
    """The framed text the agent writes to its reply pipe."""
    status = STATUS_OK if body.get(OK) else STATUS_ERROR
    return f"{start_marker(token)}\n{json.dumps(body)}\n{end_marker(token, status)}\n"


def decode_reply(body: str) -> Dict[str, Any]:
    """The reply object of a framed reply's body."""
    data = json.loads(body)
    if not isinstance(data, dict):
        raise ValueError(f"an agent reply is a JSON object, not {type(data).__name__}")
    return data
