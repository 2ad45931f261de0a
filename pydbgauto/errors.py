"""The one tree of pydbgauto errors.

Every error pydbgauto raises derives from :class:`PydbgautoError`; errors of
libraries and processes below it are translated where they are met::

    PydbgautoError
    ├── ConfigurationError        bad input, refused before any debugger is started
    │   └── UnsafeInputError      text that could smuggle a debugger command
    ├── DebuggerNotFoundError     lldb / cdb / SOS / dotnet-dump not installed
    ├── TargetError               the target cannot be debugged
    │   ├── NoSuchProcessError    no process with that pid or name
    │   ├── AlreadyTracedError    another debugger (or another watch) is attached to it
    │   ├── NotDotnetError        the process runs no .NET runtime
    │   └── TargetExitedError     the target ended during the session
    ├── DebuggerError             the debugger failed or said something unexpected
    │   ├── DebuggerDiedError     the debugger process ended
    │   ├── AgentLoadError        pydbgauto's agent could not load inside the debugger (lldb's Python)
    │   └── DebuggerTimeoutError  a command or wait ran past its time limit
    │       └── DebuggerNotAnsweringError  the debugger itself stopped answering (hung)
    ├── ParseError                text that is not what a parser takes
    ├── SosError                  SOS itself reported a failure
    └── DumpError                 a dump could not be written or verified
        ├── DumpVerificationError the independent reader could not read the dump
        └── DiskSpaceError        the dump folder cannot hold the target's dump

Outside the tree, because it must not be caught by ``except Exception``: :class:`Interrupted`, a
``KeyboardInterrupt`` raised by ``watch`` when SIGINT, SIGTERM or SIGHUP ended it (after it detached).

Every message says what is wrong and what to do about it.
"""

from __future__ import annotations


class PydbgautoError(Exception):
    """The root of every error pydbgauto raises."""


class ConfigurationError(PydbgautoError, ValueError):
    """Bad input from the caller, refused before anything is sent to a debugger."""


class UnsafeInputError(ConfigurationError):
    """Text that could run a debugger command its author did not mean."""


class DebuggerNotFoundError(PydbgautoError):
    """A debugger, SOS or an analysis tool is not installed where we looked."""


class TargetError(PydbgautoError):
    """The target process cannot be debugged."""


class NoSuchProcessError(TargetError):
    """No process with the given pid or name."""


class NotDotnetError(TargetError):
    """The process does not run a .NET runtime that SOS can read."""


class TargetExitedError(TargetError):
    """The target ended while the session needed it."""

    def __init__(self, message: str, exit_status: int | None = None) -> None:
        super().__init__(message)
        self.exit_status = exit_status


class AlreadyTracedError(TargetError):
    """The process is already traced by another debugger (or by another pydbgauto watch)."""


class DebuggerError(PydbgautoError):
    """The debugger failed, or answered in a way pydbgauto does not understand."""


class DebuggerDiedError(DebuggerError):
    """The debugger process ended unexpectedly."""


class AgentLoadError(DebuggerError):
    """pydbgauto's agent could not be imported into the debugger (lldb's embedded Python)."""


class DebuggerTimeoutError(DebuggerError, TimeoutError):
    """A debugger command or a wait for an event ran past its time limit."""


class DebuggerNotAnsweringError(DebuggerTimeoutError):
    """The debugger did not answer within a command's time limit plus its grace: it is hung."""


class ParseError(PydbgautoError, ValueError):
    """Text that a parser does not take (not an SOS failure: see SosError)."""


class SosError(PydbgautoError):
    """SOS reported a failure (DAC not loaded, stack walk failed, ...)."""


class DumpError(PydbgautoError):
    """A dump could not be written."""


class DumpVerificationError(DumpError):
    """An independent reader (``pydbgauto.readers``) could not open or read a dump.

    A dump the reader reads but that disagrees with its stop is not an error: ``verify_dump`` returns
    the record with ``verified=False`` and ``verify_error`` (it also turns this error into that), and
    ``analyze`` says so in ``matches_capture`` / ``differences``.
    """


class DiskSpaceError(DumpError):
    """The dump folder has too little free space for the target's dump (and ``min_free_disk``)."""


class Interrupted(KeyboardInterrupt):
    """A watch ended by a signal (SIGINT, SIGTERM, SIGHUP), after it detached: the target runs on.

    ``signum`` is the signal; ``result`` the ``WatchResult`` of what was seen until then (None when
    the signal came before the watch had started). The command exits with ``128 + signum``.
    """

    def __init__(self, signum: int, result: object = None) -> None:
        super().__init__(f"ended by signal {signum}")
        self.signum = signum
        self.result = result
