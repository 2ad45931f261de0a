"""pydbgauto.models: to_dict / from_dict round trips, JSON-readiness, __str__, validation; the report models
(pe, clrstack, clrthreads, events) and the records (stops, dumps, decisions, captures, snapshots)."""

from __future__ import annotations

import json
from typing import Any

import attr
import pytest

from pydbgauto.models import (
    CaptureRecord,
    CrashInfo,
    DebugEvent,
    DecisionRecord,
    DumpRecord,
    DumpResult,
    ExceptionFrame,
    ManagedException,
    ManagedStack,
    ManagedThread,
    SnapshotRecord,
    StackFrame,
    StopEvent,
    StopKind,
    ThreadExceptionRecord,
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

STOP = StopEvent(
    kind="second-chance",
    sequence=3,
    pid=42,
    thread_id=0x2F7C,
    exception_address=0x7F5EC808CE00,
    exception=EXC,
    stack=STACK,
    type_chain=("System.InvalidOperationException", "System.Exception"),
    description="SIGABRT",
    time=1.5,
    error="pe: partial",
    crash=CrashInfo(
        kind="unhandled-exception", message="m", exception_type="System.InvalidOperationException"
    ),
)
DUMP_RECORD = DumpRecord(
    path="/d/a.core",
    size=2_000_000,
    seconds=1.5,
    sha256="ab" * 32,
    verified=True,
    reader="dotnet-dump",
    verify_seconds=2.0,
    seen_exception_type="System.InvalidOperationException",
    seen_thread_id=0x2F7C,
    seen_stack=STACK,
    reader_warnings=("WARNING: x",),
)
DECISION = DecisionRecord(
    "dump", "matched", "#3 System.InvalidOperationException at 0x7f5ec808ce00: dump 1", 1
)
CAPTURE = CaptureRecord(
    event=STOP,
    decision=DECISION,
    exception=EXC,
    stack=STACK,
    threads=THREADS,
    inner_exceptions=(INNER,),
    dump=DUMP_RECORD,
    dump_error=None,
    predicate="exception_type('System.InvalidOperationException')",
    timings={"stop_to_dump_written": 1.5, "verify": 2.0},
    versions={"debugger": "lldb", "runtime": "8.0.31"},
    record_path="/d/a.core.json",
)
SNAPSHOT = SnapshotRecord(
    event=StopEvent(kind="break", pid=42, thread_id=7),
    threads=THREADS,
    stacks=(STACK,),
    exceptions=(
        ThreadExceptionRecord(thread_id=7, exception=EXC),
        ThreadExceptionRecord(thread_id=8, error="e"),
    ),
    dump=DUMP_RECORD,
    errors=("clrthreads: x",),
)
FILTERED = StopEvent(kind="first-chance", sequence=9, exception_address=0x40, filtered=True)
RECORDS = [STOP, FILTERED, DUMP_RECORD, DECISION, CAPTURE, SNAPSHOT, STOP.crash, SNAPSHOT.exceptions[1]]

ALL = [FRAME, EXC, STACK, THREADS, EVENT, DUMP, STACK.frames[0], THREADS.threads[0]] + RECORDS


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


# ---------------------------------------------------------------------------------------------
# the records


def test_round_trip_keeps_nested_models_and_raw() -> None:
    back = CaptureRecord.from_dict(json.loads(json.dumps(CAPTURE.to_dict())))
    assert isinstance(back.event.stack, ManagedStack) and isinstance(back.dump, DumpRecord)
    assert back.event.exception is not None and back.event.exception.raw == "the text"
    assert back.dump.seen_stack == STACK and back.inner_exceptions == (INNER,)
    assert back.event.type_chain == STOP.type_chain and back.timings == CAPTURE.timings


# The key order of the records as the capture records and the decision log have always written them:
# json.dumps keeps it, so a change here changes every record on disk.
@pytest.mark.parametrize(
    "obj, keys",
    [
        (
            STOP,
            "kind sequence pid thread_id exception_address exception stack type_chain exit_status "
            "description time error crash",
        ),
        (
            DUMP_RECORD,
            "path size seconds sha256 verified reader verify_seconds verify_error seen_exception_type "
            "seen_thread_id seen_stack reader_warnings",
        ),
        (DECISION, "action reason detail n"),
        (
            CAPTURE,
            "event decision exception stack threads inner_exceptions dump dump_error predicate timings "
            "versions record_path",
        ),
        (SNAPSHOT, "event threads stacks exceptions dump dump_error errors timings versions record_path"),
    ],
    ids=lambda o: type(o).__name__ if not isinstance(o, str) else "keys",
)
def test_record_keys_stay_as_written(obj: Any, keys: str) -> None:
    assert list(obj.to_dict()) == keys.split()


def test_stop_event_json_is_byte_for_byte_what_it_was() -> None:
    # as pydbgauto wrote it before StopEvent.kind became a StopKind
    assert json.dumps(StopEvent(kind="exit", exit_status=0).to_dict()) == (
        '{"kind": "exit", "sequence": 0, "pid": null, "thread_id": null, "exception_address": null, '
        '"exception": null, "stack": null, "type_chain": [], "exit_status": 0, "description": "", '
        '"time": 0.0, "error": null, "crash": null}'
    )
    assert json.dumps(DecisionRecord("skip", "limit", "full").to_dict()) == (
        '{"action": "skip", "reason": "limit", "detail": "full", "n": null}'
    )


def test_stop_kind_is_a_stop_kind_that_equals_its_text() -> None:
    assert STOP.kind is StopKind.SECOND_CHANCE and STOP.kind == "second-chance"
    assert type(STOP.to_dict()["kind"]) is str  # written as the plain value
    assert StopEvent.from_dict({"kind": "break"}).kind is StopKind.BREAK
    assert f"{StopKind.FIRST_CHANCE}" == str(StopKind.FIRST_CHANCE) == "first-chance"
    with pytest.raises(ValueError):
        StopEvent(kind="bogus")


def test_filtered_is_written_only_when_true() -> None:
    assert "filtered" not in STOP.to_dict()
    assert FILTERED.to_dict()["filtered"] is True
    assert StopEvent.from_dict(FILTERED.to_dict()).filtered is True


def test_decision_values_are_checked() -> None:
    with pytest.raises(ValueError):
        DecisionRecord("maybe", "matched")
    with pytest.raises(ValueError):
        DecisionRecord("skip", "bored")
    assert DECISION.dump and not DecisionRecord("skip", "no-match").dump


@pytest.mark.parametrize(
    "obj,needles",
    [
        (
            STOP,
            ["#3 second-chance System.InvalidOperationException at 0x7f5ec808ce00", "thread 0x2f7c", "A.B()"],
        ),
        (StopEvent(kind="exit", sequence=4, exit_status=3), ["#4 exit (status 3)"]),
        (SNAPSHOT.event, ["break-in", "current thread 0x7"]),
        (DUMP_RECORD, ["/d/a.core (2.0 MB, 1.50 s, verified)"]),
        (DumpRecord(path="/x", size=0, seconds=0, verify_error="unreadable"), ["NOT verified: unreadable"]),
        (DECISION, ["dump #1: #3 System.InvalidOperationException"]),
        (DecisionRecord("skip", "limit", "max_dumps=1"), ["skip (limit): max_dumps=1"]),
        (CAPTURE, ["capture 1: System.InvalidOperationException -> /d/a.core"]),
        (SNAPSHOT, ["snapshot of pid 42: 1 managed threads, 1 stacks, 2 current exceptions -> /d/a.core"]),
        (SNAPSHOT.exceptions[1], ["thread 0x8: unreadable (e)"]),
        (STOP.crash, ["unhandled-exception: m"]),
    ],
)
def test_record_str_is_readable(obj: Any, needles: Any) -> None:
    text = str(obj)
    for needle in needles:
        assert needle in text
