"""parse_clrstack / parse_clrstack_all: tables of (raw text, expected fields)."""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

import pytest

from pydbgauto import ParseError, SosError, parse_clrstack, parse_clrstack_all

HEAD = "OS Thread Id: 0x2f7c (1)\n        Child SP               IP Call Site\n"

# (row text, expected (sp, ip, kind, frame_type, method, module, offset, source_file, line))
Row = Tuple[int, Optional[int], str, Optional[str], Optional[str], Optional[str], Optional[int], Any, Any]
ROWS: Dict[str, Tuple[str, Row]] = {
    "managed": (
        "00007FFF5FBFF6A0 00007FFF8A1B2C3D ThrowingApp.Program.Main(System.String[])",
        (0x7FFF5FBFF6A0, 0x7FFF8A1B2C3D, "managed", None, "ThrowingApp.Program.Main(System.String[])")
        + (None, None, None, None),
    ),
    "managed with unix source": (
        "00007fff5fbff6a0 00007fff8a1b2c3d N.C.M(Int32) [/src/app/C.cs @ 15]",
        (0x7FFF5FBFF6A0, 0x7FFF8A1B2C3D, "managed", None, "N.C.M(Int32)", None, None, "/src/app/C.cs", 15),
    ),
    "managed with windows source, backticks": (
        "000000d5`6e57e8a0 00007ffb`6c2b10f5 N.C.M() [D:\\a b\\C.cs @ 7]",
        (0xD56E57E8A0, 0x7FFB6C2B10F5, "managed", None, "N.C.M()", None, None, "D:\\a b\\C.cs", 7),
    ),
    "runtime marker with trailing space": (
        "00007FFF5FBFF650 00007FFF8A1B0000 [HelperMethodFrame: 00007fff5fbff650] ",
        (0x7FFF5FBFF650, 0x7FFF8A1B0000, "runtime", "HelperMethodFrame", None, None, None, None, None),
    ),
    "runtime marker, blank ip (-f), with method": (
        "00007FFF5FBFF650                  [InlinedCallFrame: 00007fff5fbff650] "
        "System.Private.CoreLib.dll!Interop+Sys.Read(IntPtr)",
        (0x7FFF5FBFF650, None, "runtime", "InlinedCallFrame", "Interop+Sys.Read(IntPtr)")
        + ("System.Private.CoreLib.dll", None, None, None),
    ),
    "-f native frame": (
        "0000700003024AE0 000000010A3D6AD3 libcoreclr.so!RtlRestoreContext + 60",
        (0x700003024AE0, 0x10A3D6AD3, "native", None, "RtlRestoreContext", "libcoreclr.so", 60, None, None),
    ),
    "-f native frame with source": (
        "FFCDDD70 0804DBE0 corerun!Run(char const*, int) + 1856 at /src/corerun.cpp:431",
        (
            0xFFCDDD70,
            0x0804DBE0,
            "native",
            None,
            "Run(char const*, int)",
            "corerun",
            1856,
            "/src/corerun.cpp",
            431,
        ),
    ),
    "-f native frame without symbol": (
        "0000700003025020 0000000123DAEF4D",
        (0x700003025020, 0x123DAEF4D, "native", None, None, None, None, None, None),
    ),
    "-f managed frame": (
        "00007FFC2B2FE8A8 00007FFBCBD1A4C1 App.dll!App.Program.Foo4(System.String) + 193 [/s/App.cs @ 57]",
        (0x7FFC2B2FE8A8, 0x7FFBCBD1A4C1, "managed", None, "App.Program.Foo4(System.String)")
        + ("App.dll", 193, "/s/App.cs", 57),
    ),
    "unknown method": (
        "00007FFF5FBFF6A0 00007FFF8A1B2C3D <unknown>",
        (0x7FFF5FBFF6A0, 0x7FFF8A1B2C3D, "managed", None, "<unknown>", None, None, None, None),
    ),
}


