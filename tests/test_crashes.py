"""Pure parts of the crash handling: the runtime's crash reports, deep-stack cycles and cut stacks, dumpobj
fields (issue 15). The real runs are tests/integration/test_crashes.py."""

from __future__ import annotations

from pydbgauto import bounded, crashes
from pydbgauto.models import CrashInfo, ManagedException, ManagedStack, StopEvent
from pydbgauto.sos.deepstack import build_stack, find_cycle, parse_ip2md_name

NET10_OVERFLOW = """Stack overflow.
Repeated 130946 times:
--------------------------------
   at CrashApp.StackOverflowScenario.Ping(Int32)
   at CrashApp.StackOverflowScenario.Pong(Int32)
--------------------------------
   at CrashApp.StackOverflowScenario.Start()
"""
NET10_FAILFAST = """some earlier output
Process terminated.
boom-msg
   at System.Environment.FailFast(System.String)
"""
NET8_FAILFAST = "Process terminated. boom 8 msg\n   at System.Environment.FailFast(System.String)\n"
UNHANDLED = (
    "Unhandled exception. System.InvalidOperationException: the background worker lost its queue\n"
    "   at CrashApp.Worker.Run()\n"
)


def test_reports_of_each_kind() -> None:
    overflow = crashes.parse_report(NET10_OVERFLOW)
    assert overflow is not None and overflow.kind == "stack-overflow" and overflow.message is None
    assert overflow.report is not None and "Repeated 130946 times" in overflow.report
    assert crashes.parse_report(NET10_FAILFAST) == CrashInfo(
        kind="fail-fast", message="boom-msg", report=NET10_FAILFAST[len("some earlier output\n") :].rstrip()
    )
    net8 = crashes.parse_report(NET8_FAILFAST)
    assert net8 is not None and net8.kind == "fail-fast" and net8.message == "boom 8 msg"
    unhandled = crashes.parse_report(UNHANDLED)
    assert unhandled is not None and unhandled.kind == "unhandled-exception"
    assert unhandled.exception_type == "System.InvalidOperationException"
    assert unhandled.message == "the background worker lost its queue"
    assert crashes.parse_report("plain output\n") is None


def test_the_last_report_counts_and_long_ones_are_cut() -> None:
    both = crashes.parse_report(UNHANDLED + NET8_FAILFAST)
    assert both is not None and both.kind == "fail-fast"
    long = crashes.parse_report("Stack overflow.\n" + "   at X.Y()\n" * 2000)
    assert long is not None and long.report is not None and long.report.endswith("(cut)")
    assert len(long.report) < crashes.REPORT_KEEP + 20


def test_classify_without_a_report_uses_the_exception() -> None:
    def exc(t: str, m: str = "") -> ManagedException:
        return ManagedException(address=1, type=t, message=m or None)

    assert crashes.classify(exc("System.StackOverflowException"), None).kind == "stack-overflow"
    assert crashes.classify(exc("System.ExecutionEngineException"), None).kind == "fail-fast"
    other = crashes.classify(exc("System.FormatException", "bad"), None)
    assert (other.kind, other.message, other.exception_type) == (
        "unhandled-exception",
        "bad",
        "System.FormatException",
    )
    assert crashes.classify(None, None).kind == "abort"
    report = CrashInfo(kind="fail-fast", message="m")
    assert crashes.classify(exc("System.ExecutionEngineException"), report) is report


def test_read_report_reads_only_the_tail(tmp_path) -> None:
    path = tmp_path / "err"
    path.write_text("x" * (crashes.REPORT_TAIL * 2) + "\n" + NET8_FAILFAST)
    info = crashes.read_report(str(path), None)
    assert info is not None and info.message == "boom 8 msg"
    assert crashes.read_report(str(tmp_path / "missing"), None) is None


def test_find_cycle() -> None:
    ips = [1, 2, 3] + [10, 11] * 500 + [10, 20, 30]
    assert find_cycle(ips) == (3, 2, 500)  # the lone 10 after the last pair is no repeat
    assert find_cycle([1, 2, 3, 4, 5]) is None
    assert find_cycle([7] * 100) == (0, 1, 100)
    assert find_cycle([1, 2] * 3, min_repeats=8) is None


def frame(i: int, name: str, kind: str = "managed", module=None) -> dict:
    return {"index": i, "ip": 0x1000 + i, "sp": 0x7000 + 16 * i, "kind": kind, "name": name, "module": module}


