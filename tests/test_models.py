"""pydbgauto.models: to_dict / from_dict round trips, JSON-readiness, __str__, validation."""

from __future__ import annotations

import json
from typing import Any

import attr
import pytest

from pydbgauto.models import (
    DebugEvent,
    DumpResult,
    ExceptionFrame,
    ManagedException,
    ManagedStack,
    ManagedThread,
    StackFrame,
    ThreadTable,
)

FRAME = ExceptionFrame(
    sp=0x10, ip=0x20, module="App.dll", method="A.B(Int32)", offset=0x4B, source_file="/s/a.cs", line=3
)
INNER = ManagedException(
    address=0x30, type="System.FormatException", message=None, hresult=0x80131537, raw="in"
)
EXC = ManagedException(
    address=0x7F5EC808CE00,
    type="System.InvalidOperationException",
    message="multi\nline: é",
    inner_type="System.FormatException",
    inner_address=0x30,
    frames=(FRAME,),
    stack_trace_string=None,
    hresult=0x80131509,
    has_nested=True,
    nested=(INNER,),
    raw="the text",
)
STACK = ManagedStack(
    os_thread_id=0x2F7C,
    debugger_thread_index=1,
    frames=(
        StackFrame(
            sp=1, ip=None, call_site="[InlinedCallFrame: 1]", kind="runtime", frame_type="InlinedCallFrame"
        ),
        StackFrame(sp=2, ip=3, call_site="A.B()", method="A.B()", source_file="C:\\a.cs", line=9),
    ),
    error=None,
    raw="raw",
)
THREADS = ThreadTable(
    thread_count=1,
    unstarted=0,
    background=0,
    pending=0,
    dead=0,
    hosted_runtime="no",
    threads=(
        ManagedThread(
            dbg_id=None,
            managed_id=1,
            os_id=0x4D20,
            thread_obj=0x20C,
            state=0x2A020,
            gc_mode="Preemptive",
            apartment="MTA",
            special="Finalizer",
            exception_type="X",
            exception_address=0x5,
            nested=True,
        ),
    ),
    raw="raw",
)
EVENT = DebugEvent(
    pid=1, tid=2, description="CLR exception", code=0xE0434352, chance=1, clr_type="X", clr_message="m"
)
DUMP = DumpResult(path="C:\\a.dmp", success=False, error="Dump creation failed")

ALL = [FRAME, EXC, STACK, THREADS, EVENT, DUMP, STACK.frames[0], THREADS.threads[0]]


@pytest.mark.parametrize("obj", ALL, ids=lambda o: type(o).__name__)
def test_round_trip_through_json(obj: Any) -> None:
    data = json.loads(json.dumps(obj.to_dict()))
    back = type(obj).from_dict(data)
    assert back == obj
    assert getattr(back, "raw", None) == getattr(obj, "raw", None)  # raw is not part of ==, check it too


def test_to_dict_shapes() -> None:
    d = EXC.to_dict()
    assert isinstance(d["frames"], list) and d["frames"][0]["method"] == "A.B(Int32)"
    assert d["nested"][0]["type"] == "System.FormatException"
    assert d["raw"] == "the text"
    assert "raw" not in EXC.to_dict(include_raw=False)
    assert "raw" not in EXC.to_dict(include_raw=False)["nested"][0]


def test_from_dict_refuses_unknown_keys() -> None:
    with pytest.raises(ValueError, match="bogus"):
        DumpResult.from_dict({"path": None, "success": True, "bogus": 1})


def test_frozen() -> None:
    with pytest.raises(attr.exceptions.FrozenInstanceError):
        EXC.message = "x"  # type: ignore[misc]


def test_frame_kind_is_validated() -> None:
    with pytest.raises(ValueError):
        StackFrame(sp=1, ip=1, call_site="x", kind="alien")


@pytest.mark.parametrize(
    "obj,needles",
    [
        (EXC, ["System.InvalidOperationException", "0x7f5ec808ce00", "App.dll!A.B(Int32)+0x4b", "80131509"]),
        (STACK, ["0x2f7c", "[InlinedCallFrame: 1]", "A.B() [C:\\a.cs @ 9]"]),
        (THREADS, ["XXXX", "Finalizer", "nested"]),
        (EVENT, ["CLR exception", "e0434352", "first chance"]),
        (DUMP, ["failed", "C:\\a.dmp"]),
        (DumpResult(path="/x.dmp", success=True), ["written", "/x.dmp"]),
    ],
)
def test_str_is_readable(obj: Any, needles: Any) -> None:
    text = str(obj)
    for needle in needles:
        assert needle in text
