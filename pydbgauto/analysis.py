"""Open a dump after the fact and say what is in it: ``pydbgauto analyze <dump>`` and ``pda.analyze(path)``.

    import pydbgauto as pda
    a = pda.analyze("ThrowingApp_1234_1_System.InvalidOperationException_....core")
    a.exceptions          # (ThreadException(thread_id, exception), ...): the exception each thread holds
    a.stacks              # clrstack -all, one ManagedStack per thread
    a.threads             # the clrthreads table
    a.matches_capture     # True/False against <dump>.json written by pydbgauto; None without one

Any dump of a .NET process works: pydbgauto's own ELF cores, ``createdump``, ``dotnet-dump collect``,
``gcore``. The reader is a separate tool run once or twice per dump (``pydbgauto.readers``:
``dotnet-dump analyze`` by default on Linux, else lldb + SOS on the core; ``cdb -z`` on Windows): first
``clrthreads`` and ``clrstack -all``, then ``pe -nested`` on each thread whose Exception column is
filled. Beside a capture record the dump is compared with it (``pydbgauto.readers.compare``).
Rendering is ``pydbgauto.display.analysis``; the ``pydbgauto analyze`` command ``pydbgauto.cli.analyze``.

Errors: a missing path is a ConfigurationError, a missing reader DebuggerNotFoundError, a dump the reader
cannot open (or that holds no .NET runtime) DumpVerificationError.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any, ClassVar, Dict, List, Optional, Sequence, Tuple, Type

import attr

from pydbgauto import display, readers
from pydbgauto.errors import ConfigurationError, DumpVerificationError, ParseError, SosError
from pydbgauto.models import CaptureRecord, ManagedException, ManagedStack, ThreadTable, _Model
from pydbgauto.readers import READERS
from pydbgauto.readers.compare import Expected, Seen, compare
from pydbgauto.readers.run import tail
from pydbgauto.sos import parse_clrstack_all, parse_pe, parse_threads

__all__ = ["READERS", "DumpAnalysis", "ThreadException", "analyze"]


# ---------------------------------------------------------------------------------------------
# models


@attr.frozen
class ThreadException(_Model):
    """The exception one thread holds in the dump: clrthreads' Exception column, then ``pe`` on the thread."""

    thread_id: int  # OS thread id
    exception: Optional[ManagedException]  # None when pe could not be read (see error)
    managed_id: Optional[int] = None
    listed_type: Optional[str] = None  # what the clrthreads Exception column says
    listed_address: Optional[int] = None
    error: Optional[str] = None

    _nested: ClassVar[Dict[str, Type[_Model]]] = {"exception": ManagedException}

    @property
    def type(self) -> Optional[str]:
        return self.exception.type if self.exception else self.listed_type

    @property
    def address(self) -> Optional[int]:
        return self.exception.address if self.exception else self.listed_address

    def __str__(self) -> str:
        return display.thread_exception_text(self)


@attr.frozen
class DumpAnalysis(_Model):
    """What a reader found in a dump: threads, each thread's exception, the managed stacks, and whether
    it agrees with the capture record pydbgauto wrote beside the dump (``<dump>.json``)."""

    path: str
    reader: str
    threads: Optional[ThreadTable] = None
    exceptions: Tuple[ThreadException, ...] = ()
    stacks: Tuple[ManagedStack, ...] = ()
    warnings: Tuple[str, ...] = ()
    capture_record: Optional[str] = None  # the <dump>.json that was compared, when there was one
    matches_capture: Optional[bool] = None  # None: no capture record to compare with
    differences: Tuple[str, ...] = ()  # why it does not match (empty when it does)
    seconds: float = 0.0  # time the reader took
    raw: str = attr.field(default="", repr=False, eq=False)

    _nested: ClassVar[Dict[str, Type[_Model]]] = {
        "threads": ThreadTable,
        "exceptions": ThreadException,
        "stacks": ManagedStack,
    }

    def exception_on(self, thread_id: int) -> Optional[ThreadException]:
        return next((e for e in self.exceptions if e.thread_id == thread_id), None)

    def stack_of(self, thread_id: int) -> Optional[ManagedStack]:
        return next((s for s in self.stacks if s.os_thread_id == thread_id), None)

    def __str__(self) -> str:
        return display.analysis_text(self)

    def _repr_html_(self) -> str:
        return display.analysis_html(self)

    def _repr_markdown_(self) -> str:
        return display.analysis_markdown(self)

    def to_html_page(self) -> str:
        """A whole HTML document (for ``--html FILE``)."""
        return display.analysis_page(self)


# ---------------------------------------------------------------------------------------------
# analyze


