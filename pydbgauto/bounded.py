"""The exception of a stop on a thread too deep for ``pe`` (whose stack trace would print every frame).

``pe`` prints the exception's whole stack trace: an exception that went through 5,000 frames costs
4-5 s of SOS here (465 KB of text), through a stack overflow's depth minutes, and SOS cannot be cut
short. When a stop's stack was too deep to read whole (``ManagedStack.truncated``), the session reads
the exception in bounds instead: the object from the thread's row of ``clrthreads`` (or the stop), its
type and fields from ``dumpobj``, its message from ``dumpobj`` of the string; the frames are left out
and ``ManagedException.truncated`` says so.
"""

from __future__ import annotations

import re
from typing import Callable, Dict, Optional

from pydbgauto.errors import ParseError
from pydbgauto.models import ManagedException
from pydbgauto.sos import parse_threads
from pydbgauto.sos.common import parse_hex
from pydbgauto.sos.objects import parse_dumpobj

_FIELD_ROW = re.compile(
    r"^\s*[0-9A-Fa-f`]+\s+[0-9A-Fa-f]+\s+[0-9A-Fa-f]+\s+\S+\s+\S+\s+\S+\s+(\S+)\s+(\w+)\s*$", re.MULTILINE
)
_STRING = re.compile(r"^String:[ \t]*(.*)$", re.MULTILINE)  # the label is padded (leading blanks are lost)


def parse_dumpobj_fields(text: str) -> Dict[str, str]:
    """``dumpobj``'s field table: name -> value as printed (hex for references, decimal for ints). Pure."""
    return {name: value for value, name in _FIELD_ROW.findall(text)}


def parse_string_object(text: str) -> Optional[str]:
    """``dumpobj`` of a System.String: its text (the ``String:`` line), None if there is none. Pure."""
    m = _STRING.search(text)
    return m.group(1) if m else None


def read_exception(
    sos: Callable[[str], str], address: Optional[int], thread_id: Optional[int], depth: Optional[int]
) -> Optional[ManagedException]:
    """The exception at ``address`` (None: the one ``clrthreads`` shows on ``thread_id``), frames left out."""
    if address is None:
        table = parse_threads(sos("clrthreads"))
        rows = [t for t in table.threads if t.os_id == thread_id and t.exception_address]
        if not rows:
            return None
        address = rows[0].exception_address
    assert address is not None
    text = sos(f"dumpobj 0x{address:x}")
    try:
        header = parse_dumpobj(text)
    except ParseError:
        return None
    fields = parse_dumpobj_fields(text)
    message = None
    message_at = fields.get("_message")
    if message_at and parse_hex(message_at):
        message = parse_string_object(sos(f"dumpobj 0x{parse_hex(message_at):x}"))
    hresult_text = fields.get("_HResult")
    hresult = (
        int(hresult_text) & 0xFFFFFFFF if hresult_text and re.fullmatch(r"-?\d+", hresult_text) else None
    )
    inner_at = fields.get("_innerException")
    inner = parse_hex(inner_at) if inner_at else None
    return ManagedException(
        address=address,
        type=header.name,
        message=message,
        inner_address=inner or None,
        hresult=hresult,
        truncated=(
            f"pe not run: its stack trace would list the thread's {depth or 'many'} frames (seconds to "
            "minutes of SOS); type, message and HResult read with dumpobj, frames left out"
        ),
        raw=text,
    )
