"""The values pydbgauto hands around: frozen attrs classes, pure, no I/O.

Numbers (addresses, ids, codes) are ints; a value SOS did not print is ``None``. Every class
has a readable ``__str__``, ``to_dict()`` (JSON-ready: tuples become lists, nested objects
become dicts) and ``from_dict()`` (the inverse, so capture records can be read back).
``to_dict(include_raw=False)`` leaves out the ``raw`` input text, for compact records.

The SOS report models come first; the session models (stop events, dump and capture
records) follow at the bottom of the module.
"""

from __future__ import annotations

from typing import Any, ClassVar, Dict, Mapping, Optional, Tuple, Type, TypeVar, cast

import attr

_M = TypeVar("_M", bound="_Model")


def _hex(value: Optional[int]) -> str:
    return "?" if value is None else f"0x{value:x}"


class _Model:
    """to_dict/from_dict shared by the models below; each names its nested model fields."""

    __slots__ = ()

    # field name -> model class, for fields holding a model or a tuple of models
    _nested: ClassVar[Dict[str, Type["_Model"]]] = {}

    def to_dict(self, include_raw: bool = True) -> Dict[str, Any]:
        out: Dict[str, Any] = {}
        for field in attr.fields(cast(Any, type(self))):
            if field.name == "raw" and not include_raw:
                continue
            value = getattr(self, field.name)
            if value is None and field.metadata.get("omit_if_none"):
                continue  # an optional part that was not fetched: the record stays as it was without it
            if value is False and field.metadata.get("omit_if_false"):
                continue  # a flag that is rarely set: records without it read as before
            if isinstance(value, tuple):
                value = [v.to_dict(include_raw) if isinstance(v, _Model) else v for v in value]
            elif isinstance(value, _Model):
                value = value.to_dict(include_raw)
            out[field.name] = value
        return out

    @classmethod
    def from_dict(cls: Type[_M], data: Mapping[str, Any]) -> _M:
        """Build from ``to_dict()`` output; missing keys take the field default, unknown keys are refused."""
        names = {f.name for f in attr.fields(cast(Any, cls))}
        unknown = set(data) - names
        if unknown:
            raise ValueError(f"{cls.__name__}.from_dict: unknown keys {sorted(unknown)}")
        kwargs: Dict[str, Any] = {}
        for key, value in data.items():
            sub = cls._nested.get(key)
            if sub is not None and isinstance(value, list):
                value = tuple(sub.from_dict(v) for v in value)
            elif sub is not None and isinstance(value, Mapping):
                value = sub.from_dict(value)
            elif isinstance(value, list):
                value = tuple(value)
            kwargs[key] = value
        return cls(**kwargs)


# ---------------------------------------------------------------------------------------------
# pe / printexception


@attr.frozen
class ExceptionFrame(_Model):
    """One row of ``StackTrace (generated)``: ``<sp> <ip> <module>!<method>+0x<offset> [file @ line]``."""

    sp: Optional[int]
    ip: Optional[int]
    module: Optional[str]
    method: str  # the full signature as printed, e.g. "Ns.Type.Method(System.String[])"
    offset: Optional[int] = None
    source_file: Optional[str] = None
    line: Optional[int] = None

    def __str__(self) -> str:
        where = f"{self.module}!" if self.module else ""
        off = f"+0x{self.offset:x}" if self.offset is not None else ""
        src = f" [{self.source_file} @ {self.line}]" if self.source_file else ""
        return f"{where}{self.method}{off}{src}"


@attr.frozen
class ObjectField(_Model):
    """One instance field of an object, as ``dumpobj`` lists it, with its value decoded.

    ``value``: a ``str`` for a string field (read with a second ``dumpobj``), an ``int``/``bool``/``float``
    for a primitive, ``None`` for a null reference, else (an object, a struct) the address or the text
    SOS printed. ``address``/``object_type``: a non-null reference field's object and its actual type.
    ``type`` is the declared type as SOS prints it (long names are cut at the left with "...").
    """

    name: str
    type: str
    value: Any = None
    address: Optional[int] = None
    object_type: Optional[str] = None
    value_type: bool = False

    def __str__(self) -> str:
        if self.address is not None and not isinstance(self.value, str):
            return f"{self.name} = {self.object_type or self.type} at {_hex(self.address)}"
        return f"{self.name} = {self.value!r}"


