"""An exception's own data: its instance fields (``dumpobj``), and all of an AggregateException's inner
exceptions. Read through a Session, only when a predicate needs them (``"fields"`` in its ``needs``)::

    exc = read_fields(session, event.exception)      # a ManagedException with .fields filled
    exc.field("_paramName")                          # 'order'

Cost: one ``dumpobj`` for the exception, and one more per non-null reference field (to decode a string
or name the object's type). Strings and primitives are decoded; other objects are their address and
type.
"""

from __future__ import annotations

import logging
from typing import Any, List, Optional, Tuple

import attr

from pydbgauto.errors import ParseError, PydbgautoError
from pydbgauto.models import ManagedException, ObjectField, StopEvent
from pydbgauto.sos.objects import (
    FieldRow,
    parse_dumparray,
    parse_dumpobj,
    parse_dumpobj_fields,
    parse_dumpobj_string,
)

log = logging.getLogger(__name__)

__all__ = ["read_fields", "aggregate_inner_exceptions", "decode", "with_fields"]

AGGREGATE = "System.AggregateException"
MAX_AGGREGATE_INNER = 64
_SIGNED = {"System.SByte", "System.Int16", "System.Int32", "System.Int64"}
_UNSIGNED = {"System.Byte", "System.UInt16", "System.UInt32", "System.UInt64"}
_POINTERS = {"System.IntPtr", "System.UIntPtr"}
_FLOATS = {"System.Single", "System.Double"}


def decode(row: FieldRow) -> Any:
    """A primitive field's value from SOS's text (integers decimal, Char and pointers hex), else the text."""
    text = row.value
    try:
        if row.type in _SIGNED or row.type in _UNSIGNED:
            return int(text, 10)
        if row.type == "System.Boolean":
            return text not in ("0", "false", "False")
        if row.type == "System.Char":
            return chr(int(text, 16))
        if row.type in _POINTERS:
            return int(text, 16)
        if row.type in _FLOATS:
            return float(text)
    except ValueError:
        pass
    return text


def _is_null(text: str) -> bool:
    return text.strip("0`") == "" or text == "null"


def read_fields(session: Any, exception: ManagedException) -> ManagedException:
    """``exception`` with ``fields``: every instance field ``dumpobj`` lists (base classes' too)."""
    if exception.fields is not None or not exception.address:
        return exception
    rows = parse_dumpobj_fields(session.sos(f"dumpobj 0x{exception.address:x}"))
    fields: List[ObjectField] = []
    for row in rows:
        if row.attribute != "instance":
            continue
        if row.value_type:
            fields.append(ObjectField(name=row.name, type=row.type, value=decode(row), value_type=True))
            continue
        if _is_null(row.value):
            fields.append(ObjectField(name=row.name, type=row.type, value=None))
            continue
        address = int(row.value.replace("`", ""), 16)
        fields.append(_reference(session, row, address))
    return attr.evolve(exception, fields=tuple(fields))


def _reference(session: Any, row: FieldRow, address: int) -> ObjectField:
    try:
        text = session.sos(f"dumpobj 0x{address:x}")
        object_type: Optional[str] = parse_dumpobj(text).name
    except (ParseError, PydbgautoError) as e:
        log.debug("dumpobj of field %s at %#x failed: %s", row.name, address, e)
        return ObjectField(name=row.name, type=row.type, value=address, address=address)
    if object_type == "System.String":
        value = parse_dumpobj_string(text)
        return ObjectField(
            name=row.name, type=row.type, value=value, address=address, object_type=object_type
        )
    return ObjectField(name=row.name, type=row.type, value=address, address=address, object_type=object_type)


def aggregate_inner_exceptions(
    session: Any, exception: ManagedException
) -> Optional[Tuple[ManagedException, ...]]:
    """All inner exceptions of a ``System.AggregateException`` (its ``_innerExceptions``, a
    ReadOnlyCollection over an Exception[]), read with ``pe``; None for any other exception or when the
    collection cannot be read (then the usual ``InnerException`` chain applies)."""
    if exception.type != AGGREGATE or not exception.address:
        return None
    try:
        own = read_fields(session, exception)
        collection = next((f for f in own.fields or () if f.name == "_innerExceptions"), None)
        if collection is None or collection.address is None:
            return None
        inside = read_fields(session, ManagedException(address=collection.address, type=None, message=None))
        array = next((f for f in inside.fields or () if f.name in ("list", "_list")), None)
        if array is None or array.address is None:
            return None
        addresses = parse_dumparray(session.sos(f"dumparray 0x{array.address:x}"))
        found = []
        for address in addresses[:MAX_AGGREGATE_INNER]:
            if address:
                parsed = session.exception(address)
                if parsed is not None:
                    found.append(parsed)
        return tuple(found)
    except (ParseError, PydbgautoError) as e:
        log.warning(
            "could not read the inner exceptions of the AggregateException at %#x: %s", exception.address, e
        )
        return None


def with_fields(
    session: Any, event: StopEvent, inner: Tuple[ManagedException, ...]
) -> Tuple[StopEvent, Tuple[ManagedException, ...]]:
    """The event's exception and the inner exceptions with their ``fields`` read (left as they were where
    SOS could not read them: a predicate on fields is then false, not an error)."""
    exception = event.exception
    if exception is not None:
        try:
            event = attr.evolve(event, exception=read_fields(session, exception))
        except (ParseError, PydbgautoError) as e:
            log.warning(
                "could not read the fields of %s at %#x: %s", exception.type, exception.address or 0, e
            )
    read: List[ManagedException] = []
    for item in inner:
        try:
            read.append(read_fields(session, item))
        except (ParseError, PydbgautoError) as e:
            log.warning("could not read the fields of inner %s: %s", item.type, e)
            read.append(item)
    return event, tuple(read)
