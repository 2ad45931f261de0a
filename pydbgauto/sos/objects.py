"""``dumpobj`` and ``dumpmt`` headers: what the watch loop needs to walk an exception's base types. Pure."""

from __future__ import annotations

import re
from typing import Optional

import attr

from pydbgauto.errors import ParseError
from pydbgauto.sos.common import parse_hex

_FIELD = re.compile(r"^\s*(Name|MethodTable|Parent|EEClass):\s+(.*?)\s*$", re.MULTILINE)


@attr.frozen
class ObjectHeader:
    """``dumpobj``: the object's type name and MethodTable."""

    name: str
    method_table: int


@attr.frozen
class MethodTableHeader:
    """``dumpmt``: the type's name and the MethodTable of its base type (None for System.Object)."""

    name: str
    parent: Optional[int]


def _fields(text: str) -> dict:
    found: dict = {}
    for key, value in _FIELD.findall(text):
        found.setdefault(key, value)  # the header comes first; field tables below can repeat words
    return found


def parse_dumpobj(text: str) -> ObjectHeader:
    fields = _fields(text)
    if "Name" not in fields or "MethodTable" not in fields:
        raise ParseError(f"not dumpobj output (no Name/MethodTable header): {text[:200]!r}")
    return ObjectHeader(name=fields["Name"], method_table=parse_hex(fields["MethodTable"]))


def parse_dumpmt(text: str) -> MethodTableHeader:
    fields = _fields(text)
    if "Name" not in fields:
        raise ParseError(f"not dumpmt output (no Name header): {text[:200]!r}")
    parent_text = fields.get("Parent", "")
    parent = parse_hex(parent_text) if re.fullmatch(r"(0x)?[0-9A-Fa-f`]+", parent_text) else None
    return MethodTableHeader(name=fields["Name"], parent=parent or None)


_IP2MD = re.compile(r"^\s*MethodDesc:\s+([0-9A-Fa-f`]+)", re.MULTILINE)


def parse_ip2md(text: str) -> Optional[int]:
    """``ip2md``: the MethodDesc an instruction pointer belongs to, or None (not managed code)."""
    m = _IP2MD.search(text)
    return parse_hex(m.group(1)) if m else None


_BPMD = re.compile(r"^MethodDesc = ([0-9A-Fa-f`]+)", re.MULTILINE)


def parse_bpmd(text: str) -> Optional[int]:
    """``bpmd <module> <method>``: the MethodDesc it found, or None (not loaded yet: a pending breakpoint)."""
    m = _BPMD.search(text)
    return parse_hex(m.group(1)) if m else None
