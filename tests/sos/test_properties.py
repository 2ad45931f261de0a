"""Property tests: parsers never fail in a foreign way, and generated reports round-trip."""

from __future__ import annotations

from typing import Any, Callable, List, Optional, Tuple

from hypothesis import given, settings
from hypothesis import strategies as st

from pydbgauto import (
    ParseError,
    SosError,
    parse_clrstack,
    parse_clrstack_all,
    parse_dump_result,
    parse_events,
    parse_pe,
    parse_threads,
)

PARSERS: List[Callable[[str], Any]] = [
    parse_pe,
    parse_clrstack,
    parse_clrstack_all,
    parse_threads,
    parse_events,
    parse_dump_result,
]

# Text made of the pieces the parsers look for, so the search reaches their inner branches.
FRAGMENTS = [
    "Exception object: ",
    "Exception type:   ",
    "Message:          ",
    "InnerException:   ",
    "StackTrace (generated):",
    "StackTraceString: ",
    "HResult: ",
    "Nested exception ------",
    "OS Thread Id: 0x",
    "Child SP               IP Call Site",
    "[HelperMethodFrame: ",
    "ThreadCount: ",
    "XXXX ",
    "(1a.2b): ",
    " - code ",
    "(first chance)",
    "Creating ",
    " - mini user dump",
    "Dump successfully written",
    "00007ffd`1a2b3c40",
    "0019F2A0",
    "!",
    "+0x",
    " + ",
    " @ ",
    "[",
    "]",
    "\n",
    "\r\n",
    "   ",
    "<none>",
    "...",
    "*** WARNING: Unable to verify checksum for x\n",
    "There is no current managed exception on this thread",
    "Failed to start stack walk: 80070057",
]
texts = st.one_of(
    st.text(),
    st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=5)), max_size=40).map("".join),
)


@settings(max_examples=300, deadline=None)
@given(texts)
def test_parsers_return_or_raise_only_their_errors(text: str) -> None:
    for parse in PARSERS:
        try:
            parse(text)
        except (ParseError, SosError):
            pass


# ---- round trip: format a report from fields, parse it, get the fields back ----------------

type_names = st.from_regex(
    r"[A-Z][A-Za-z0-9_]{0,8}(\.[A-Z][A-Za-z0-9_]{0,8}){0,3}(`1\[\[System\.String, X\]\])?", fullmatch=True
)
methods = st.from_regex(r"[A-Z][A-Za-z0-9_.+<>]{0,20}\((System\.String\[\], Int32)?\)", fullmatch=True)
addresses = st.integers(min_value=0x10000000, max_value=0xFFFFFFFFFFFF)
# Messages: any printable text without line breaks, plus several lines; no line may start like a label.
message_lines = st.text(
    st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp"), blacklist_characters="\x85"), max_size=30
).filter(lambda s: not s.startswith(("InnerException", "StackTrace", "HResult", " ", "\t", "...", "*** ")))
messages = st.one_of(st.none(), st.lists(message_lines, min_size=1, max_size=3).map("\n".join))
sources = st.one_of(
    st.none(),
    st.tuples(
        st.from_regex(r"(/[a-z]{1,6}){1,3}\.cs|[A-Z]:(\\[A-Za-z ]{1,6}){1,3}\.cs", fullmatch=True),
        st.integers(1, 9999),
    ),
)
frame_specs = st.tuples(
    addresses,
    addresses,
    st.sampled_from(["App.dll", "UNKNOWN", "App"]),
    methods,
    st.integers(0, 0xFFFF),
    sources,
)


def _ptr(value: int, backtick: bool) -> str:
    text = f"{value:016x}"
    return text[:8] + "`" + text[8:] if backtick else text