def test_build_stack_names_the_cycle_once_and_says_what_was_cut() -> None:
    reply = {
        "deep": True,
        "reason": "deep",
        "thread_id": 0x2AFF,
        "depth": 262021,
        "complete": True,
        "limit": 1000,
        "top": [frame(0, "abort", "native", "libc.so.6"), frame(1, "Ns.T.Ping(Int32)")],
        "cycle": {
            "start": 2,
            "period": 2,
            "repeats": 130996,
            "frames": [frame(2, "Ns.T.Pong(Int32)"), frame(3, "Ns.T.Ping(Int32)")],
        },
        "bottom": [frame(262000, "Ns.T.Start()"), frame(262001, None, "native")],
        "notes": ["5 frames below frame 262,001 not shown"],
    }
    stack = build_stack(reply)
    assert stack.os_thread_id == 0x2AFF and stack.depth == 262021
    assert [f.method for f in stack.frames] == [
        "abort",
        "Ns.T.Ping(Int32)",
        "Ns.T.Pong(Int32)",
        "Ns.T.Ping(Int32)",
        "Ns.T.Start()",
        None,
    ]
    assert stack.frames[0].call_site == "libc.so.6!abort" and stack.frames[0].kind == "native"
    assert stack.frames[-1].call_site == "?!0x40f71" and stack.frames[-1].kind == "native"
    assert stack.truncated is not None
    assert "262,021 frames" in stack.truncated and "repeated 130,996 times" in stack.truncated
    assert "Ns.T.Pong(Int32) <- Ns.T.Ping(Int32)" in stack.truncated and "not shown" in stack.truncated
    event = StopEvent(kind="second-chance", stack=stack)
    assert event.throw_site is not None and event.throw_site.method == "Ns.T.Ping(Int32)"
    assert ManagedStack.from_dict(stack.to_dict()) == stack


def test_build_stack_when_clrstack_walked_nothing() -> None:
    stack = build_stack(
        {
            "deep": True,
            "reason": "clrstack-empty",
            "thread_id": 5,
            "depth": 3,
            "top": [frame(0, "A.B()")],
            "clrstack": "OS Thread Id: 0x5 (1)\n",
        }
    )
    assert stack.truncated is None and stack.error and "ip2md" in stack.error
    assert [f.method for f in stack.frames] == ["A.B()"]


def test_ip2md_name() -> None:
    text = (
        "MethodDesc:   00007fff79357ff0\n"
        "Method Name:          CrashApp.StackOverflowScenario.Ping(Int32)\nClass: 1\n"
    )
    assert parse_ip2md_name(text) == "CrashApp.StackOverflowScenario.Ping(Int32)"
    assert parse_ip2md_name("Failed to request MethodData, not in JIT code range\n") is None


DUMPOBJ = """Name:        System.InvalidOperationException
MethodTable: 00007fff792ec890
Size:        128(0x80) bytes
Fields:
              MT    Field   Offset                 Type   VT     Attr            Value Name
00007fff7901d7c8 04000203       10        System.String   No instance 00007fff744020e8 _message
00007fff7901f398 04000205       20     System.Exception   No instance 0000000000000000 _innerException
00007fff78fa0980 04000210       74         System.Int32  Yes instance      -2146233079 _HResult
"""
STRING = """Name:        System.String
MethodTable: 00007fff7901d7c8
String:      thrown at the bottom of a deep stack
Fields:
"""


def test_bounded_exception_from_dumpobj() -> None:
    assert bounded.parse_dumpobj_fields(DUMPOBJ)["_HResult"] == "-2146233079"
    assert bounded.parse_string_object(STRING) == "thrown at the bottom of a deep stack"
    commands = []

    def sos(command: str) -> str:
        commands.append(command)
        return STRING if command == "dumpobj 0x7fff744020e8" else DUMPOBJ

    exc = bounded.read_exception(sos, 0x7FBF62809CC8, 1, 5027)
    assert exc is not None
    assert (exc.type, exc.message, exc.hresult, exc.inner_address) == (
        "System.InvalidOperationException",
        "thrown at the bottom of a deep stack",
        0x80131509,
        None,
    )
    assert exc.truncated and "5027 frames" in exc.truncated and exc.frames == ()
    assert commands == ["dumpobj 0x7fbf62809cc8", "dumpobj 0x7fff744020e8"]  # never pe
    assert ManagedException.from_dict(exc.to_dict()) == exc


def test_a_cut_stack_says_so_in_html_and_markdown() -> None:
    from pydbgauto.display import stack_html, stack_markdown

    stack = ManagedStack(os_thread_id=1, frames=(), truncated="stack cut: 262,021 frames <deep>")
    assert "stack cut: 262,021 frames &lt;deep&gt;" in stack_html(stack)
    assert "Cut: stack cut: 262,021 frames" in stack_markdown(stack)
