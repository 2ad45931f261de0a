"""Check a dump with a reader that is not ours: the verifier's contract.

``verify_dump(record, expect)`` reopens ``record.path`` with ``dotnet-dump analyze`` (Linux) and returns
``record`` with ``verified``, ``reader``, ``verify_seconds``, ``verify_error`` and what the reader saw
(``seen_exception_type``, ``seen_thread_id``, ``seen_stack``, ``reader_warnings``). It never raises for a
dump that disagrees or that the reader cannot open: that is ``verified=False`` with ``verify_error``
saying why (the readers raise DumpVerificationError, DebuggerNotFoundError, DebuggerTimeoutError, and
the message lands there). Drivers with their own reader override it (cdb: ``cdb -z``,
``pydbgauto.readers.cdb``).

A dump counts as verified when the reader opens it, lists the expected thread, and a bare ``pe`` on its
default thread shows the expected exception object with the same type (as a user's ``!pe`` would; an
exception of an earlier stop is looked up by its address), and the thread has a managed stack
(``pydbgauto.readers.compare``). Its clrstack (with file and line: the reader hosts SOS's managed half)
is kept in the record.
"""

from __future__ import annotations

import time
from typing import Optional

from pydbgauto.errors import PydbgautoError
from pydbgauto.models import DumpRecord, StopEvent
from pydbgauto.readers import dotnet_dump
from pydbgauto.readers.compare import Expected, failed_record, verified_record

__all__ = ["READER", "verify_dump"]

READER = dotnet_dump.READER


def verify_dump(record: DumpRecord, expect: Optional[StopEvent], *, timeout: float = 300.0) -> DumpRecord:
    """Reopen the dump; a record with ``verified`` and what the reader saw (never raises for a mismatch)."""
    started = time.monotonic()
    expected = Expected.from_event(expect)
    try:
        seen, facts = dotnet_dump.read_stop(record, expected, timeout)
    except PydbgautoError as e:
        return failed_record(record, READER, e, time.monotonic() - started)
    return verified_record(record, READER, expected, seen, time.monotonic() - started, **facts)