def _format_pe(
    address: int,
    type_name: str,
    message: Optional[str],
    inner: Optional[Tuple[str, int]],
    frames: List[Any],
    hresult: int,
    aligned: bool,
    backtick: bool,
    indent: str,
) -> str:
    def label(name: str) -> str:
        return f"{name}:".ljust(18) if aligned else f"{name}: "

    out = [label("Exception object") + _ptr(address, backtick), label("Exception type") + type_name]
    out.append(label("Message") + ("<none>" if message is None else message))
    if inner is None:
        out.append(label("InnerException") + "<none>")
    else:
        out.append(
            label("InnerException")
            + f"{inner[0]}, Use !printexception {_ptr(inner[1], backtick)} to see more."
        )
    out.append("StackTrace (generated):")
    if frames:
        out.append(f"{indent}SP               IP               Function")
        for sp, ip, module, method, offset, source in frames:
            row = f"{indent}{_ptr(sp, backtick)} {_ptr(ip, backtick)} {module}!{method}"
            row += f"+0x{offset:x}" if offset else ""
            row += f" [{source[0]} @ {source[1]}]" if source else ""
            out.append(row)
        out.append("")
    else:
        out.append("<none>")
    out.append(label("StackTraceString") + "<none>")
    out.append(f"HResult: {hresult:x}")
    return "\n".join(out) + "\n"


@settings(max_examples=200, deadline=None)
@given(
    addresses,
    type_names,
    messages,
    st.one_of(st.none(), st.tuples(type_names, addresses)),
    st.lists(frame_specs, max_size=4),
    st.integers(0, 0xFFFFFFFF),
    st.booleans(),
    st.booleans(),
    st.sampled_from(["    ", ""]),
)
def test_pe_round_trip(
    address: int,
    type_name: str,
    message: Optional[str],
    inner: Optional[Tuple[str, int]],
    frames: List[Any],
    hresult: int,
    aligned: bool,
    backtick: bool,
    indent: str,
) -> None:
    text = _format_pe(address, type_name, message, inner, frames, hresult, aligned, backtick, indent)
    exc = parse_pe(text)
    assert exc is not None
    assert (exc.address, exc.type, exc.hresult) == (address, type_name, hresult)
    if message is not None and not aligned and message.startswith(" "):
        pass  # a single-spaced label cannot tell its space from the message's own
    else:
        assert exc.message == message
    assert (exc.inner_type, exc.inner_address) == (inner if inner else (None, None))
    got = [
        (f.sp, f.ip, f.module, f.method, f.offset or 0, (f.source_file, f.line) if f.source_file else None)
        for f in exc.frames
    ]
    assert got == [tuple(f) for f in frames]


@settings(max_examples=200, deadline=None)
@given(
    st.integers(1, 0xFFFFF),
    st.integers(0, 200),
    st.lists(
        st.tuples(
            addresses,
            st.one_of(st.none(), addresses),
            st.one_of(methods, st.sampled_from(["HelperMethodFrame", "InlinedCallFrame"])),
            sources,
        ),
        max_size=6,
    ),
    st.booleans(),
)
def test_clrstack_round_trip(tid: int, index: int, rows: List[Any], crlf: bool) -> None:
    lines = [f"OS Thread Id: 0x{tid:x} ({index})", "        Child SP               IP Call Site"]
    expected = []
    for sp, ip, site, source in rows:
        ip_col = " " * 16 if ip is None else f"{ip:016X}"
        if site.endswith("Frame"):
            lines.append(f"{sp:016X} {ip_col} [{site}: {sp:016x}] ")
            expected.append((sp, ip, "runtime", site, None, None))
        else:
            suffix = f" [{source[0]} @ {source[1]}]" if source else ""
            lines.append(f"{sp:016X} {ip_col} {site}{suffix}")
            expected.append((sp, ip, "managed", None, site, source))
    text = ("\r\n" if crlf else "\n").join(lines) + "\n"
    stack = parse_clrstack(text)
    assert (stack.os_thread_id, stack.debugger_thread_index, stack.error) == (tid, index, None)
    got = [
        (f.sp, f.ip, f.kind, f.frame_type, f.method, (f.source_file, f.line) if f.source_file else None)
        for f in stack.frames
    ]
    assert got == expected