def analyze(path: str, *, timeout: Optional[float] = 300, reader: str = "auto") -> DumpAnalysis:
    """Open the dump at ``path`` with an independent reader and report threads, exceptions and stacks.

    ``reader``: "auto" (cdb on Windows; dotnet-dump, else lldb + SOS on Linux), "dotnet-dump", "lldb",
    "cdb". ``timeout``: seconds for the whole reading (None: no limit). When ``<path>.json`` (a capture
    record pydbgauto wrote) exists, the exception and thread it names are looked for in the dump.
    """
    if reader not in READERS:
        raise ConfigurationError(f"reader must be one of {', '.join(READERS)}, not {reader!r}")
    if timeout is not None and timeout <= 0:
        raise ConfigurationError(f"timeout must be positive seconds (or None), not {timeout!r}")
    path = os.path.abspath(str(path))
    if not os.path.exists(path):
        raise ConfigurationError(f"{path} does not exist: give the path of a dump (core) file")
    if not os.path.isfile(path):
        raise ConfigurationError(f"{path} is not a file: give the path of a dump (core) file")
    if not os.access(path, os.R_OK):
        raise ConfigurationError(f"{path} is not readable by this user (try sudo, or chmod)")
    if os.path.getsize(path) == 0:
        raise DumpVerificationError(f"{path} is empty: it is not a dump")
    warnings: List[str] = []
    capture = _load_capture(path, warnings)
    backend = readers.pick(reader)
    deadline = None if timeout is None else time.monotonic() + timeout
    started = time.monotonic()

    threads_text, stacks_text, raw1 = backend.overview(path, deadline)
    warnings += backend.warnings(raw1)
    threads = _parse_or_warn(parse_threads, threads_text, "clrthreads", warnings)
    if threads is None:
        raise DumpVerificationError(
            f"{backend.name} opened {path} but found no .NET runtime threads in it: {tail(raw1)}"
        )
    stacks: Tuple[ManagedStack, ...] = (
        _parse_or_warn(parse_clrstack_all, stacks_text, "clrstack -all", warnings) or ()
    )

    listed = [t for t in threads.threads if t.exception_type]
    address = None
    if capture is not None and capture.event.exception_address:
        address = capture.event.exception_address
    raw2 = ""
    exceptions: List[ThreadException] = []
    at_address: Optional[ManagedException] = None
    if listed or address:
        per_thread, address_text, raw2 = backend.exceptions(path, listed, address, deadline)
        for t in listed:
            text = per_thread.get(t.os_id)
            exc: Optional[ManagedException] = None
            error: Optional[str] = "the reader gave no reply for this thread"
            if text is not None:
                try:
                    exc, error = parse_pe(text), None
                    if exc is None:
                        error = "pe: no current managed exception on this thread"
                except (ParseError, SosError) as e:
                    error = f"pe: {e}"
            exceptions.append(
                ThreadException(
                    thread_id=t.os_id,
                    exception=exc,
                    managed_id=t.managed_id,
                    listed_type=t.exception_type,
                    listed_address=t.exception_address,
                    error=error,
                )
            )
        if address_text is not None:
            at_address = _parse_or_warn(parse_pe, address_text, f"pe {address:#x}", warnings)
    seconds = time.monotonic() - started
    if capture is not None and capture.exception is not None:
        exceptions = [_with_recorded_message(e, capture.exception, warnings) for e in exceptions]

    matches: Optional[bool] = None
    differences: Tuple[str, ...] = ()
    if capture is not None:
        found = _compare(path, capture, threads, exceptions, at_address, warnings)
        matches, differences = not found, tuple(found)
    return DumpAnalysis(
        path=path,
        reader=backend.name,
        threads=threads,
        exceptions=tuple(exceptions),
        stacks=stacks,
        warnings=tuple(dict.fromkeys(warnings)),
        capture_record=path + ".json" if capture is not None else None,
        matches_capture=matches,
        differences=differences,
        seconds=seconds,
        raw=raw1 + raw2,
    )


def _with_recorded_message(
    seen: ThreadException, recorded: ManagedException, warnings: List[str]
) -> ThreadException:
    """dotnet-dump prints a message without its non-ASCII characters (lldb's SOS keeps them): where the
    reader's message is the record's so stripped, for the record's exception, show the record's."""
    exc, message = seen.exception, recorded.message
    if exc is None or exc.address != recorded.address or not message or exc.message == message:
        return seen
    if exc.message != "".join(c for c in message if ord(c) < 128):
        return seen
    warnings.append(
        "the reader printed the exception's message without its non-ASCII characters; "
        "shown as the capture record has it"
    )
    return attr.evolve(seen, exception=attr.evolve(exc, message=message))


def _parse_or_warn(parser: Any, text: str, what: str, warnings: List[str]) -> Any:
    if not text.strip():
        warnings.append(f"{what}: the reader printed nothing")
        return None
    try:
        return parser(text)
    except (ParseError, SosError) as e:
        warnings.append(f"{what}: {e}")
        return None


def _load_capture(path: str, warnings: List[str]) -> Optional[CaptureRecord]:
    record_path = path + ".json"
    if not os.path.isfile(record_path):
        return None
    try:
        with open(record_path, encoding="utf-8") as f:
            return CaptureRecord.from_dict(json.load(f))
    except (OSError, ValueError, TypeError, KeyError) as e:
        warnings.append(
            f"{record_path} is not a readable capture record ({type(e).__name__}: {e}); not compared"
        )
        return None


def _compare(
    path: str,
    capture: CaptureRecord,
    threads: ThreadTable,
    exceptions: Sequence[ThreadException],
    at_address: Optional[ManagedException],
    warnings: List[str],
) -> List[str]:
    """What differs between the capture record and the dump (empty: they agree)."""
    found: List[str] = []
    dump = capture.dump
    if dump is not None:
        from pydbgauto.dumpfile import file_sha256

        size = os.path.getsize(path)
        if dump.size and dump.size != size:
            found.append(f"the record is for a dump of {dump.size} bytes; this file has {size}")
        elif dump.sha256 and file_sha256(path) != dump.sha256:
            found.append("the file's sha256 is not the one in the record (the dump was changed or replaced)")
    expected = Expected.from_capture(capture)
    tid = expected.thread_id
    on_thread = next((e for e in exceptions if e.thread_id == tid), None) if tid is not None else None
    seen = Seen(
        threads=threads,
        threads_read=True,
        exception_read=True,
        on_thread=(on_thread.type, on_thread.address) if on_thread is not None else None,
        at_address=at_address,
    )
    problems, notes = compare(expected, seen)
    warnings += notes
    return found + problems
