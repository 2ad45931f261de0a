"""Open a dump after the fact and say what is in it: ``pydbgauto analyze <dump>`` and ``pda.analyze(path)``.

    import pydbgauto as pda
    a = pda.analyze("ThrowingApp_1234_1_System.InvalidOperationException_....core")
    a.exceptions          # (ThreadException(thread_id, exception), ...): the exception each thread holds
    a.stacks              # clrstack -all, one ManagedStack per thread
    a.threads             # the clrthreads table
    a.matches_capture     # True/False against <dump>.json written by pydbgauto; None without one

Any dump of a .NET process works: pydbgauto's own ELF cores, ``createdump``, ``dotnet-dump collect``,
``gcore``. The reader is a separate tool run once or twice per dump:

- ``dotnet-dump analyze`` (Linux, the default): ``clrthreads`` and ``clrstack -all``; then, for each thread
  whose Exception column is filled, ``setthread -t <tid>`` and ``pe -nested``. dotnet-dump prints all the
  replies back to back, so a ``threads`` listing (one line per thread, ``*`` on the current one) is run
  before each ``pe`` to mark where its reply starts and which thread it belongs to.
- ``lldb`` + SOS on the core (``lldb --batch --core <dump>``), whose echoed ``(lldb) <command>`` lines cut
  the replies apart; threads are selected with ``thread select <DBG>``.
- ``cdb -z <dump>`` (Windows), replies cut at ``.echo`` markers. Written from cdb's documentation and not
  run on these Linux machines; where cdb is absent it raises DebuggerNotFoundError like every reader.

Errors: a missing path is a ConfigurationError, a missing reader DebuggerNotFoundError, a dump the reader
cannot open (or that holds no .NET runtime) DumpVerificationError.
"""

from __future__ import annotations

import argparse
import html
import json
import os
import re
import sys
import time
from typing import Any, ClassVar, Dict, List, Optional, Sequence, Tuple, Type

import attr

from pydbgauto.dumpfile import file_sha256
from pydbgauto import display, locate
from pydbgauto.errors import (
    ConfigurationError,
    DebuggerNotFoundError,
    DebuggerTimeoutError,
    DumpError,
    DumpVerificationError,
    ParseError,
    PydbgautoError,
    SosError,
)
from pydbgauto.models import CaptureRecord, ManagedException, ManagedStack, ThreadTable, _Model
from pydbgauto.sos import parse_clrstack_all, parse_pe, parse_threads

__all__ = ["READERS", "DumpAnalysis", "ThreadException", "analyze", "register"]

READERS = ("auto", "dotnet-dump", "lldb", "cdb")
READER_NAMES = {"dotnet-dump": "dotnet-dump analyze", "lldb": "lldb + SOS", "cdb": "cdb -z"}
EXIT_OK, EXIT_USAGE, EXIT_READER, EXIT_UNREADABLE = 0, 2, 4, 5


# ---------------------------------------------------------------------------------------------
# models


