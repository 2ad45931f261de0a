"""pydbgauto: catch a .NET process at the exception you care about, and keep a full dump of it."""

from pydbgauto.errors import (
    ConfigurationError,
    DebuggerDiedError,
    DebuggerError,
    DebuggerNotFoundError,
    DebuggerTimeoutError,
    DumpError,
    DumpVerificationError,
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
    DebugEvent,
    DumpResult,
    ExceptionFrame,
    ManagedException,
    ManagedStack,
    ManagedThread,
    StackFrame,
    ThreadTable,
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
    "ConfigurationError",
    "DebuggerDiedError",
    "DebuggerError",
    "DebuggerNotFoundError",
    "DebuggerTimeoutError",
    "DumpError",
    "DumpVerificationError",
    "NoSuchProcessError",
    "NotDotnetError",
    "ParseError",
    "PydbgautoError",
    "SosError",
    "TargetError",
    "TargetExitedError",
    "UnsafeInputError",
    # SOS models and parsers
    "DebugEvent",
    "DumpResult",
    "ExceptionFrame",
    "ManagedException",
    "ManagedStack",
    "ManagedThread",
    "StackFrame",
    "ThreadTable",
    "parse_clrstack",
    "parse_clrstack_all",
    "parse_dump_result",
    "parse_events",
    "parse_pe",
    "parse_threads",
]
