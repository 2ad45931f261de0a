"""Independent dump readers: the tools that reopen a dump to check it (``pydbgauto.verify``) and to say
what is in it (``pydbgauto.analysis``).

- ``dotnet_dump``: ``dotnet-dump analyze`` (Linux, the default).
- ``lldb``: lldb + SOS on the core (Linux, where dotnet-dump is missing; ``analyze`` only).
- ``cdb``: ``cdb -z <dump>`` (Windows; the cdb driver's verifier).
- ``compare``: the one comparison of what a dump should hold with what a reader read (pure).
- ``run``: running a reader process; its failures as pydbgauto errors.

The readers run the tools and pick the commands; cutting the tools' output apart is
``pydbgauto.sos.reader_output`` (pure, tested from recorded text).
"""

from __future__ import annotations

import sys

from pydbgauto.errors import ConfigurationError, DebuggerNotFoundError
from pydbgauto.readers.base import Reader

__all__ = ["READERS", "Reader", "pick"]

READERS = ("auto", "dotnet-dump", "lldb", "cdb")


def pick(reader: str) -> Reader:
    """The reader named ``reader`` (one of READERS); "auto": cdb on Windows, else dotnet-dump, else lldb.
    DebuggerNotFoundError when it is not installed."""
    from pydbgauto.readers.cdb import CdbReader
    from pydbgauto.readers.dotnet_dump import DotnetDumpReader
    from pydbgauto.readers.lldb import LldbReader

    if reader == "auto":
        if sys.platform == "win32":
            return CdbReader()
        try:
            return DotnetDumpReader()
        except DebuggerNotFoundError as first:
            try:
                return LldbReader()
            except DebuggerNotFoundError:
                raise first from None
    choices = {"dotnet-dump": DotnetDumpReader, "lldb": LldbReader, "cdb": CdbReader}
    if reader not in choices:
        raise ConfigurationError(f"reader must be one of {', '.join(READERS)}, not {reader!r}")
    return choices[reader]()