def _hex(value: Optional[int]) -> str:
    return "?" if value is None else f"0x{value:x}"


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
        head = f"thread {_hex(self.thread_id)}"
        if self.managed_id is not None:
            head += f" (managed {self.managed_id})"
        if self.exception is not None:
            return head + ": " + str(self.exception).replace("\n", "\n  ")
        text = f"{head}: {self.listed_type or 'unknown exception'} at {_hex(self.listed_address)}"
        return text + (f" (pe failed: {self.error})" if self.error else "")


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

    def _summary(self) -> List[str]:
        n = len(self.threads.threads) if self.threads else 0
        lines = [
            f"{self.path}: {n} managed threads, {len(self.exceptions)} with an exception (read by "
            f"{self.reader} in {self.seconds:.1f} s)"
        ]
        if self.matches_capture is not None:
            state = "matches" if self.matches_capture else "does NOT match"
            lines.append(f"{state} its capture record {self.capture_record}")
            lines += [f"  - {d}" for d in self.differences]
        lines += [f"warning: {w}" for w in self.warnings]
        return lines

    def __str__(self) -> str:
        lines = self._summary()
        if self.exceptions:
            lines += ["", "Exceptions:"] + [f"  {e}".replace("\n", "\n  ") for e in self.exceptions]
        if self.threads is not None:
            lines += ["", "Threads:", "  " + str(self.threads).replace("\n", "\n  ")]
        if self.stacks:
            lines += ["", "Managed stacks:"] + ["  " + str(s).replace("\n", "\n  ") for s in self.stacks]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        parts = ['<div class="pydbgauto pdg-analysis">']
        head, rest = self._summary()[0], self._summary()[1:]
        parts.append(f"<div><b>{html.escape(head)}</b></div>")
        if rest:
            cls = "pdg-ok" if self.matches_capture else "pdg-bad"
            parts.append(
                "<ul>" + "".join(f'<li class="{cls}">{html.escape(r.strip())}</li>' for r in rest) + "</ul>"
            )
        for e in self.exceptions:
            parts.append(f"<h4>Exception on thread {html.escape(_hex(e.thread_id))}</h4>")
            if e.exception is not None:
                parts.append(display.exception_html(e.exception))
            else:
                parts.append(f"<div>{html.escape(str(e))}</div>")
        if self.threads is not None:
            parts.append("<h4>Threads</h4>" + display.threads_html(self.threads))
        if self.stacks:
            parts.append("<h4>Managed stacks</h4>")
            for s in self.stacks:
                site = (
                    _throw_site(s)
                    if s.os_thread_id is not None and self.exception_on(s.os_thread_id)
                    else None
                )
                parts.append(display.stack_html(s, site))
        parts.append("</div>")
        return "".join(parts)

    def _repr_markdown_(self) -> str:
        lines = [display.markdown_escape(line) for line in self._summary()] + [""]
        for e in self.exceptions:
            lines.append(f"**Exception on thread {_hex(e.thread_id)}**\n")
            lines.append(
                display.exception_markdown(e.exception) if e.exception else display.markdown_escape(e)
            )
        if self.threads is not None:
            lines += ["**Threads**", "", display.threads_markdown(self.threads)]
        for s in self.stacks:
            lines.append(display.stack_markdown(s))
        return "\n".join(lines).rstrip() + "\n"

    def to_html_page(self) -> str:
        """A whole HTML document (for ``--html FILE``)."""
        title = html.escape(f"pydbgauto analyze {os.path.basename(self.path)}")
        return (
            f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>{title}</title></head>'
            f"<body>{self._repr_html_()}</body></html>\n"
        )