@pytest.mark.parametrize("row,expected", list(ROWS.values()), ids=list(ROWS))
def test_rows(row: str, expected: Row) -> None:
    stack = parse_clrstack(HEAD + row + "\n")
    assert len(stack.frames) == 1
    f = stack.frames[0]
    assert (f.sp, f.ip, f.kind, f.frame_type, f.method, f.module, f.offset, f.source_file, f.line) == expected
    assert stack.os_thread_id == 0x2F7C and stack.debugger_thread_index == 1 and stack.error is None


def test_call_site_is_as_printed_without_source() -> None:
    stack = parse_clrstack(HEAD + "00007FFF5FBFF6A0 00007FFF8A1B2C3D N.C.M(Int32) [/src/C.cs @ 15]\n")
    assert stack.frames[0].call_site == "N.C.M(Int32)"


def test_parameters_and_locals_are_skipped() -> None:
    text = (
        HEAD
        + "00007FFF5FBFF6A0 00007FFF8A1B2C3D N.C.M(Int32)\n"
        + "    PARAMETERS:\n"
        + "        deadbeef (0x00007FFF5FBFF6C8) = 0x0000000000000005\n"
        + "        abcdef0123456789 (<CLR reg>) = 0x0000000000000001\n"
        + "    LOCALS:\n"
        + "        <no data>\n"
        + "        0x00007FFF5FBFF6B8 = 0x00007f5ec808ce00\n"
        + "    rsp=00007fff5fbff6a0 rbp=00007fff5fbff6f0 rip=00007fff8a1b2c3d\n"
        + "00007FFF5FBFF6F0 00007FFF8A1B1F0E N.C.Main(System.String[])\n"
        + "    PARAMETERS: (none)\n"
    )
    stack = parse_clrstack(text)
    assert [f.method for f in stack.frames] == ["N.C.M(Int32)", "N.C.Main(System.String[])"]


def test_symbol_warning_spliced_mid_line() -> None:
    text = HEAD + (
        "00007FFF5FBFF6A0 00007FFF8A1B2C3D *** WARNING: Unable to verify checksum for DivZero.exe\r\n"
        "C.DivideByZero(Int32) [C:\\d\\DivZero.cs @ 15]\r\n"
    )
    stack = parse_clrstack(text)
    assert [(f.method, f.line) for f in stack.frames] == [("C.DivideByZero(Int32)", 15)]


def test_prompt_echo_and_elision() -> None:
    text = "0:000:x86> !clrstack\n" + HEAD + "0019F2A0 06B10D4B A.B()\n...\n0019F2C0 06B10C22 A.C()\n"
    assert [f.method for f in parse_clrstack(text).frames] == ["A.B()", "A.C()"]


ERRORS: Dict[str, Tuple[str, Optional[int], str]] = {
    "unmanaged thread": (
        "OS Thread Id: 0x0 (1)\nUnable to walk the managed stack. The current thread is likely not a \n"
        "managed thread. You can run clrthreads to get a list of managed threads in\nthe process\n"
        "Failed to start stack walk: 80070057\n",
        0,
        "Failed to start stack walk: 80070057",
    ),
    "old spelling": ("OS Thread Id: 0x10 (2)\nFailed to start stalk walk: 80070057\n", 0x10, "stalk walk"),
    "dac failure, no header": (
        "Failed to load data access module, 0x80004005\nClrStack  failed\n",
        None,
        "Failed to load data access module, 0x80004005",
    ),
    "walk failed after frames": (
        HEAD
        + "00007FFF5FBFF6A0 00007FFF8A1B2C3D A.B()\n"
        + "<failed>\nStack Walk failed. Reported stack incomplete.\n",
        0x2F7C,
        "Stack Walk failed",
    ),
}


@pytest.mark.parametrize("text,tid,needle", list(ERRORS.values()), ids=list(ERRORS))
def test_failures_become_error_values(text: str, tid: Optional[int], needle: str) -> None:
    stack = parse_clrstack(text)
    assert stack.os_thread_id == tid
    assert stack.error is not None and needle in stack.error


