"""The values pydbgauto hands around: frozen attrs classes, pure, no I/O.

Numbers (addresses, ids, codes) are ints; a value SOS did not print is ``None``. Every class has a
readable ``__str__``, ``to_dict()`` (JSON-ready: tuples become lists, nested objects become dicts) and
``from_dict()`` (the inverse, so capture records can be read back). ``to_dict(include_raw=False)``
leaves out the ``raw`` input text, for compact records.

:mod:`~pydbgauto.models.reports` holds what SOS and the debugger report (exceptions, stacks, threads,
events); :mod:`~pydbgauto.models.records` what pydbgauto records (stops, dumps, decisions, captures,
snapshots); :mod:`~pydbgauto.models.base` the shared ``to_dict``/``from_dict``. Import from here.
"""

# _Model is the base of models defined elsewhere (pydbgauto.analyze): importable from here too.
from pydbgauto.models.base import _Model, hex_text  # noqa: F401
from pydbgauto.models.records import (
    ACTIONS,
    REASONS,
    CaptureRecord,
    CrashInfo,
    DecisionRecord,
    DumpRecord,
    SnapshotRecord,
    StopEvent,
    StopKind,
    ThreadExceptionRecord,
)
from pydbgauto.models.reports import (
    FRAME_KINDS,
    DebugEvent,
    DumpResult,
    ExceptionFrame,
    ManagedException,
    ManagedStack,
    ManagedThread,
    ObjectField,
    StackFrame,
    ThreadTable,
)

__all__ = [
    "ACTIONS",
    "FRAME_KINDS",
    "REASONS",
    "CaptureRecord",
    "CrashInfo",
    "DebugEvent",
    "DecisionRecord",
    "DumpRecord",
    "DumpResult",
    "ExceptionFrame",
    "ManagedException",
    "ManagedStack",
    "ManagedThread",
    "ObjectField",
    "SnapshotRecord",
    "StackFrame",
    "StopEvent",
    "StopKind",
    "ThreadExceptionRecord",
    "ThreadTable",
    "hex_text",
]