@attr.frozen
class ManagedException(_Model):
    """The output of ``!pe`` / ``pe`` / ``printexception`` for one exception object.

    ``fields``: the object's own instance fields (``dumpobj``), when a predicate needed them (None: not
    read; see ``pydbgauto.fields``).
    """

    address: int
    type: Optional[str]  # "<Unknown>" is kept as printed; None only if the line was missing
    message: Optional[str]  # None for "<none>"
    inner_type: Optional[str] = None
    inner_address: Optional[int] = None
    frames: Tuple[ExceptionFrame, ...] = ()
    stack_trace_string: Optional[str] = None  # None for "<none>"
    hresult: Optional[int] = None
    has_nested: bool = False  # the "There are nested exceptions" note, or -nested blocks present
    nested: Tuple["ManagedException", ...] = ()  # the blocks after "Nested exception ---" (-nested)
    raw: str = attr.field(default="", repr=False, eq=False)
    fields: Optional[Tuple[ObjectField, ...]] = attr.field(default=None, metadata={"omit_if_none": True})
    # what was not read (pe skipped on a too-deep thread: pydbgauto.bounded)
    truncated: Optional[str] = attr.field(default=None, metadata={"omit_if_none": True})

    _nested: ClassVar[Dict[str, Type[_Model]]] = {}

    def field(self, name: str, default: Any = None) -> Any:
        """The value of the instance field ``name`` (``fields`` must have been read), else ``default``."""
        for item in self.fields or ():
            if item.name == name:
                return item.value
        return default

    def __str__(self) -> str:
        head = f"{self.type or '<unknown type>'} at {_hex(self.address)}"
        if self.message is not None:
            head += f": {self.message}"
        if self.hresult is not None:
            head += f" (HResult {self.hresult:08x})"
        lines = [head]
        lines += [f"   at {frame}" for frame in self.frames]
        if self.inner_type is not None:
            lines.append(f" ---> inner {self.inner_type} at {_hex(self.inner_address)}")
        for exc in self.nested:
            lines.append(" --- nested: " + str(exc).replace("\n", "\n    "))
        if self.has_nested and not self.nested:
            lines.append(" (there are nested exceptions on this thread)")
        return "\n".join(lines)


ManagedException._nested = {"frames": ExceptionFrame, "nested": ManagedException, "fields": ObjectField}


# ---------------------------------------------------------------------------------------------
# clrstack

FRAME_KINDS = ("managed", "runtime", "native")


@attr.frozen
class StackFrame(_Model):
    """One ``clrstack`` row. ``kind``: managed, runtime (``[XxxFrame: addr]``), native (``-f``)."""

    sp: int
    ip: Optional[int]  # None where the IP column is blank (runtime frames under -f)
    call_site: str  # as printed, without the "[file @ line]" / " at file:line" suffix
    kind: str = attr.field(default="managed", validator=attr.validators.in_(FRAME_KINDS))
    frame_type: Optional[str] = None  # "HelperMethodFrame" for [HelperMethodFrame: ...]
    method: Optional[str] = None  # signature without module prefix and " + <disp>"
    source_file: Optional[str] = None
    line: Optional[int] = None
    module: Optional[str] = None  # "X.dll" for -f managed frames, "libcoreclr.so" for native ones
    offset: Optional[int] = None  # the decimal " + 60" displacement -f prints

    def __str__(self) -> str:
        src = f" [{self.source_file} @ {self.line}]" if self.source_file else ""
        ip = "" if self.ip is None else format(self.ip, "016x")
        return f"{self.sp:016x} {ip:>16} {self.call_site}{src}"


@attr.frozen
class ManagedStack(_Model):
    """``clrstack`` for one thread (``parse_clrstack_all`` gives one per thread)."""

    os_thread_id: Optional[int]
    debugger_thread_index: Optional[int] = None  # absent in clrstack -all
    frames: Tuple[StackFrame, ...] = ()
    error: Optional[str] = None  # SOS could not (fully) walk this stack; frames may still be partial
    raw: str = attr.field(default="", repr=False, eq=False)
    # What was left out when the stack was too deep to read whole (None: every frame is here); see
    # pydbgauto.sos.deepstack. ``depth``: the thread's frame count, when it was counted.
    truncated: Optional[str] = attr.field(default=None, metadata={"omit_if_none": True})
    depth: Optional[int] = attr.field(default=None, metadata={"omit_if_none": True})

    _nested: ClassVar[Dict[str, Type[_Model]]] = {"frames": StackFrame}

    def __str__(self) -> str:
        idx = "" if self.debugger_thread_index is None else f" ({self.debugger_thread_index})"
        lines = [f"OS Thread Id: {_hex(self.os_thread_id)}{idx}"]
        lines += [f"  {frame}" for frame in self.frames]
        if self.error:
            lines.append(f"  error: {self.error}")
        if self.truncated:
            lines.append(f"  truncated: {self.truncated}")
        return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# clrthreads / !threads