def test_partial_frames_kept_with_error() -> None:
    text = (
        HEAD
        + "00007FFF5FBFF6A0 00007FFF8A1B2C3D A.B()\n<failed>\nStack Walk failed. Reported stack incomplete.\n"
    )
    assert [f.method for f in parse_clrstack(text).frames] == ["A.B()"]


def test_extension_crash_raises() -> None:
    with pytest.raises(SosError):
        parse_clrstack("c0000005 Exception in C:\\x\\sos.dll.clrstack debugger extension.\n")


@pytest.mark.parametrize("text", ["", "hello\n", "Child SP IP Call Site\n"])
def test_not_clrstack_raises_parse_error(text: str) -> None:
    with pytest.raises(ParseError):
        parse_clrstack(text)


ALL = """\
OS Thread Id: 0x2f7c
        Child SP               IP Call Site
00007FFF5FBFF6A0 00007FFF8A1B2C3D A.Main(System.String[])
OS Thread Id: 0x2f80
        Child SP               IP Call Site
00007FFF4FBFF000                  [DebuggerU2MCatchHandlerFrame: 00007fff4fbff000]\x20
OS Thread Id: 0x2f99
Unable to walk the managed stack. The current thread is likely not a\x20
managed thread. You can run clrthreads to get a list of managed threads in
the process
"""


def test_clrstack_all_one_stack_per_thread() -> None:
    stacks = parse_clrstack_all(ALL)
    assert [s.os_thread_id for s in stacks] == [0x2F7C, 0x2F80, 0x2F99]
    assert [s.debugger_thread_index for s in stacks] == [None, None, None]
    kinds: List[List[str]] = [[f.kind for f in s.frames] for s in stacks]
    assert kinds == [["managed"], ["runtime"], []]
    assert [s.error is not None for s in stacks] == [False, False, True]
    assert stacks[1].raw.startswith("OS Thread Id: 0x2f80")


def test_single_parser_refuses_several_threads() -> None:
    with pytest.raises(ParseError, match="parse_clrstack_all"):
        parse_clrstack(ALL)


