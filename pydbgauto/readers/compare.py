"""The one comparison of what a dump should hold (the stop it was written at) with what a reader read.

Pure. :class:`Expected` is made from the ``StopEvent`` of the stop (``verify_dump``) or from the capture
record beside a dump (``analyze``); :class:`Seen` is what a reader read, each fact None when that reader
did not read it. :func:`compare` checks every fact that was read and returns (problems, notes): no
problems means the dump shows the stop. :func:`verified_record` puts the verdict on a ``DumpRecord``.
"""

from __future__ import annotations

from typing import Any, List, Optional, Tuple

import attr

from pydbgauto.models import CaptureRecord, DumpRecord, ManagedException, StopEvent, ThreadTable
from pydbgauto.models import hex_text as _hex

__all__ = ["Expected", "Seen", "compare", "failed_record", "verified_record"]


@attr.frozen
class Expected:
    """What the dump must show."""

    thread_id: Optional[int] = None  # the stopped thread (None: any, e.g. at a break-in)
    exception_type: Optional[str] = None  # None: the stop had no exception
    exception_address: Optional[int] = None
    at_break: bool = False  # a stop with no exception: the dump must list a managed thread
    # The exception was read without pe live (too deep a trace): look for it in the thread list instead.
    listed_only: bool = False
    # The thread's stack was too deep for clrstack: look for the thread in the thread list instead.
    stack_too_deep: bool = False
    source: str = "the stop"  # who says so, for the messages

    @classmethod
    def from_event(cls, event: Optional[StopEvent]) -> "Expected":
        if event is None or event.kind == "break":
            # The selected thread of a break-in may run no managed code: only the thread list counts.
            return cls(at_break=True)
        exc = event.exception
        listed_only = exc is not None and bool(exc.truncated)
        address = event.exception_address
        if listed_only and not address and exc is not None:
            address = exc.address  # the thread list shows the object's address: compare it
        return cls(
            thread_id=event.thread_id,
            exception_type=exc.type if exc is not None else None,
            exception_address=address,
            listed_only=listed_only,
            stack_too_deep=event.stack is not None and bool(event.stack.truncated),
        )

    @classmethod
    def from_capture(cls, capture: CaptureRecord) -> "Expected":
        event = capture.event
        return cls(
            thread_id=event.thread_id,
            exception_type=capture.exception.type if capture.exception else event.exception_type,
            exception_address=event.exception_address,
            source="the capture record",
        )

    @property
    def want(self) -> str:
        return f"{self.exception_type or '?'} at {_hex(self.exception_address)}"


@attr.frozen
class Seen:
    """What a reader read in the dump; None: not read by this reader."""

    threads: Optional[ThreadTable] = None  # the managed thread list (clrthreads / !threads)
    threads_read: bool = False  # the reader asked for the thread list (so None means it printed none)
    exception_read: bool = False  # the reader read the thread's exception (on_thread, at_address)
    on_thread: Optional[Tuple[Optional[str], Optional[int]]] = None  # (type, address) the thread holds
    at_address: Optional[ManagedException] = None  # the object at the expected exception's address
    stack_thread_id: Optional[int] = None  # whose managed stack the reader printed
    stack_read: bool = False  # the reader asked for the expected thread's stack
    event_thread_id: Optional[int] = None  # the thread of the dump's last event (cdb's .lastevent)
    event_read: bool = False
    problems: Tuple[str, ...] = ()  # facts the reader could not read (SOS did not load, a reply unparsable)

    @classmethod
    def of(cls, exc: Optional[ManagedException]) -> Optional[Tuple[Optional[str], Optional[int]]]:
        return (exc.type, exc.address) if exc is not None else None


