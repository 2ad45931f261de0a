"""pydbgauto: catch a .NET process at the exception you care about, and keep a full dump of it.

Parse saved SOS text with ``parse_pe`` / ``parse_clrstack`` (no debugger needed); drive a debugger with
``Session``; run the whole job with ``watch``. ``import pydbgauto`` loads only the pure parts (models,
parsers, predicates, policy): sessions, drivers, the process helpers and analyze load on first use.
"""

from typing import Any

from pydbgauto.errors import (
    AgentLoadError,
    AlreadyTracedError,
    ConfigurationError,
    DebuggerDiedError,
    DebuggerError,
    DebuggerNotAnsweringError,
    DebuggerNotFoundError,
    DebuggerTimeoutError,
    DiskSpaceError,
    DumpError,
    DumpVerificationError,
    Interrupted,
    NoSuchProcessError,
    NotDotnetError,
    ParseError,
    PydbgautoError,
    SosError,
    TargetError,
    TargetExitedError,
    UnsafeInputError,
)
from pydbgauto.models import (
    CaptureRecord,
    ObjectField,
    SnapshotRecord,
    DebugEvent,
    DecisionRecord,
    DumpRecord,
    DumpResult,
    ExceptionFrame,
    ManagedException,
    ManagedStack,
    ManagedThread,
    StackFrame,
    StopEvent,
    ThreadTable,
)
from pydbgauto.policy import DumpPolicy
from pydbgauto.predicates import (
    Predicate,
    as_predicate,
    exception_type,
    field,
    first_chance,
    hresult,
    inner,
    message_matches,
    second_chance,
    thrown_in,
    uses_fields,
)
from pydbgauto.sos import (
    parse_clrstack,
    parse_clrstack_all,
    parse_dump_result,
    parse_events,
    parse_pe,
    parse_threads,
)

__version__ = "0.1.0"

__all__ = [
    "AgentLoadError",
    "CaptureRecord",
    "AlreadyTracedError",
    "ConfigurationError",
    "DebugEvent",
    "DebuggerDiedError",
    "DebuggerError",
    "DebuggerNotFoundError",
    "DebuggerTimeoutError",
    "DebuggerNotAnsweringError",
    "DiskSpaceError",
    "Interrupted",
    "DecisionRecord",
    "DumpError",
    "DumpPolicy",
    "DumpRecord",
    "DumpResult",
    "DumpVerificationError",
    "ExceptionFrame",
    "ManagedException",
    "ManagedStack",
    "ManagedThread",
    "NoSuchProcessError",
    "NotDotnetError",
    "ObjectField",
    "ParseError",
    "Predicate",
    "PydbgautoError",
    "Session",
    "SnapshotRecord",
    "SosError",
    "StackFrame",
    "StopEvent",
    "TargetError",
    "TargetExitedError",
    "ThreadTable",
    "UnsafeInputError",
    "WatchResult",
    "analyze",
    "as_predicate",
    "dump_now",
    "exception_type",
    "field",
    "first_chance",
    "hresult",
    "inner",
    "message_matches",
    "parse_clrstack",
    "parse_clrstack_all",
    "parse_dump_result",
    "parse_events",
    "parse_pe",
    "parse_threads",
    "second_chance",
    "thrown_in",
    "uses_fields",
    "watch",
]

# The module is `watching`, not `watch`: importing a submodule named like a public function would
# replace the function on the package (pda.watch would become the module).
_LAZY = {"Session": "pydbgauto.session", "watch": "pydbgauto.watching", "WatchResult": "pydbgauto.watching"}
_LAZY.update(dump_now="pydbgauto.snapshot", analyze="pydbgauto.analysis")
# (the module is `surveying`, not `survey`, for the same reason)
_LAZY.update(survey="pydbgauto.surveying", SurveyResult="pydbgauto.surveying")
_LAZY.update(watch_all="pydbgauto.multi", MultiWatchResult="pydbgauto.multi")
__all__ += ["MultiWatchResult", "SurveyResult", "survey", "watch_all"]


def __getattr__(name: str) -> Any:
    """The names in ``_LAZY`` load their module (and its debugger machinery) on first use."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'pydbgauto' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip __getattr__
    return value


def _install_display() -> None:
    from pydbgauto import display

    display.install_reprs()


_install_display()
