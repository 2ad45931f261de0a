"""``dotnet-dump analyze`` (Linux) as an independent dump reader: for ``verify_dump`` and for ``analyze``.

dotnet-dump prints the replies of its ``-c`` commands back to back; ``pydbgauto.sos.reader_output`` cuts
them apart and pydbgauto's own parsers read them. It hosts SOS's managed half, so its clrstack has file
and line.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import attr

from pydbgauto import locate, single_file
from pydbgauto.errors import DumpVerificationError, PydbgautoError
from pydbgauto.models import DumpRecord, ManagedException, ManagedStack, ThreadTable
from pydbgauto.readers.base import Exceptions, ListedThreads, Reader
from pydbgauto.readers.compare import Expected, Seen
from pydbgauto.readers.run import reader_env, run_reader, tail
from pydbgauto.sos import parse_clrstack, parse_pe, parse_threads
from pydbgauto.sos import reader_output

__all__ = ["READER", "DotnetDumpReader", "DumpReading", "read", "read_stop"]

READER = "dotnet-dump analyze"


@attr.frozen
class DumpReading:
    """What ``dotnet-dump analyze`` printed for a dump, parsed."""

    threads: Optional[ThreadTable]
    exception: Optional[ManagedException]
    stack: Optional[ManagedStack]
    raw: str = attr.field(repr=False)
    warnings: Tuple[str, ...] = ()


def read(
    path: str,
    *,
    exception_address: Optional[int] = None,
    thread_id: Optional[int] = None,
    timeout: Optional[float] = 300.0,
    dotnet_dump: Optional[str] = None,
    read_exception: bool = True,
) -> DumpReading:
    """Open ``path`` with dotnet-dump and read the thread list, an exception, and a thread's stack.

    Without ``exception_address`` the ``pe`` is bare: the current exception of the dump's default thread.
    DumpVerificationError when dotnet-dump cannot open the dump.
    """
    tool = locate.find_dotnet_dump(dotnet_dump)
    commands = read_commands(exception_address, thread_id, read_exception)
    dac = single_file.dac_dir_for_core(path)  # a single-file app's dump: its DAC is not beside the app
    if dac is not None:
        commands.insert(0, f"setclrpath {dac}")
    done = run_reader(argv(tool, path, commands), READER, path, timeout, reader_env())
    text = done.stdout + done.stderr
    if done.returncode != 0 and "ThreadCount:" not in text:
        raise DumpVerificationError(
            f"{READER} could not open {path} (exit {done.returncode}): {text.strip()[-400:]}"
        )
    pe_text, threads_text, stack_text = reader_output.split_dotnet_dump(text)
    return DumpReading(
        threads=_try(parse_threads, threads_text),
        exception=_try(parse_pe, pe_text),
        stack=_try(parse_clrstack, stack_text) if stack_text else None,
        raw=text,
        warnings=reader_output.warning_lines(text),
    )


def read_commands(
    exception_address: Optional[int], thread_id: Optional[int], read_exception: bool
) -> List[str]:
    """What :func:`read` runs: ``pe [address]``, ``clrthreads``, then the thread's ``clrstack``."""
    commands: List[str] = (
        ["pe " + (f"{exception_address:#x}" if exception_address else "")] if read_exception else []
    )
    commands.append("clrthreads")
    if thread_id is not None:
        commands += [f"setthread -t {thread_id}", "clrstack"]
    return commands


def argv(tool: str, path: str, commands: Sequence[str]) -> List[str]:
    """``dotnet-dump analyze <path> -c <command> ... -c exit``."""
    out = [tool, "analyze", path]
    for command in list(commands) + ["exit"]:
        out += ["-c", command.strip()]
    return out


def _try(parser, text: str):  # type: ignore[no-untyped-def]
    try:
        return parser(text) if text.strip() else None
    except PydbgautoError:
        return None


def read_stop(
    record: DumpRecord, expected: Expected, timeout: Optional[float]
) -> Tuple[Seen, Dict[str, object]]:
    """Read what ``expected`` needs from the dump: (what was seen, the record's seen_* fields)."""
    thread = expected.thread_id
    # A stack too deep for clrstack live (a stack overflow) is too deep for the reader's clrstack too
    # (minutes): then the thread is looked for in the reader's thread list instead.
    stack_thread = None if expected.stack_too_deep else thread
    # An exception read without pe live (its trace lists every frame of a deep thread: 78 s in the reader
    # for 50,000 frames) is checked in the reader's thread list too: the thread's Exception column.
    no_pe = expected.listed_only
    address = expected.exception_address
    # A bare pe: at the stop the dump's default thread is the stopped thread and the exception its own.
    # An older event's exception is looked up by address instead.
    first = read(record.path, thread_id=stack_thread, timeout=timeout, read_exception=not no_pe)
    reading, at_address = first, None
    if not no_pe and address is not None and (first.exception is None or first.exception.address != address):
        reading = read(record.path, exception_address=address, thread_id=stack_thread, timeout=timeout)
        at_address = reading.exception
    seen = Seen(
        threads=reading.threads,
        threads_read=True,
        exception_read=not no_pe,
        on_thread=Seen.of(first.exception),
        at_address=at_address,
        stack_thread_id=reading.stack.os_thread_id if reading.stack else None,
        stack_read=stack_thread is not None,
    )
    seen_type = reading.exception.type if reading.exception else None
    facts: Dict[str, object] = {
        "seen_exception_type": seen_type,
        "seen_thread_id": reading.stack.os_thread_id if reading.stack else None,
        "seen_stack": reading.stack,
        "reader_warnings": reading.warnings,
    }
    return seen, facts


class DotnetDumpReader(Reader):
    """``analyze``'s dotnet-dump: ``clrthreads`` and ``clrstack -all``; then, for each thread whose
    Exception column is filled, ``setthread -t <tid>`` and ``pe -nested``, each after a ``threads``
    listing that marks where its reply starts and which thread it belongs to."""

    name = READER

    def __init__(self) -> None:
        self.tool = locate.find_dotnet_dump()
        self.env = reader_env()

    def _analyze(self, path: str, commands: Sequence[str], deadline: Optional[float]) -> Tuple[int, str]:
        dac = single_file.dac_dir_for_core(path)  # as in read()
        commands = ([f"setclrpath {dac}"] if dac is not None else []) + list(commands)
        rc, out, err = self.run(argv(self.tool, path, commands), path, deadline, self.env)
        return rc, out + (("\n" + err) if err.strip() else "")

    def overview(self, path: str, deadline: Optional[float]) -> Tuple[str, str, str]:
        rc, text = self._analyze(path, ["clrthreads", "clrstack -all"], deadline)
        cut = reader_output.dotnet_dump_overview(text)
        if cut is None:
            raise DumpVerificationError(f"{self.name} could not read {path} (exit {rc}): {tail(text)}")
        return cut[0], cut[1], text

    def exceptions(
        self, path: str, listed: ListedThreads, address: Optional[int], deadline: Optional[float]
    ) -> Exceptions:
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
        blocks = reader_output.dotnet_dump_threads_blocks(text)
        per_thread: Dict[int, str] = {}
        for t, block in zip(order, blocks):
            current, reply = block
            if t.dbg_id is not None and current != t.os_id:
                continue  # setthread did not take: this reply is not this thread's
            per_thread[t.os_id] = reply
        address_text = blocks[len(order)][1] if address and len(blocks) > len(order) else None
        return per_thread, address_text, text

    def warnings(self, raw: str) -> List[str]:
        return reader_output.dotnet_dump_warnings(raw)
