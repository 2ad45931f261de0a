"""The agent's wire and op dispatch without lldb: what the agent writes is what the driver reads.

The agent module itself imports lldb's module; its wire (protocol.py), its dispatch (dispatch.py) and
its filter's spec reading (filter_ops.py) do not, and are tested here on their own. The handler below
is a test double standing in for the agent object (whose ops need a live lldb); the real agent on the
real wire: tests/integration/test_lldb_session.py.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import types
from typing import Any, Dict, List, Optional

import pytest

from pydbgauto.drivers.base import StopKind
from pydbgauto.drivers.framing import ReplyBuffer, new_token
from pydbgauto.drivers.lldb import protocol
from pydbgauto.drivers.lldb.dispatch import NO_TOKEN, AgentError, dispatch
from pydbgauto.drivers.lldb.filter_ops import TYPE_ONLY_OPS, spec_ops
from pydbgauto.errors import (
    DebuggerError,
    DebuggerNotFoundError,
    NotDotnetError,
    TargetError,
    TargetExitedError,
)

FOLDER = os.path.dirname(protocol.__file__)
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(FOLDER)))


class AgentDouble:
    """Test double for the agent object: a few op_ methods with the agent's calling convention."""

    def __init__(self) -> None:
        self.calls: List[Dict[str, Any]] = []

    def op_threads(self) -> Dict[str, Any]:
        return {"threads": [11, 12], "selected": 11}

    def op_resume(self, timeout: Optional[float]) -> Dict[str, Any]:
        self.calls.append({"timeout": timeout})
        return {"kind": protocol.EVENT_TIMEOUT, protocol.FILTERED: []}

    def op_attach(self, pid: int) -> Dict[str, Any]:
        raise AgentError(protocol.ERR_NOT_DOTNET, f"pid {pid} has no libcoreclr.so loaded")

    def op_dump(self, path: str) -> Dict[str, Any]:
        raise RuntimeError("disk on fire")


def _round_trip(handler: Any, op: str, **args: Any) -> Dict[str, Any]:
    """Send ``op`` as the driver does, dispatch it as the agent does, read the reply as the driver does."""
    token = new_token()
    line = protocol.encode_request(token, op, args)
    command, _, text = line.partition(" ")
    assert command == protocol.COMMAND
    buffer = ReplyBuffer()
    buffer.feed("SOS noise the agent never writes here\n" + dispatch(handler, text))
    reply = buffer.take(token)
    assert reply is not None, "the reply was not framed with the request's token"
    data = protocol.decode_reply(reply.body)
    assert reply.status == (protocol.STATUS_OK if data[protocol.OK] else protocol.STATUS_ERROR)
    return data


def test_a_request_reaches_its_op_and_the_result_comes_back_by_token() -> None:
    handler = AgentDouble()
    assert _round_trip(handler, protocol.OP_THREADS) == {
        "ok": True,
        "result": {"threads": [11, 12], "selected": 11},
    }
    reply = _round_trip(handler, protocol.OP_RESUME, timeout=2.5)
    assert reply["result"]["kind"] == protocol.EVENT_TIMEOUT and handler.calls == [{"timeout": 2.5}]


def test_an_agent_error_carries_its_kind_and_the_driver_maps_it() -> None:
    from pydbgauto.drivers.lldb.driver import LldbDriver

    data = _round_trip(AgentDouble(), protocol.OP_ATTACH, pid=42)
    assert data == {
        "ok": False,
        "kind": protocol.ERR_NOT_DOTNET,
        "error": "pid 42 has no libcoreclr.so loaded",
    }
    # _error only reads and clears _attached: a namespace stands in for the driver's state.
    state = types.SimpleNamespace(_attached=True)
    assert isinstance(LldbDriver._error(state, "attach", data), NotDotnetError)  # type: ignore[arg-type]
    mapped = {
        protocol.ERR_EXITED: TargetExitedError,
        protocol.ERR_NO_PROCESS: TargetExitedError,
        protocol.ERR_ATTACH: TargetError,
        protocol.ERR_LAUNCH: TargetError,
        protocol.ERR_SOS: DebuggerNotFoundError,
        protocol.ERR_MEMORY: DebuggerError,
    }
    for kind, error in mapped.items():
        assert type(LldbDriver._error(state, "x", protocol.error_body(kind, "m"))) is error  # type: ignore
    assert state._attached is False  # an exited target is no longer attached