@attr.frozen
class ManagedThread(_Model):
    """One row of the ``clrthreads`` table."""

    dbg_id: Optional[int]  # None for XXXX (dead, or no OS thread the debugger knows)
    managed_id: int
    os_id: int
    thread_obj: int
    state: int
    gc_mode: str  # Preemptive / Cooperative (old SOS: Enabled / Disabled)
    apartment: str  # MTA / STA / NTA / Ukn
    special: Optional[str] = None  # "Finalizer", "Threadpool Worker", several joined by ", "
    exception_type: Optional[str] = None
    exception_address: Optional[int] = None
    nested: bool = False  # "(nested exceptions)"

    def __str__(self) -> str:
        dbg = "XXXX" if self.dbg_id is None else str(self.dbg_id)
        text = f"{dbg:>4} {self.managed_id:>4} {self.os_id:>6x} {self.gc_mode} {self.apartment}"
        if self.special:
            text += f" ({self.special})"
        if self.exception_type:
            text += f" {self.exception_type} {_hex(self.exception_address)}"
        if self.nested:
            text += " (nested exceptions)"
        return text


@attr.frozen
class ThreadTable(_Model):
    """``clrthreads``: the counters and the thread rows."""

    thread_count: Optional[int]
    unstarted: Optional[int] = None
    background: Optional[int] = None
    pending: Optional[int] = None
    dead: Optional[int] = None
    hosted_runtime: Optional[str] = None  # "no", or "yes (...)"
    threads: Tuple[ManagedThread, ...] = ()
    raw: str = attr.field(default="", repr=False, eq=False)

    _nested: ClassVar[Dict[str, Type[_Model]]] = {"threads": ManagedThread}

    def __str__(self) -> str:
        head = (
            f"ThreadCount {self.thread_count}, unstarted {self.unstarted}, background {self.background}, "
            f"pending {self.pending}, dead {self.dead}"
        )
        return "\n".join([head] + [f"  {t}" for t in self.threads])


# ---------------------------------------------------------------------------------------------
# cdb events and .dump


@attr.frozen
class DebugEvent(_Model):
    """A cdb event banner ``(pid.tid): <description> - code <hex> (first chance)`` or ``.lastevent``."""

    pid: int
    tid: int
    description: str
    code: Optional[int] = None
    chance: Optional[int] = None  # 1, 2, or None when not stated
    clr_type: Optional[str] = None  # "CLR exception type: X" that newer WinDbg prints after the banner
    clr_message: Optional[str] = None
    location: Optional[str] = None  # "module!symbol+0x69" when printed

    def __str__(self) -> str:
        text = f"({self.pid:x}.{self.tid:x}) {self.description}"
        if self.code is not None:
            text += f" - code {self.code:08x}"
        if self.chance is not None:
            text += " (first chance)" if self.chance == 1 else " (second chance)"
        if self.clr_type:
            text += f" {self.clr_type}"
        if self.clr_message is not None:
            text += f": {self.clr_message}"
        if self.location:
            text += f" at {self.location}"
        return text


@attr.frozen
class DumpResult(_Model):
    """cdb's reply to ``.dump``. ``success`` only when "Dump successfully written" was seen."""

    path: Optional[str]
    success: bool
    error: Optional[str] = None

    def __str__(self) -> str:
        if self.success:
            return f"dump written: {self.path}"
        return f"dump failed: {self.path or '?'}: {self.error}"


# ---------------------------------------------------------------------------------------------
# Session models (StopEvent, DumpRecord, CaptureRecord) go below this line.

# Frames of the runtime's own dispatch code, above the thrower at a first-chance stop.
_DISPATCH_PREFIXES = ("System.Runtime.EH.", "System.Runtime.ExceptionServices.InternalCalls.")


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

    ``exception`` and ``stack`` are the parsed ``pe`` and ``clrstack`` of the stopping thread (their
    ``raw`` keeps SOS's text); ``type_chain`` lists the exception type and its base types when a
    predicate asked for them.
    """

    kind: str  # "first-chance", "second-chance", "exit", "break" (Session.break_in)
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
            return f"#{self.sequence} break-in, every thread stopped; current thread {_hex(self.thread_id)}"
        what = self.exception_type or "unknown exception"
        text = f"#{self.sequence} {self.kind} {what} at {_hex(self.exception_address)}"
        text += f" on thread {_hex(self.thread_id)}"
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


@attr.frozen
class DecisionRecord(_Model):
    """What the dump policy decided for one stop, and why (see pydbgauto.policy for the reasons)."""

    action: str  # "dump" or "skip"
    reason: str  # "matched", "no-match", "limit", "cooldown", "duplicate-stack", "duplicate-object", ...
    detail: str = ""
    n: Optional[int] = None  # capture number of a dump

    def __str__(self) -> str:
        return f"{self.action} ({self.reason}){': ' + self.detail if self.detail else ''}"


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
        return f"thread {_hex(self.thread_id)}: {what}"


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
