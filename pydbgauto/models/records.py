"""What pydbgauto records about a watch: stops, dumps, decisions, captures and snapshots.

Frozen attrs classes, pure, no I/O; they hold the report models of :mod:`pydbgauto.models.reports` and
are written as JSON (capture and snapshot records, the decision log) with ``to_dict()``.
"""

from __future__ import annotations

import enum
from typing import ClassVar, Dict, Optional, Tuple, Type

import attr

from pydbgauto.models.base import _Model, hex_text
from pydbgauto.models.reports import ManagedException, ManagedStack, StackFrame, ThreadTable


class StopKind(str, enum.Enum):
    """Why the target stopped, as far as the debugger (not SOS) can tell."""

    FIRST_CHANCE = "first-chance"
    SECOND_CHANCE = "second-chance"
    EXIT = "exit"
    BREAK = "break"  # stopped on request (``break_in``), not by an event of its own
    OTHER = "other"

    # Printed as the plain value: Python 3.11 formats a str-mixin Enum as "StopKind.EXIT".
    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)


# Frames of the runtime's own dispatch code, above the thrower at a first-chance stop.
# .NET 9+'s managed exception dispatch, and its managed helpers that raise the runtime's own exceptions
# (a bounds check's IndexOutOfRangeException, a cast's InvalidCastException): the throw site is their
# caller, as on .NET 8, where those helpers are native code
_DISPATCH_PREFIXES = (
    "System.Runtime.EH.",
    "System.Runtime.ExceptionServices.InternalCalls.",
    "Internal.Runtime.CompilerHelpers.ThrowHelpers.",
)


@attr.frozen
class CrashInfo(_Model):
    """How a process is dying at a second-chance stop (see pydbgauto.crashes)."""

    kind: str  # "stack-overflow", "fail-fast", "unhandled-exception", "abort" (nothing more known)
    message: Optional[str] = None  # the fail-fast message, or the unhandled exception's message
    exception_type: Optional[str] = None  # as the runtime's report or pe names it
    report: Optional[str] = None  # the runtime's own report on the target's stderr, when readable

    def __str__(self) -> str:
        return self.kind + (f": {self.message}" if self.message else "")


@attr.frozen
class StopEvent(_Model):
    """One stop of the target that pydbgauto reports: an exception (first or second chance) or the exit.

    ``kind`` is a :class:`StopKind` (a str Enum: ``event.kind == "first-chance"`` holds, and JSON holds
    the plain value). ``exception`` and ``stack`` are the parsed ``pe`` and ``clrstack`` of the stopping
    thread (their ``raw`` keeps SOS's text); ``type_chain`` lists the exception type and its base types
    when a predicate asked for them. ``filtered``: a first-chance stop the debugger-side filter resumed
    without reporting it (only its type and address are known).
    """

    kind: StopKind = attr.field(converter=StopKind)
    sequence: int = 0
    pid: Optional[int] = None
    thread_id: Optional[int] = None
    exception_address: Optional[int] = None
    exception: Optional[ManagedException] = None
    stack: Optional[ManagedStack] = None
    type_chain: Tuple[str, ...] = ()
    exit_status: Optional[int] = None
    description: str = ""
    time: float = 0.0  # seconds since the epoch when pydbgauto saw the stop
    error: Optional[str] = None  # why exception or stack is missing, when SOS could not tell
    crash: Optional[CrashInfo] = None  # second chance: how the process is dying
    # A first-chance stop the debugger-side filter resumed without reporting (Session.take_filtered):
    # it has only the exception's address and type, no stack.
    filtered: bool = attr.field(default=False, metadata={"omit_if_false": True})
    # The debugger-side filter evaluated the predicate at this stop and it matched (a watch may then
    # write the dump before it reads pe and clrstack).
    matched_in_debugger: bool = attr.field(default=False, metadata={"omit_if_false": True})

    _nested: ClassVar[Dict[str, Type[_Model]]] = {
        "exception": ManagedException,
        "stack": ManagedStack,
        "crash": CrashInfo,
    }

    @property
    def exception_type(self) -> Optional[str]:
        return self.exception.type if self.exception else None

    @property
    def throw_site(self) -> Optional[StackFrame]:
        """The topmost managed frame that is not the runtime's exception dispatch: where it was thrown."""
        if self.stack is None:
            return None
        for frame in self.stack.frames:
            if frame.kind == "managed" and not (frame.method or frame.call_site).startswith(
                _DISPATCH_PREFIXES
            ):
                return frame
        return None

    def __str__(self) -> str:
        if self.kind == "exit":
            return f"#{self.sequence} exit (status {self.exit_status})"
        if self.kind == "break" and self.exception is None:
            return (
                f"#{self.sequence} break-in, every thread stopped; current thread {hex_text(self.thread_id)}"
            )
        what = self.exception_type or "unknown exception"
        text = f"#{self.sequence} {self.kind} {what} at {hex_text(self.exception_address)}"
        text += f" on thread {hex_text(self.thread_id)}"
        if self.exception and self.exception.message:
            text += f": {self.exception.message}"
        site = self.throw_site
        if site is not None:
            text += f"\n  thrown in {site.method or site.call_site}"
        return text


