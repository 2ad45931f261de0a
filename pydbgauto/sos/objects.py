"""``dumpobj`` and ``dumpmt`` headers: what the watch loop needs to walk an exception's base types. Pure."""

from __future__ import annotations

import re
from typing import Optional, Tuple

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


# ----- dumpobj's field table, strings, dumparray --------------------------------------------------------

# MT, Field, Offset, Type, VT (0/1 or No/Yes), Attr, Value, Name: the type may hold spaces in generics
_FIELD_ROW = re.compile(
    r"^\s*(?P<mt>[0-9A-Fa-f`]+)\s+(?P<token>[0-9A-Fa-f]+)\s+(?P<offset>[0-9A-Fa-f]+)\s+(?P<type>.+?)\s+"
    r"(?P<vt>0|1|No|Yes)\s+(?P<attr>instance|static|TLstatic|CLstatic)\s+(?P<value>\S+)\s+(?P<name>\S+)\s*$"
)


@attr.frozen
class FieldRow:
    """One row of ``dumpobj``'s field table, as printed."""

    method_table: int
    type: str
    value_type: bool
    attribute: str  # "instance", "static", ...
    value: str
    name: str
    offset: Optional[
        int
    ] = None  # the field's offset from the object's address (its MethodTable pointer is at 0)


def parse_dumpobj_fields(text: str) -> Tuple[FieldRow, ...]:
    """The rows of ``dumpobj``'s ``Fields:`` table (instance and static, in order)."""
    if "Name:" not in text:
        raise ParseError(f"not dumpobj output (no Name header): {text[:200]!r}")
    rows = []
    in_table = False
    for line in text.splitlines():
        if line.startswith("Fields:"):
            in_table = True
            continue
        if not in_table:
            continue
        m = _FIELD_ROW.match(line)
        if m:
            rows.append(
                FieldRow(
                    method_table=parse_hex(m.group("mt")),
                    type=m.group("type"),
                    value_type=m.group("vt") in ("1", "Yes"),
                    attribute=m.group("attr"),
                    value=m.group("value"),
                    name=m.group("name"),
                    offset=int(m.group("offset"), 16),
                )
            )
    return tuple(rows)


def parse_dumpobj_string(text: str) -> Optional[str]:
    """The text of a ``System.String`` from its ``dumpobj`` (the ``String:`` part), or None if not one."""
    m = re.search(r"^String:\s?(.*?)\n(?=Fields:|\Z)", text, re.MULTILINE | re.DOTALL)
    if m is None:
        return None
    return m.group(1).lstrip(" ")


_ARRAY_ELEMENT = re.compile(r"^\[(\d+)\]\s+(null|[0-9A-Fa-f`]+)\s*$", re.MULTILINE)


def parse_dumparray(text: str) -> Tuple[Optional[int], ...]:
    """The element addresses of a reference-type array from ``dumparray`` (None for a null element)."""
    if "Name:" not in text and "Number of elements" not in text:
        raise ParseError(f"not dumparray output: {text[:200]!r}")
    return tuple(None if value == "null" else parse_hex(value) for _, value in _ARRAY_ELEMENT.findall(text))
