"""parse_pe: table of (raw text, expected fields)."""

from __future__ import annotations

from typing import Any, Dict

import pytest

from pydbgauto import ParseError, SosError, parse_pe

LLDB_PE = """\
(lldb) pe
Exception object: 00007f5ec808ce00
Exception type:   System.InvalidOperationException
Message:          Throwing an invalid operation....
InnerException:   <none>
StackTrace (generated):
    SP               IP               Function
    00007FFF5FBFF6A0 00007FFF8A1B2C3D ThrowingApp.dll!ThrowingApp.UserObject.UseObject(System.String)+0x8d
    00007FFF5FBFF6F0 00007FFF8A1B1F0E ThrowingApp.dll!ThrowingApp.Program.Main(System.String[])+0x4e

StackTraceString: <none>
HResult: 80131509
"""


def _pe(**lines: str) -> str:
    """A pe reply with the default fields replaced by ``lines`` (values are whole lines)."""
    fields = {
        "obj": "Exception object: 00007f5ec808ce00",
        "type": "Exception type:   System.Exception",
        "msg": "Message:          hello",
        "inner": "InnerException:   <none>",
        "stack": "StackTrace (generated):\n<none>",
        "sts": "StackTraceString: <none>",
        "hr": "HResult: 80131500",
    }
    fields.update(lines)
    return "\n".join(v for v in fields.values() if v) + "\n"


CASES: Dict[str, Any] = {
    "lldb aligned": (
        LLDB_PE,
        dict(
            address=0x7F5EC808CE00,
            type="System.InvalidOperationException",
            message="Throwing an invalid operation....",
            inner_type=None,
            hresult=0x80131509,
            has_nested=False,
            frame_methods=[
                "ThrowingApp.UserObject.UseObject(System.String)",
                "ThrowingApp.Program.Main(System.String[])",
            ],
            frame_offsets=[0x8D, 0x4E],
            frame_modules=["ThrowingApp.dll", "ThrowingApp.dll"],
        ),
    ),
    "single-spaced labels, cdb backticks": (
        _pe(obj="Exception object: 000001e4`1a2b3c40", type="Exception type: Foo.Bar", msg="Message: m"),
        dict(address=0x1E41A2B3C40, type="Foo.Bar", message="m"),
    ),
    "message none": (_pe(msg="Message:          <none>"), dict(message=None)),
    "message with colons, quotes, non-ASCII, several lines": (
        _pe(msg='Message:          Größe: "a:b"\n  second: line\n'),
        dict(message='Größe: "a:b"\n  second: line\n'),
    ),
    "old inner hint": (
        _pe(
            inner="InnerException:   System.FormatException, "
            "Use !PrintException 00007f5ec808cf00 to see more."
        ),
        dict(inner_type="System.FormatException", inner_address=0x7F5EC808CF00),
    ),
    "new inner hint, no bang": (
        _pe(
            inner="InnerException:   System.FormatException, Use printexception 00007F5EC808CF00 to see more."
        ),
        dict(inner_type="System.FormatException", inner_address=0x7F5EC808CF00),
    ),
    "new inner hint with bang, generic type with commas": (
        _pe(
            inner="InnerException:   My.Err`1[[System.String, System.Private.CoreLib]], "
            "Use !printexception 0000020c`1e0ef6a8 to see more."
        ),
        dict(inner_type="My.Err`1[[System.String, System.Private.CoreLib]]", inner_address=0x20C1E0EF6A8),
    ),
    "inner with invalid method table and no newline": (
        _pe(
            inner="InnerException:   <invalid MethodTable of inner exception>StackTrace (generated):\n<none>"
        ),
        dict(inner_type="<invalid MethodTable of inner exception>", frame_methods=[]),
    ),
    "stack header without indent, 32-bit, -lines with unix path": (
        _pe(
            stack="StackTrace (generated):\nSP       IP       Function\n"
            "0019F2A0 06B10D4B App!N.C.M()+0x4b [/home/u/src/My App/C.cs @ 42]"
        ),
        dict(
            frame_methods=["N.C.M()"], frame_sources=[("/home/u/src/My App/C.cs", 42)], frame_offsets=[0x4B]
        ),
    ),
    "windows path, no offset (displacement 0)": (
        _pe(
            stack="StackTrace (generated):\n"
            "    00000000DEADBEE0 00000000DEADBEEF App!N.C.M() [C:\\s\\C.cs @ 7]"
        ),
        dict(frame_offsets=[None], frame_sources=[("C:\\s\\C.cs", 7)], frame_sps=[0xDEADBEE0]),
    ),
    "unknown module, nested type with plus": (
        _pe(
            stack="StackTrace (generated):\n"
            "    00007FFF5FBFF6A0 00007FFF8A1B2C3D UNKNOWN!Interop+Sys.Read(IntPtr)+0x10"
        ),
        dict(frame_modules=["UNKNOWN"], frame_methods=["Interop+Sys.Read(IntPtr)"]),
    ),
    "stack not available": (
        _pe(stack="StackTrace (generated):\n<Not Available>"),
        dict(frame_methods=[]),
    ),
    "stack trace string over several lines": (
        _pe(sts="StackTraceString:    at A.B()\n   at C.D()\n"),
        dict(stack_trace_string="   at A.B()\n   at C.D()"),
    ),
    "stack trace string absent": (_pe(sts=""), dict(stack_trace_string=None, hresult=0x80131500)),
    "nested note": (
        _pe() + "There are nested exceptions on this thread. Run with -nested for details\n",
        dict(has_nested=True),
    ),
    "prompt echo and symbol noise": (
        "0:000> !pe\n*** WARNING: Unable to verify checksum for App.exe\n"
        "*** ERROR: Symbol file could not be found.  Defaulted to export symbols for ntdll.dll - \n" + _pe(),
        dict(address=0x7F5EC808CE00, message="hello"),
    ),
    "CRLF": (_pe().replace("\n", "\r\n"), dict(message="hello", hresult=0x80131500)),
    "elided frames": (
        _pe(
            stack="StackTrace (generated):\n    00007FFF5FBFF6A0 00007FFF8A1B2C3D A!B.C()+0x1\n...\n"
            "    00007FFF5FBFF6F0 00007FFF8A1B2C4D A!B.D()+0x2"
        ),
        dict(frame_methods=["B.C()", "B.D()"]),
    ),
    "cut short after the message": (
        "Exception object: 00007f5ec808ce00\nException type:   X\nMessage:          m\n",
        dict(type="X", message="m", hresult=None, frame_methods=[]),
    ),
    "explicit object on an unmanaged thread": (
        _pe() + "The current thread is unmanaged\n",
        dict(message="hello", has_nested=False),
    ),
}


