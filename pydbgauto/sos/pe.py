"""``!pe`` / ``pe`` / ``printexception [-nested] [-lines]`` text -> :class:`ManagedException`. Pure.

The report is a fixed sequence of labelled fields (strike.cpp FormatException); a field's
value runs until the label of any later field, so messages and StackTraceStrings may span
lines, hold colons, quotes or anything else. ``-nested`` appends whole blocks after a
``Nested exception -----`` line.
"""

from __future__ import annotations

import re
from typing import Dict, List, Optional, Tuple

import attr

from pydbgauto.errors import ParseError, SosError
from pydbgauto.models import ExceptionFrame, ManagedException
from pydbgauto.sos.common import HEX, PTR, clean_lines, parse_hex, raise_if_fatal, split_source

# The fields in the order SOS prints them. Order matters: a label only ends the fields before it.
_FIELDS: Tuple[Tuple[str, "re.Pattern[str]"], ...] = (
    ("address", re.compile(r"^Exception object:(.*)$")),
    ("type", re.compile(r"^Exception type:(.*)$")),
    ("message", re.compile(r"^Message:(.*)$")),
    ("inner", re.compile(r"^InnerException:(.*)$")),
    ("stack", re.compile(r"^[ \t]*StackTrace \(generated\):(.*)$")),
    ("stack_string", re.compile(r"^StackTraceString:(.*)$")),
    ("hresult", re.compile(r"^HResult:(.*)$")),
    ("security", re.compile(r"^SecurityException Message:(.*)$")),
)
# SOS pads labels to this column ("Message:          x"); old SOS puts a single space instead.
_VALUE_COLUMN = 18
_ORDER = {name: i for i, (name, _) in enumerate(_FIELDS)}
# How labels begin, to skip the regexes on most lines (only the stack label may be indented).
_LABEL_STARTS = ("Exception ", "Message:", "InnerException:", "StackTrace", "HResult:", "Security", " ", "\t")

_NESTED_SEPARATOR = re.compile(r"^\s*Nested exception -+\s*$")
_NESTED_NOTE = "There are nested exceptions on this thread"
_NO_EXCEPTION = "There is no current managed exception on this thread"
# Lines SOS prints next to a report that carry no field of it.
_TRAILERS = (
    _NESTED_NOTE,
    "The current thread is unmanaged",
    "Error retrieving nested exception info",
    "<aborted>",
    "In order for the option -lines",
    "the debugger must be configured to load the line number",
    "the symbol files. Use the",
)
# Texts that stand instead of a report: the object is not an exception, or there is none.
_NOT_AN_EXCEPTION = (
    "The current thread is unmanaged",
    "Invalid exception object",
    "Not a valid exception object",
    "Invalid CCW pointer",
    "No CCW pointer specified",
)

_INNER = re.compile(
    r"^(?P<type>.*?),\s*Use\s+(?:sos\s+)?!?printexception\s+(?:/d\s+)?(?P<addr>"
    + HEX
    + r")\s+to see more\.?",
    re.IGNORECASE,
)
_STACK_HEADER = re.compile(r"^\s*SP\s+IP\s+Function\s*$")
_STACK_ROW = re.compile(r"^\s*(" + PTR + r")\s+(" + PTR + r")\s+(.*?)\s*$")
_OFFSET = re.compile(r"\+0x([0-9A-Fa-f]+)$")
_DML_TAG = re.compile(r"</?(?:link|exec|col|b|i|u)\b[^>]*>")


def parse_pe(text: str) -> Optional[ManagedException]:
    """Parse one ``pe`` reply. None when SOS says there is no current managed exception.

    Raises SosError when SOS could not run or the object is not an exception, and
    ParseError when the text is not a ``pe`` reply at all.
    """
    lines = _prepare(text)
    raise_if_fatal(lines, "printexception")
    blocks = _split_blocks(lines)
    main = blocks[0]
    if not any(line.startswith("Exception object:") for line in main):
        for line in main:
            if _NO_EXCEPTION in line:
                return None
        for line in main:
            for phrase in _NOT_AN_EXCEPTION:
                if phrase in line:
                    raise SosError(f"SOS printexception found no exception: {line.strip()}")
        raise ParseError(f"not a printexception reply (no 'Exception object:' line): {text[:200]!r}")
    exc = _parse_block(main, text)
    nested = tuple(_parse_block(block, "\n".join(block)) for block in blocks[1:])
    return attr.evolve(exc, nested=nested, has_nested=True) if nested else exc


def _prepare(text: str) -> List[str]:
    if "<" in text and ("<link" in text or "<exec" in text):
        # DML (cdb with /d or .prefer_dml 1): keep the text, drop the markup.
        text = _DML_TAG.sub("", text).replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    # SOS prints this inner-exception value without a newline; give the next label its own line.
    text = text.replace("exception>StackTrace (generated):", "exception>\nStackTrace (generated):")
    return clean_lines(text)