def test_a_bug_in_an_op_is_an_internal_error_with_its_traceback_not_a_dead_lldb() -> None:
    data = _round_trip(AgentDouble(), protocol.OP_DUMP, path="/tmp/x")
    assert data["kind"] == protocol.ERR_INTERNAL and data["error"] == "RuntimeError: disk on fire"
    assert "op_dump" in data[protocol.TRACEBACK]


def test_an_unknown_op_and_bad_arguments_are_errors_for_the_waiting_token() -> None:
    assert _round_trip(AgentDouble(), "no_such_op")["kind"] == protocol.ERR_INTERNAL
    assert "unexpected keyword" in _round_trip(AgentDouble(), protocol.OP_THREADS, extra=1)["error"]
    token = new_token()
    text = (
        bytes.fromhex(protocol.encode_request(token, "x", {}).split()[1]).decode().replace('"op": "x", ', "")
    )
    buffer = ReplyBuffer()
    buffer.feed(dispatch(AgentDouble(), text.encode().hex()))
    reply = buffer.take(token)  # no op: still answered under the request's token
    assert reply is not None and reply.status == protocol.STATUS_ERROR


def test_an_unreadable_line_is_answered_under_the_null_token() -> None:
    buffer = ReplyBuffer()
    buffer.feed(dispatch(AgentDouble(), "not hex at all"))
    reply = buffer.take(NO_TOKEN)
    assert reply is not None and protocol.decode_reply(reply.body)["kind"] == protocol.ERR_INTERNAL


def test_a_reply_that_is_not_an_object_is_refused() -> None:
    with pytest.raises(ValueError):
        protocol.decode_reply("[1, 2]")


def _functions(path: str) -> ast.Module:
    with open(path, encoding="utf-8") as f:
        return ast.parse(f.read())


def test_the_agent_has_exactly_the_protocol_ops() -> None:
    tree = _functions(os.path.join(FOLDER, "agent.py"))
    agent = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Agent")
    ops = {n.name[3:] for n in agent.body if isinstance(n, ast.FunctionDef) and n.name.startswith("op_")}
    assert ops == protocol.OPS


def test_every_error_kind_either_side_names_comes_from_the_protocol() -> None:
    """No string literal as an AgentError kind in the agent's modules (a typo would reach the driver as
    a plain DebuggerError), and every kind is one protocol constant."""
    kinds = {getattr(protocol, n) for n in dir(protocol) if n.startswith("ERR_")}
    for name in ("agent.py", "legacy_faults.py", "stack_reader.py"):
        for node in ast.walk(_functions(os.path.join(FOLDER, name))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "AgentError":
                first = node.args[0]
                assert isinstance(first, ast.Attribute) and first.attr.startswith("ERR_"), ast.unparse(node)
                assert getattr(protocol, first.attr) in kinds


def test_the_event_kinds_are_the_drivers_stop_kinds() -> None:
    assert StopKind(protocol.EVENT_FIRST_CHANCE) is StopKind.FIRST_CHANCE
    assert StopKind(protocol.EVENT_SECOND_CHANCE) is StopKind.SECOND_CHANCE
    assert StopKind(protocol.EVENT_EXIT) is StopKind.EXIT


def test_the_filter_reads_every_op_of_a_spec() -> None:
    spec = {
        "op": "all",
        "args": [{"op": "exception_type", "name": "X"}, {"op": "not", "arg": {"op": "inner"}}],
    }
    assert spec_ops(spec) == {"all", "exception_type", "not", "inner"}
    assert not spec_ops(spec) <= TYPE_ONLY_OPS
    assert spec_ops([{"op": "first_chance"}, {"op": "any", "args": []}]) <= TYPE_ONLY_OPS
    assert spec_ops(None) == set()


def test_the_agent_side_modules_import_without_lldb_and_without_the_driver() -> None:
    """Inside lldb these load before any op runs: no lldb module needed, no driver machinery loaded."""
    code = (
        "import sys; sys.modules['lldb'] = None\n"  # importing lldb now raises ImportError
        "from pydbgauto.drivers.lldb import dispatch, filter_ops, protocol, guardian\n"
        "print('pydbgauto.drivers.lldb.driver' in sys.modules)\n"
    )
    env = dict(os.environ, PYTHONPATH=ROOT)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"  # the package's __init__ loads LldbDriver only when asked