@pytest.mark.parametrize("text,expected", list(CASES.values()), ids=list(CASES))
def test_parse_pe_fields(text: str, expected: Dict[str, Any]) -> None:
    exc = parse_pe(text)
    assert exc is not None
    derived = {
        "frame_methods": [f.method for f in exc.frames],
        "frame_offsets": [f.offset for f in exc.frames],
        "frame_modules": [f.module for f in exc.frames],
        "frame_sources": [(f.source_file, f.line) for f in exc.frames],
        "frame_sps": [f.sp for f in exc.frames],
    }
    for key, value in expected.items():
        actual = derived[key] if key in derived else getattr(exc, key)
        assert actual == value, key
    assert exc.raw == text


def test_nested_blocks() -> None:
    text = (
        _pe()
        + "\nNested exception -------------------------------------------------------------\n"
        + _pe(obj="Exception object: 00007f5ec808cf00", type="Exception type:   System.FormatException")
    )
    exc = parse_pe(text)
    assert exc is not None
    assert exc.type == "System.Exception"
    assert exc.has_nested
    assert [n.type for n in exc.nested] == ["System.FormatException"]
    assert exc.nested[0].address == 0x7F5EC808CF00
    assert exc.nested[0].raw.startswith("Exception object: 00007f5ec808cf00")


@pytest.mark.parametrize(
    "text",
    [
        "There is no current managed exception on this thread\n",
        "0:000> !pe\r\nThere is no current managed exception on this thread\r\n",
        "There is no current managed exception on this thread\n"
        "There are nested exceptions on this thread. Run with -nested for details\n",
    ],
)
def test_no_current_exception_is_none(text: str) -> None:
    assert parse_pe(text) is None


@pytest.mark.parametrize(
    "text",
    [
        "The current thread is unmanaged\n",
        "Failed to load data access module, 0x80004005\n",
        "Failed to load data access DLL, 0x80131c4f\nYou can run the debugger command 'setclrpath'\n",
        "c0000005 Exception in C:\\sos\\sos.dll.pe debugger extension.\n      PC: 00007ffb`12345678\n",
        "Invalid exception object 1234\n",
        "Not a valid exception object\n",
    ],
)
def test_sos_failures_raise_sos_error(text: str) -> None:
    with pytest.raises(SosError):
        parse_pe(text)


@pytest.mark.parametrize(
    "text",
    ["", "hello\n", "Exception object: not-hex\n", "Exception type: X\nMessage: m\n"],
)
def test_not_pe_raises_parse_error(text: str) -> None:
    with pytest.raises(ParseError):
        parse_pe(text)


def test_dml_markup_is_dropped() -> None:
    text = _pe(obj='Exception object: <link cmd="!DumpObj /d 00007f5ec808ce00">00007f5ec808ce00</link>')
    exc = parse_pe(text)
    assert exc is not None and exc.address == 0x7F5EC808CE00


def test_sos_dynamic_assembly_warning_is_cut_out_of_a_stack_row() -> None:
    # The same splice as in clrstack (see test_clrstack.py), should SOS print it in pe's stack rows.
    text = (
        "Exception object: 00007f2074937dc0\nException type:   A.E\nMessage:          m\n"
        "InnerException:   <none>\nStackTrace (generated):\n    SP               IP               Function\n"
        "    00007F1FB37FD070 00007F608C1C079C SOS Warning: Loading symbols for dynamic assemblies is not yet"
        " supported\nUNKNOWN!DynamicClass.lambda_method2(X.HttpContext)+0xbc\n\n"
        "StackTraceString: <none>\nHResult: 80131500\n"
    )
    exc = parse_pe(text)
    assert exc is not None
    assert [(f.module, f.method, f.offset) for f in exc.frames] == [
        ("UNKNOWN", "DynamicClass.lambda_method2(X.HttpContext)", 0xBC)
    ]


def test_other_sos_warning_text_in_a_message_is_kept() -> None:
    text = (
        "Exception object: 00007f2074937dc0\nException type:   A.E\n"
        "Message:          SOS Warning: not ours\nInnerException:   <none>\nStackTrace (generated): <none>\n"
        "StackTraceString: <none>\nHResult: 80131500\n"
    )
    exc = parse_pe(text)
    assert exc is not None and exc.message == "SOS Warning: not ours"