def _split_blocks(lines: List[str]) -> List[List[str]]:
    blocks: List[List[str]] = [[]]
    for line in lines:
        if line.startswith(("Nested", " ")) and _NESTED_SEPARATOR.match(line):
            blocks.append([])
        else:
            blocks[-1].append(line)
    return blocks


def _parse_block(lines: List[str], raw: str) -> ManagedException:
    values: Dict[str, List[str]] = {}
    frames: List[ExceptionFrame] = []
    has_nested = False
    current: Optional[str] = None
    for line in lines:
        if line.startswith(_TRAILERS):
            has_nested = has_nested or line.startswith(_NESTED_NOTE)
            current = None if current in ("stack", "stack_string", "security") else current
            continue
        label = _match_label(line, current)
        if label is not None:
            current, value = label
            values[current] = [value]
            continue
        if current == "stack":
            frame = _stack_row(line)
            if frame is not None:
                frames.append(frame)
        elif current in ("message", "stack_string", "security"):
            values[current].append(line)
        # other lines (a blank after a one-line field, unknown text) carry nothing
    return _build(values, frames, has_nested, raw)


def _match_label(line: str, current: Optional[str]) -> Optional[Tuple[str, str]]:
    if not line.startswith(_LABEL_STARTS):
        return None
    start = -1 if current is None else _ORDER[current]
    for name, pattern in _FIELDS[start + 1 :]:
        m = pattern.match(line)
        if m:
            return name, _value(line, m.start(1))
    return None


def _value(line: str, start: int) -> str:
    """The value after a label, keeping the text's own leading spaces (a StackTraceString's "   at")."""
    if len(line) >= _VALUE_COLUMN and start <= _VALUE_COLUMN and not line[start:_VALUE_COLUMN].strip():
        return line[_VALUE_COLUMN:]
    return line[start + 1 :] if line[start : start + 1] == " " else line[start:]


def _stack_row(line: str) -> Optional[ExceptionFrame]:
    m = _STACK_ROW.match(line)
    if m is None:
        return None  # the header, <none>, <Not Available>, a blank or a cut-off row
    function, source_file, line_no = split_source(m.group(3))
    offset: Optional[int] = None
    om = _OFFSET.search(function)
    if om:
        offset = int(om.group(1), 16)
        function = function[: om.start()]
    module: Optional[str] = None
    if "!" in function:
        module, function = function.split("!", 1)
    return ExceptionFrame(
        sp=parse_hex(m.group(1)),
        ip=parse_hex(m.group(2)),
        module=module,
        method=function,
        offset=offset,
        source_file=source_file,
        line=line_no,
    )


def _multiline(values: Dict[str, List[str]], name: str, trailing_blank: bool) -> Optional[str]:
    parts = values.get(name)
    if parts is None:
        return None
    if trailing_blank and len(parts) > 1 and parts[-1].strip() == "":
        parts = parts[:-1]  # SOS adds one blank line after a StackTraceString "to look better"
    if len(parts) == 1 and parts[0].strip() == "<none>":
        return None
    return "\n".join(parts)


def _one(values: Dict[str, List[str]], name: str) -> Optional[str]:
    parts = values.get(name)
    return parts[0].strip() if parts else None


def _hex_field(values: Dict[str, List[str]], name: str) -> Optional[int]:
    value = _one(values, name)
    if value is None or value == "":
        return None
    try:
        return parse_hex(value.split()[0])
    except ValueError:
        raise ParseError(f"printexception: {name} is not hex: {value!r}") from None


def _build(
    values: Dict[str, List[str]], frames: List[ExceptionFrame], has_nested: bool, raw: str
) -> ManagedException:
    address = _hex_field(values, "address")
    if address is None:
        raise ParseError("printexception: a block without an exception object address")
    inner_type: Optional[str] = None
    inner_address: Optional[int] = None
    inner = _one(values, "inner")
    if inner and inner != "<none>":
        m = _INNER.match(inner)
        if m:
            inner_type, inner_address = m.group("type").strip(), parse_hex(m.group("addr"))
        else:
            inner_type = inner  # e.g. "<invalid MethodTable of inner exception>"
    return ManagedException(
        address=address,
        type=_one(values, "type"),
        message=_multiline(values, "message", trailing_blank=False),
        inner_type=inner_type,
        inner_address=inner_address,
        frames=tuple(frames),
        stack_trace_string=_multiline(values, "stack_string", trailing_blank=True),
        hresult=_hex_field(values, "hresult"),
        has_nested=has_nested,
        raw=raw,
    )
