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
]