def _throw_site(stack: ManagedStack) -> Any:
    """The topmost managed frame of a thread that holds an exception (marked in HTML)."""
    return next((f for f in stack.frames if f.kind == "managed"), None)


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
    backend = _pick_reader(reader)
    deadline = None if timeout is None else time.monotonic() + timeout
    started = time.monotonic()

    threads_text, stacks_text, raw1 = backend.overview(path, deadline)
    warnings += backend.warnings(raw1)
    threads = _parse_or_warn(parse_threads, threads_text, "clrthreads", warnings)
    if threads is None:
        raise DumpVerificationError(
            f"{backend.name} opened {path} but found no .NET runtime threads in it: " f"{_tail(raw1)}"
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


def _parse_or_warn(parser: Any, text: str, what: str, warnings: List[str]) -> Any:
    if not text.strip():
        warnings.append(f"{what}: the reader printed nothing")
        return None
    try:
        return parser(text)
    except (ParseError, SosError) as e:
        warnings.append(f"{what}: {e}")
        return None


def _tail(text: str) -> str:
    return " ".join(text.strip().splitlines()[-3:])[-400:] or "(no output)"


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
        size = os.path.getsize(path)
        if dump.size and dump.size != size:
            found.append(f"the record is for a dump of {dump.size} bytes; this file has {size}")
        elif dump.sha256 and file_sha256(path) != dump.sha256:
            found.append("the file's sha256 is not the one in the record (the dump was changed or replaced)")
    event = capture.event
    want_type = capture.exception.type if capture.exception else event.exception_type
    want_addr = event.exception_address
    tid = event.thread_id
    want = f"{want_type or '?'} at {_hex(want_addr)}"
    if tid is not None and not any(t.os_id == tid for t in threads.threads):
        found.append(f"the captured thread {_hex(tid)} is not in the dump's managed thread list")
    on_thread = next((e for e in exceptions if e.thread_id == tid), None) if tid is not None else None
    if (
        on_thread is not None
        and on_thread.type == want_type
        and (want_addr is None or on_thread.address == want_addr)
    ):
        return found
    if on_thread is not None:
        seen = f"{on_thread.type or '?'} at {_hex(on_thread.address)}"
        if at_address is not None and at_address.type == want_type and at_address.address == want_addr:
            warnings.append(f"thread {_hex(tid)} now holds {seen}; the captured {want} is in the dump too")
            return found
        found.append(f"thread {_hex(tid)} holds {seen}; the capture record says {want}")
        return found
    # The thread lists no exception (e.g. a first-chance stop before the runtime recorded it): the
    # captured object must at least be in the dump, with the captured type.
    if want_addr is None:
        found.append(f"thread {_hex(tid)} holds no exception; the capture record says {want}")
    elif at_address is None:
        found.append(f"no exception object at {_hex(want_addr)} in the dump; the capture record says {want}")
    elif at_address.type != want_type:
        found.append(
            f"the object at {_hex(want_addr)} is a {at_address.type}; the capture record says {want}"
        )
    else:
        warnings.append(
            f"thread {_hex(tid)} lists no exception; the captured {want} was found by its address"
        )
    return found


# ---------------------------------------------------------------------------------------------
# readers

_ListedThreads = Sequence[Any]  # ManagedThread rows with an exception
_Exceptions = Tuple[Dict[int, str], Optional[str], str]  # pe text per OS thread id, pe <address> text, raw


def _pick_reader(reader: str) -> "_Reader":
    if reader == "auto":
        if sys.platform == "win32":
            return _CdbReader()
        try:
            return _DotnetDumpReader()
        except DebuggerNotFoundError as first:
            try:
                return _LldbReader()
            except DebuggerNotFoundError:
                raise first from None
    return {"dotnet-dump": _DotnetDumpReader, "lldb": _LldbReader, "cdb": _CdbReader}[reader]()


def _remaining(deadline: Optional[float], path: str, name: str) -> Optional[float]:
    if deadline is None:
        return None
    left = deadline - time.monotonic()
    if left <= 0:
        raise DebuggerTimeoutError(f"{name} did not finish reading {path} in time: raise --timeout")
    return left


def _run(
    argv: List[str], path: str, name: str, deadline: Optional[float], env: Optional[Dict[str, str]] = None
) -> Tuple[int, str, str]:
    from pydbgauto.verify import run_reader

    done = run_reader(argv, name, path, _remaining(deadline, path, name), env)
    return done.returncode, done.stdout, done.stderr


class _Reader:
    name = ""

    def overview(self, path: str, deadline: Optional[float]) -> Tuple[str, str, str]:
        """(clrthreads text, clrstack -all text, raw output)."""
        raise NotImplementedError

    def exceptions(
        self, path: str, listed: _ListedThreads, address: Optional[int], deadline: Optional[float]
    ) -> _Exceptions:
        raise NotImplementedError

    def warnings(self, raw: str) -> List[str]:
        return []


class _DotnetDumpReader(_Reader):
    name = READER_NAMES["dotnet-dump"]
    _LISTING = re.compile(r"^\s*(\*?)\s*\d+\s+0x[0-9A-Fa-f]+\s+\((\d+)\)\s*$")

    def __init__(self) -> None:
        from pydbgauto.verify import reader_env

        self.tool = locate.find_dotnet_dump()
        self.env = reader_env()

    def _analyze(self, path: str, commands: Sequence[str], deadline: Optional[float]) -> Tuple[int, str]:
        argv = [self.tool, "analyze", path]
        for command in list(commands) + ["exit"]:
            argv += ["-c", command]
        rc, out, err = _run(argv, path, self.name, deadline, self.env)
        return rc, out + (("\n" + err) if err.strip() else "")

    def overview(self, path: str, deadline: Optional[float]) -> Tuple[str, str, str]:
        rc, text = self._analyze(path, ["clrthreads", "clrstack -all"], deadline)
        threads_at = text.find("ThreadCount:")
        if threads_at < 0:
            raise DumpVerificationError(f"{self.name} could not read {path} (exit {rc}): {_tail(text)}")
        m = re.search(r"^OS Thread Id:", text[threads_at:], re.MULTILINE)
        stacks_at = threads_at + m.start() if m else len(text)
        return text[threads_at:stacks_at], text[stacks_at:], text

    def exceptions(
        self, path: str, listed: _ListedThreads, address: Optional[int], deadline: Optional[float]
    ) -> _Exceptions:
        # Live threads first: a setthread that fails ends dotnet-dump's command list.
        order = sorted(listed, key=lambda t: t.dbg_id is None)
        commands: List[str] = []
        for t in order:
            if t.dbg_id is None:  # a dead thread cannot be selected: read its object by address
                commands += ["threads", f"pe -nested {t.exception_address:x}"]
            else:
                commands += [f"setthread -t {t.os_id}", "threads", "pe -nested"]
        if address:
            commands += ["threads", f"pe -nested {address:x}"]
        _, text = self._analyze(path, commands, deadline)
        blocks = self._blocks(text)
        per_thread: Dict[int, str] = {}
        for t, block in zip(order, blocks):
            current, reply = block
            if t.dbg_id is not None and current != t.os_id:
                continue  # setthread did not take: this reply is not this thread's
            per_thread[t.os_id] = reply
        address_text = blocks[len(order)][1] if address and len(blocks) > len(order) else None
        return per_thread, address_text, text

    def _blocks(self, text: str) -> List[Tuple[Optional[int], str]]:
        """Cut the output at each ``threads`` listing: (current OS thread id, the reply after it)."""
        blocks: List[Tuple[Optional[int], List[str]]] = []
        in_listing = False
        for line in text.splitlines():
            m = self._LISTING.match(line)
            if m:
                if not in_listing:
                    blocks.append((None, []))
                    in_listing = True
                if m.group(1):
                    blocks[-1] = (int(m.group(2)), blocks[-1][1])
                continue
            in_listing = False
            if blocks:
                blocks[-1][1].append(line)
        return [(current, "\n".join(lines) + "\n") for current, lines in blocks]

    def warnings(self, raw: str) -> List[str]:
        return [line[len("WARNING:") :].strip() for line in raw.splitlines() if line.startswith("WARNING:")]


class _LldbReader(_Reader):
    name = READER_NAMES["lldb"]
    _ECHO = re.compile(r"^\(lldb\) (.*)$")

    def __init__(self) -> None:
        self.lldb = locate.find_lldb()
        self.sos = locate.find_sos_plugin()

    def _batch(self, path: str, commands: Sequence[str], deadline: Optional[float]) -> Tuple[List[str], str]:
        argv = [
            self.lldb,
            "--no-lldbinit",
            "--no-use-colors",
            "--batch",
            "--core",
            path,
            "-o",
            f"plugin load {self.sos}",
        ]
        for command in commands:
            argv += ["-o", command]
        rc, out, err = _run(argv, path, self.name, deadline)
        text = out + (("\n" + err) if err.strip() else "")
        if "was loaded" not in text or "error: Unable to load" in text:
            raise DumpVerificationError(f"{self.name} could not read {path} (exit {rc}): {_tail(text)}")
        replies: Dict[str, List[str]] = {}
        order: List[str] = []
        current: Optional[List[str]] = None
        for line in out.splitlines():
            m = self._ECHO.match(line)
            if m:
                current = []
                key = f"{len(order)}:{m.group(1)}"
                order.append(key)
                replies[key] = current
            elif current is not None:
                current.append(line)
        # The echoes are target create, plugin load, then ours in order.
        by_command = ["\n".join(replies[k]) + "\n" for k in order[2:]]
        return by_command + [""] * (len(commands) - len(by_command)), text

    def overview(self, path: str, deadline: Optional[float]) -> Tuple[str, str, str]:
        (threads, stacks), text = self._batch(path, ["clrthreads", "clrstack -all"], deadline)
        return threads, stacks, text

    def exceptions(
        self, path: str, listed: _ListedThreads, address: Optional[int], deadline: Optional[float]
    ) -> _Exceptions:
        live = [t for t in listed if t.dbg_id is not None]
        dead = [t for t in listed if t.dbg_id is None]
        commands: List[str] = []
        for t in live:
            commands += [f"thread select {t.dbg_id}", "pe -nested"]
        for t in dead:
            commands.append(f"pe -nested {t.exception_address:x}")
        if address:
            commands.append(f"pe -nested {address:x}")
        replies, text = self._batch(path, commands, deadline)
        per_thread: Dict[int, str] = {}
        for i, t in enumerate(live):
            if replies[2 * i + 1].strip() and "error:" not in replies[2 * i]:
                per_thread[t.os_id] = replies[2 * i + 1]
        for i, t in enumerate(dead):
            if replies[2 * len(live) + i].strip():
                per_thread[t.os_id] = replies[2 * len(live) + i]
        address_text = replies[-1] if address and replies[-1].strip() else None
        return per_thread, address_text, text

    def warnings(self, raw: str) -> List[str]:
        return [line.strip() for line in raw.splitlines() if line.startswith(("warning:", "WARNING:"))]


class _CdbReader(_Reader):
    """``cdb -z <dump>``; the replies are cut at ``.echo`` markers. Not run on Linux (no cdb.exe)."""

    name = READER_NAMES["cdb"]
    MARK = "PYDBGAUTO-ANALYZE-"

    def __init__(self) -> None:
        from pydbgauto.drivers.cdb_locate import find_cdb, find_coreclr_sos

        self.cdb = find_cdb()
        sos = find_coreclr_sos()
        self.load = f'.load "{sos}"' if sos else ".loadby sos coreclr"

    def _run_cdb(
        self, path: str, commands: Sequence[str], deadline: Optional[float]
    ) -> Tuple[List[str], str]:
        script = [self.load]
        for i, command in enumerate(commands):
            script += [f".echo {self.MARK}{i}", command]
        script += [f".echo {self.MARK}END", "q"]
        rc, out, err = _run([self.cdb, "-z", path, "-c", "; ".join(script)], path, self.name, deadline)
        parts = re.split(rf"^{self.MARK}(\d+|END)\s*$", out, flags=re.MULTILINE)
        replies = {parts[i]: parts[i + 1] for i in range(1, len(parts) - 1, 2)}
        if "END" not in replies and not replies:
            raise DumpVerificationError(f"{self.name} could not read {path} (exit {rc}): {_tail(out + err)}")
        return [replies.get(str(i), "") for i in range(len(commands))], out + err

    def overview(self, path: str, deadline: Optional[float]) -> Tuple[str, str, str]:
        (threads, stacks), text = self._run_cdb(path, ["!threads", "!clrstack -all"], deadline)
        return threads, stacks, text

    def exceptions(
        self, path: str, listed: _ListedThreads, address: Optional[int], deadline: Optional[float]
    ) -> _Exceptions:
        commands = [f"~~[{t.os_id:x}]s; !pe -nested" for t in listed]
        if address:
            commands.append(f"!pe -nested {address:x}")
        replies, text = self._run_cdb(path, commands, deadline)
        per_thread = {t.os_id: replies[i] for i, t in enumerate(listed) if replies[i].strip()}
        return per_thread, (replies[-1] if address and replies[-1].strip() else None), text


# ---------------------------------------------------------------------------------------------
# command line


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``analyze`` to the ``pydbgauto`` command's subparsers."""
    p = subparsers.add_parser(
        "analyze",
        help="open a dump and report its exceptions, managed stacks and threads",
        description="Open a dump (pydbgauto's, createdump's, dotnet-dump collect's or gcore's) with an "
        "independent reader and report each thread's exception, the managed stacks and the "
        "thread table. Beside a capture record (<dump>.json) it also says whether they agree. "
        "Exit codes: 0 read (and matching its record, if any), 1 read but NOT matching its "
        "capture record, 2 bad input, 4 reader missing or failed, 5 unreadable dump.",
    )
    p.add_argument("dump", help="the dump (core) file")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print the analysis as JSON")
    out.add_argument("--html", metavar="FILE", help="write an HTML report to FILE (- for standard output)")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds for the reader (default 300)")
    p.add_argument(
        "--reader",
        choices=READERS,
        default="auto",
        help="auto (default): dotnet-dump, else lldb + SOS on Linux; cdb on Windows",
    )
    p.set_defaults(run=run)
    return p


def run(args: argparse.Namespace) -> int:
    """The ``analyze`` subcommand: print the analysis; return the exit code."""
    try:
        analysis = analyze(args.dump, timeout=args.timeout, reader=getattr(args, "reader", "auto"))
    except ConfigurationError as e:
        print(f"pydbgauto: {e}", file=sys.stderr)
        return EXIT_USAGE
    except DumpError as e:
        print(f"pydbgauto: {e}", file=sys.stderr)
        return EXIT_UNREADABLE
    except PydbgautoError as e:
        print(f"pydbgauto: reader problem: {e}", file=sys.stderr)
        return EXIT_READER
    if args.json:
        print(json.dumps(analysis.to_dict(include_raw=False), indent=1))
    elif args.html:
        page = analysis.to_html_page()
        if args.html == "-":
            sys.stdout.write(page)
        else:
            try:
                with open(args.html, "w", encoding="utf-8") as f:
                    f.write(page)
            except OSError as e:
                print(f"pydbgauto: cannot write {args.html}: {e.strerror}", file=sys.stderr)
                return EXIT_USAGE
            print(f"wrote {args.html}")
    else:
        print(analysis)
    return 1 if analysis.matches_capture is False else EXIT_OK
