"""What SOS and the debugger report, as objects: exceptions (``pe``), stacks (``clrstack``), threads
(``clrthreads``), cdb event banners and ``.dump`` replies. Frozen attrs classes, pure, no I/O.

Numbers (addresses, ids, codes) are ints; a value SOS did not print is ``None``. Every class has a
readable ``__str__``, ``to_dict()`` and ``from_dict()`` (see :mod:`pydbgauto.models.base`).
"""

from __future__ import annotations

from typing import Any, ClassVar, Dict, Optional, Tuple, Type

import attr

from pydbgauto.models.base import _Model, hex_text

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
            return f"{self.name} = {self.object_type or self.type} at {hex_text(self.address)}"
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
        head = f"{self.type or '<unknown type>'} at {hex_text(self.address)}"
        if self.message is not None:
            head += f": {self.message}"
        if self.hresult is not None:
            head += f" (HResult {self.hresult:08x})"
        lines = [head]
        lines += [f"   at {frame}" for frame in self.frames]
        if self.inner_type is not None:
            lines.append(f" ---> inner {self.inner_type} at {hex_text(self.inner_address)}")
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
        lines = [f"OS Thread Id: {hex_text(self.os_thread_id)}{idx}"]
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
            text += f" {self.exception_type} {hex_text(self.exception_address)}"
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