@attr.frozen
class DumpRecord(_Model):
    """A dump pydbgauto wrote: where, how big, and what the independent reader saw in it."""

    path: str
    size: int
    seconds: float  # time to write it
    sha256: Optional[str] = None
    verified: bool = False
    reader: Optional[str] = None  # the independent tool that reopened it
    verify_seconds: Optional[float] = None
    verify_error: Optional[str] = None  # why verification failed (None when verified or not asked)
    seen_exception_type: Optional[str] = None
    seen_thread_id: Optional[int] = None
    seen_stack: Optional[ManagedStack] = None  # the reader's clrstack of the thread: with file and line
    reader_warnings: Tuple[str, ...] = ()  # WARNING lines the reader printed for this dump
    # How long the target was held stopped for this capture (stop -> resume; a watch's captures).
    pause_seconds: Optional[float] = attr.field(default=None, metadata={"omit_if_none": True})

    _nested: ClassVar[Dict[str, Type[_Model]]] = {"seen_stack": ManagedStack}

    def __str__(self) -> str:
        state = (
            "verified"
            if self.verified
            else ("NOT verified: " + self.verify_error if self.verify_error else "not verified")
        )
        return f"{self.path} ({self.size / 1e6:.1f} MB, {self.seconds:.2f} s, {state})"


ACTIONS = ("dump", "skip")
# Why a stop got its action; pydbgauto.policy explains each reason and the order they are checked in.
REASONS = (
    "no-match",
    "matched",
    "skip-first",
    "limit",
    "cooldown",
    "duplicate-stack",
    "duplicate-object",
    "disk",
)


@attr.frozen
class DecisionRecord(_Model):
    """What the dump policy decided for one stop (``PolicyState.decide`` answers with it), and why.

    ``action``: ``dump`` or ``skip``; ``reason``: one of :data:`REASONS`; ``detail``: readable words;
    ``n``: a dump's 1-based capture number."""

    action: str = attr.field(validator=attr.validators.in_(ACTIONS))
    reason: str = attr.field(validator=attr.validators.in_(REASONS))
    detail: str = ""
    n: Optional[int] = None

    @property
    def dump(self) -> bool:
        return self.action == "dump"

    def __str__(self) -> str:
        head = f"dump #{self.n}" if self.dump else f"skip ({self.reason})"
        return f"{head}: {self.detail}" if self.detail else head


@attr.frozen
class CaptureRecord(_Model):
    """Everything pydbgauto knows about one captured exception; saved as JSON beside its dump."""

    event: StopEvent
    decision: DecisionRecord
    exception: Optional[ManagedException] = None
    stack: Optional[ManagedStack] = None
    threads: Optional[ThreadTable] = None
    inner_exceptions: Tuple[ManagedException, ...] = ()
    dump: Optional[DumpRecord] = None
    dump_error: Optional[str] = None
    predicate: str = ""
    timings: Dict[str, float] = attr.field(factory=dict)  # seconds: stop_to_dump_written, verify, ...
    versions: Dict[str, str] = attr.field(factory=dict)
    record_path: Optional[str] = None

    _nested: ClassVar[Dict[str, Type[_Model]]] = {
        "event": StopEvent,
        "decision": DecisionRecord,
        "exception": ManagedException,
        "stack": ManagedStack,
        "threads": ThreadTable,
        "inner_exceptions": ManagedException,
        "dump": DumpRecord,
    }

    def __str__(self) -> str:
        what = self.exception.type if self.exception else "unknown exception"
        where = str(self.dump) if self.dump else f"no dump ({self.dump_error or self.decision.reason})"
        return f"capture {self.decision.n or '-'}: {what} -> {where}"


@attr.frozen
class ThreadExceptionRecord(_Model):
    """An exception a thread holds at a snapshot: clrthreads' Exception column, read with ``pe``."""

    thread_id: int  # OS thread id
    exception: Optional[ManagedException] = None
    error: Optional[str] = None  # why pe could not read it

    _nested: ClassVar[Dict[str, Type[_Model]]] = {"exception": ManagedException}

    def __str__(self) -> str:
        what = str(self.exception).replace("\n", "\n  ") if self.exception else f"unreadable ({self.error})"
        return f"thread {hex_text(self.thread_id)}: {what}"


@attr.frozen
class SnapshotRecord(_Model):
    """A dump taken on demand (a hang dump): the stop, every thread's managed stack, the exceptions
    threads hold, and the dump; saved as JSON beside the dump (``pydbgauto dump``, ``pda.dump_now``)."""

    event: StopEvent
    threads: Optional[ThreadTable] = None
    stacks: Tuple[ManagedStack, ...] = ()  # clrstack -all: one per thread with managed frames
    exceptions: Tuple[ThreadExceptionRecord, ...] = ()
    dump: Optional[DumpRecord] = None
    dump_error: Optional[str] = None
    errors: Tuple[str, ...] = ()  # what could not be read (clrthreads, clrstack -all)
    timings: Dict[str, float] = attr.field(factory=dict)
    versions: Dict[str, str] = attr.field(factory=dict)
    record_path: Optional[str] = None

    _nested: ClassVar[Dict[str, Type[_Model]]] = {
        "event": StopEvent,
        "threads": ThreadTable,
        "stacks": ManagedStack,
        "exceptions": ThreadExceptionRecord,
        "dump": DumpRecord,
    }

    def __str__(self) -> str:
        where = str(self.dump) if self.dump else f"no dump ({self.dump_error})"
        threads = len(self.threads.threads) if self.threads else 0
        return (
            f"snapshot of pid {self.event.pid}: {threads} managed threads, {len(self.stacks)} stacks, "
            f"{len(self.exceptions)} current exceptions -> {where}"
        )