def compare(expected: Expected, seen: Seen) -> Tuple[List[str], List[str]]:
    """(problems, notes): what in ``seen`` disagrees with ``expected``, and what agrees only in part."""
    problems: List[str] = list(seen.problems)
    notes: List[str] = []
    tid = expected.thread_id
    listed = seen.threads.threads if seen.threads is not None else ()
    if seen.threads_read:
        if seen.threads is None:
            problems.append("the reader printed no thread list")
        elif expected.at_break and not listed:
            problems.append("the reader's thread list has no managed thread")
        elif tid is not None and (expected.stack_too_deep or not seen.stack_read):
            if not any(t.os_id == tid for t in listed):
                problems.append(f"the thread {_hex(tid)} is not in the dump's managed thread list")
    if seen.event_read and tid is not None and seen.event_thread_id != tid:
        problems.append(
            f"the dump's last event is on thread {_hex(seen.event_thread_id)}, expected {_hex(tid)}"
            if seen.event_thread_id is not None
            else "the dump's last event names no thread"
        )
    if expected.exception_type is not None:
        if expected.listed_only:
            row = next((t for t in listed if t.os_id == tid), None)
            if (
                row is None
                or row.exception_type != expected.exception_type
                or row.exception_address != expected.exception_address
            ):
                problems.append(f"the dump's thread list does not show {expected.want} on thread {_hex(tid)}")
        elif seen.exception_read:
            problems += _compare_exception(expected, seen, notes)
    if seen.stack_read and not expected.stack_too_deep and tid is not None and seen.stack_thread_id != tid:
        problems.append(f"thread {_hex(tid)} has no managed stack in the dump")
    return problems, notes


def _matches(expected: Expected, type_: Optional[str], address: Optional[int]) -> bool:
    return type_ == expected.exception_type and (
        expected.exception_address is None or address == expected.exception_address
    )


def _compare_exception(expected: Expected, seen: Seen, notes: List[str]) -> List[str]:
    """The thread's exception must be the expected one; else the expected object must be in the dump."""
    tid, want, source = expected.thread_id, expected.want, expected.source
    at = seen.at_address
    at_matches = at is not None and _matches(expected, at.type, at.address)
    if seen.on_thread is not None:
        if _matches(expected, *seen.on_thread):
            return []
        held = f"{seen.on_thread[0] or '?'} at {_hex(seen.on_thread[1])}"
        if at_matches:
            notes.append(f"thread {_hex(tid)} now holds {held}; the expected {want} is in the dump too")
            return []
        return [f"thread {_hex(tid)} holds {held}; {source} says {want}"]
    # The thread shows no exception (a first-chance stop before the runtime recorded it, or the reader
    # looked by address only): the expected object must at least be in the dump, with the expected type.
    if expected.exception_address is None:
        return [f"thread {_hex(tid)} holds no exception; {source} says {want}"]
    if at is None:
        return [
            f"no exception object at {_hex(expected.exception_address)} in the dump; {source} says {want}"
        ]
    if not at_matches:
        return [f"the object at {_hex(expected.exception_address)} is a {at.type}; {source} says {want}"]
    if tid is not None:
        notes.append(f"thread {_hex(tid)} lists no exception; the expected {want} was found by its address")
    return []


def verified_record(
    record: DumpRecord, reader: str, expected: Expected, seen: Seen, seconds: float, **facts: Any
) -> DumpRecord:
    """``record`` with the verdict of :func:`compare` and what the reader saw (``facts``: seen_* fields)."""
    problems, _ = compare(expected, seen)
    if expected.listed_only and not problems and facts.get("seen_exception_type") is None:
        facts["seen_exception_type"] = expected.exception_type  # the thread list shows it
    return attr.evolve(
        record,
        verified=not problems,
        reader=reader,
        verify_seconds=seconds,
        verify_error="; ".join(problems) or None,
        **facts,
    )


def failed_record(record: DumpRecord, reader: str, error: Exception, seconds: float) -> DumpRecord:
    """``record`` not verified because the reader could not read the dump (``error`` says why)."""
    return attr.evolve(record, verified=False, reader=reader, verify_seconds=seconds, verify_error=str(error))