# SOS's dynamic-assembly warning, printed between a row's IP and its call site (as recorded from the
# sample service, tests/transcripts/lldb/clrstack-*-service-*.txt); the call site is on the next line.
DYNAMIC_WARNING = "SOS Warning: Loading symbols for dynamic assemblies is not yet supported"
LAMBDA = "DynamicClass.lambda_method2(System.Runtime.CompilerServices.Closure, System.Object, X.HttpContext)"
DYNAMIC_CASES: Dict[str, Tuple[str, List[Tuple[int, Optional[str], Optional[int]]]]] = {
    "plain": (
        "00007F20D6D2C010 00007F6193ABB4D3 A.Handler(System.String)\n"
        f"00007F20D6D2C070 00007F61955B079D {DYNAMIC_WARNING}\n{LAMBDA}\n"
        "00007F20D6D2C0C0 00007F6193AB6FB3 A.Middleware.MoveNext()\n",
        [(0x7F20D6D2C010, "A.Handler(System.String)", None), (0x7F20D6D2C070, LAMBDA, None)]
        + [(0x7F20D6D2C0C0, "A.Middleware.MoveNext()", None)],
    ),
    "-f, with displacement": (
        f"00007F1FDA2A0040 00007F608C1C0579 {DYNAMIC_WARNING}\n{LAMBDA} + 825\n"
        "00007F1FDA2A00C0 00007F608A6C4153 App.dll!A.Middleware.MoveNext() + 131\n",
        [(0x7F1FDA2A0040, LAMBDA, 825), (0x7F1FDA2A00C0, "A.Middleware.MoveNext()", 131)],
    ),
    "-a, parameters after it": (
        f"00007F1FDA2A0040 00007F608C1C0579 {DYNAMIC_WARNING}\n{LAMBDA}\n"
        "    PARAMETERS:\n        <no data>\n        <no data>\n\n"
        "00007F1FDA2A00C0 00007F608A6C4153 A.Middleware.MoveNext()\n",
        [(0x7F1FDA2A0040, LAMBDA, None), (0x7F1FDA2A00C0, "A.Middleware.MoveNext()", None)],
    ),
    "CRLF": (
        f"00007F20D6D2C070 00007F61955B079D {DYNAMIC_WARNING}\r\n{LAMBDA}\r\n",
        [(0x7F20D6D2C070, LAMBDA, None)],
    ),
    "two dynamic frames in a row": (
        f"00007F20D6D2C070 00007F61955B079D {DYNAMIC_WARNING}\n{LAMBDA}\n"
        f"00007F20D6D2C0A0 00007F61955B0800 {DYNAMIC_WARNING}\nDynamicClass.lambda_method3()\n",
        [(0x7F20D6D2C070, LAMBDA, None), (0x7F20D6D2C0A0, "DynamicClass.lambda_method3()", None)],
    ),
    "a warning SOS does not splice": (
        f"{DYNAMIC_WARNING}\n00007F20D6D2C0C0 00007F6193AB6FB3 A.Middleware.MoveNext()\n",
        [(0x7F20D6D2C0C0, "A.Middleware.MoveNext()", None)],
    ),
    "another SOS warning spliced the same way": (
        "00007F20D6D2C070 00007F61955B079D SOS Warning: something else went wrong\n"
        f"{LAMBDA}\n00007F20D6D2C0C0 00007F6193AB6FB3 A.Middleware.MoveNext()\n",
        [(0x7F20D6D2C070, LAMBDA, None), (0x7F20D6D2C0C0, "A.Middleware.MoveNext()", None)],
    ),
    "another SOS warning, no call site after it": (
        "00007F20D6D2C070 00007F61955B079D SOS Warning: something else went wrong\n"
        "00007F20D6D2C0C0 00007F6193AB6FB3 A.Middleware.MoveNext()\n",
        [(0x7F20D6D2C070, None, None), (0x7F20D6D2C0C0, "A.Middleware.MoveNext()", None)],
    ),
}


@pytest.mark.parametrize("body,expected", list(DYNAMIC_CASES.values()), ids=list(DYNAMIC_CASES))
def test_sos_warning_is_not_a_frame(
    body: str, expected: List[Tuple[int, Optional[str], Optional[int]]]
) -> None:
    stack = parse_clrstack(HEAD + body)
    assert [(f.sp, f.method, f.offset) for f in stack.frames] == expected
    assert not any("SOS Warning" in f.call_site for f in stack.frames)
    assert stack.error is None
    assert "SOS Warning" in stack.raw  # the text as printed stays in raw


def test_sos_warning_row_keeps_its_ip_and_kind() -> None:
    stack = parse_clrstack(HEAD + f"00007F20D6D2C070 00007F61955B079D {DYNAMIC_WARNING}\n{LAMBDA}\n")
    (frame,) = stack.frames
    assert (frame.ip, frame.kind, frame.call_site, frame.module) == (0x7F61955B079D, "managed", LAMBDA, None)


def test_sos_warning_in_clrstack_all() -> None:
    text = (
        "OS Thread Id: 0x7042\n        Child SP               IP Call Site\n"
        f"00007F20D6D2C070 00007F61955B079D {DYNAMIC_WARNING}\n{LAMBDA}\n"
        "OS Thread Id: 0x7043\n        Child SP               IP Call Site\n"
        "00007F20D6D2C0C0 00007F6193AB6FB3 A.Middleware.MoveNext()\n"
    )
    stacks = parse_clrstack_all(text)
    assert [[f.method for f in s.frames] for s in stacks] == [[LAMBDA], ["A.Middleware.MoveNext()"]]
