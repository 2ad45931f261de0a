"""Check a dump with a reader that is not ours: ``dotnet-dump analyze`` (Linux).

A dump counts as verified when the reader opens it, lists the expected thread, and a bare ``pe`` on its
default thread shows the expected exception object with the same type (as a user's ``!pe`` would; an
exception of an earlier stop is looked up by its address), and the thread has a managed stack. The
reader's text is parsed with pydbgauto's own parsers; its clrstack (with file and line: the reader hosts
SOS's managed half) is kept in the record.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from typing import List, Optional, Tuple

import attr

from pydbgauto import locate
from pydbgauto.errors import DebuggerNotFoundError, DebuggerTimeoutError, PydbgautoError
from pydbgauto.models import DumpRecord, ManagedException, ManagedStack, StopEvent, ThreadTable
from pydbgauto.sos import parse_clrstack, parse_pe, parse_threads

READER = "dotnet-dump analyze"


@attr.frozen
class DumpReading:
    """What ``dotnet-dump analyze`` printed for a dump, parsed."""

    threads: Optional[ThreadTable]
    exception: Optional[ManagedException]
    stack: Optional[ManagedStack]
    raw: str = attr.field(repr=False)
    warnings: Tuple[str, ...] = ()


def reader_env() -> dict:
    env = dict(os.environ)
    # dotnet-dump targets net8.0; let it run on whichever newer runtime the machine has.
    env.setdefault("DOTNET_ROLL_FORWARD", "Major")
    env.setdefault("DOTNET_CLI_TELEMETRY_OPTOUT", "1")
    return env


def run_reader(
    argv: List[str], name: str, path: str, timeout: Optional[float], env: Optional[dict] = None
) -> "subprocess.CompletedProcess[str]":
    """Run a dump reader (dotnet-dump, lldb, cdb -z) on ``path``; its failures as pydbgauto errors."""
    try:
        return subprocess.run(
            argv,
            capture_output=True,
            text=True,
            errors="replace",
            env=env,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as e:
        raise DebuggerTimeoutError(
            f"{name} did not finish reading {path} within {timeout:.0f} s: give it more time (timeout)"
        ) from e
    except OSError as e:
        raise DebuggerNotFoundError(f"cannot run {argv[0]}: {e}: {locate.SOS_HINT}") from e


def analyze(
    path: str,
    *,
    exception_address: Optional[int] = None,
    thread_id: Optional[int] = None,
    timeout: float = 300.0,
    dotnet_dump: Optional[str] = None,
    read_exception: bool = True,
) -> DumpReading:
    """Open ``path`` with dotnet-dump and read the thread list, an exception, and a thread's stack.

    Without ``exception_address`` the ``pe`` is bare: the current exception of the dump's default thread.
    """
    tool = locate.find_dotnet_dump(dotnet_dump)
    commands: List[str] = (
        ["pe " + (f"{exception_address:#x}" if exception_address else "")] if read_exception else []
    )
    commands.append("clrthreads")
    if thread_id is not None:
        commands += [f"setthread -t {thread_id}", "clrstack"]
    argv = [tool, "analyze", path]
    for command in commands + ["exit"]:
        argv += ["-c", command.strip()]
    done = run_reader(argv, READER, path, timeout, reader_env())
    text = done.stdout + done.stderr
    if done.returncode != 0 and "ThreadCount:" not in text:
        raise PydbgautoError(
            f"{READER} could not open {path} (exit {done.returncode}): {text.strip()[-400:]}"
        )
    pe_text, threads_text, stack_text = _split(text)
    return DumpReading(
        threads=_try(parse_threads, threads_text),
        exception=_try(parse_pe, pe_text),
        stack=_try(parse_clrstack, stack_text) if stack_text else None,
        raw=text,
        warnings=tuple(line.strip() for line in text.splitlines() if line.strip().startswith("WARNING:")),
    )


def _split(text: str) -> Tuple[str, str, str]:
    """dotnet-dump prints the commands' outputs back to back: cut at each report's first line."""
    threads_at = text.find("ThreadCount:")
    stack_match = re.search(r"^OS Thread Id:", text, re.MULTILINE)
    stack_at = stack_match.start() if stack_match else -1
    pe_start = text.find("Exception object:")
    if pe_start < 0:
        pe_start = 0
    ends = [p for p in (threads_at, stack_at) if p > pe_start]
    pe_text = text[pe_start : min(ends)] if ends else text[pe_start:]
    threads_text = (
        text[threads_at : stack_at if stack_at > threads_at else len(text)] if threads_at >= 0 else ""
    )
    stack_text = text[stack_at:] if stack_at >= 0 else ""
    return pe_text, threads_text, stack_text


def _try(parser, text: str):  # type: ignore[no-untyped-def]
    try:
        return parser(text) if text.strip() else None
    except PydbgautoError:
        return None


def verify_dump(record: DumpRecord, expect: Optional[StopEvent], *, timeout: float = 300.0) -> DumpRecord:
    """Reopen the dump; a record with ``verified`` and what the reader saw (never raises for a mismatch)."""
    started = time.monotonic()
    address = expect.exception_address if expect else None
    # At a stop with no exception (a break-in, a fresh attach) the selected thread may run no managed
    # code: the dump must then show the runtime's thread list with at least one managed thread.
    at_break = expect is None or expect.kind == "break"
    thread = expect.thread_id if expect is not None and not at_break else None
    # A stack too deep for clrstack live (a stack overflow) is too deep for the reader's clrstack too
    # (minutes): then the thread is looked for in the reader's thread list instead.
    deep = (
        thread is not None
        and expect is not None
        and expect.stack is not None
        and bool(expect.stack.truncated)
    )
    stack_thread = None if deep else thread
    # An exception read without pe live (its trace lists every frame of a deep thread: 78 s in the reader
    # for 50,000 frames) is checked in the reader's thread list too: the thread's Exception column.
    no_pe = expect is not None and expect.exception is not None and bool(expect.exception.truncated)
    try:
        # A bare pe: at the stop of ``expect`` the dump's default thread is the stopped thread and the
        # exception its own. An older event's exception is looked up by address instead.
        reading = analyze(record.path, thread_id=stack_thread, timeout=timeout, read_exception=not no_pe)
        seen = reading.exception
        if not no_pe and address is not None and (seen is None or seen.address != address):
            reading = analyze(record.path, exception_address=address, thread_id=stack_thread, timeout=timeout)
    except PydbgautoError as e:
        return attr.evolve(
            record,
            verified=False,
            reader=READER,
            verify_seconds=time.monotonic() - started,
            verify_error=str(e),
        )
    problems = []
    if reading.threads is None:
        problems.append("the reader printed no thread list")
    elif at_break and not reading.threads.threads:
        problems.append("the reader's thread list has no managed thread")
    if no_pe:
        assert expect is not None and expect.exception is not None
        expected_at = address or expect.exception.address
        rows = [t for t in (reading.threads.threads if reading.threads else ()) if t.os_id == thread]
        if (
            not rows
            or rows[0].exception_type != expect.exception.type
            or rows[0].exception_address != expected_at
        ):
            problems.append(
                f"the dump's thread list does not show {expect.exception.type} at {expected_at:#x} on thread "
                f"{thread or 0:#x}"
            )
    elif expect is not None and expect.exception is not None:
        seen = reading.exception
        if seen is None:
            problems.append(
                f"no exception object at {address:#x}" if address else "no exception on the dump's thread"
            )
        elif seen.type != expect.exception.type or (address is not None and seen.address != address):
            problems.append(
                f"saw {seen.type} at {seen.address:#x}, expected {expect.exception.type} at {address:#x}"
                if address
                else f"saw {seen.type}, expected {expect.exception.type}"
            )
    if deep:
        if reading.threads is not None and not any(t.os_id == thread for t in reading.threads.threads):
            problems.append(f"thread {thread:#x} is not in the dump's managed thread list")
    elif thread is not None:
        if reading.stack is None or reading.stack.os_thread_id != thread:
            problems.append(f"thread {thread:#x} has no managed stack in the dump")
    return attr.evolve(
        record,
        verified=not problems,
        reader=READER,
        verify_seconds=time.monotonic() - started,
        verify_error="; ".join(problems) or None,
        seen_exception_type=(
            reading.exception.type
            if reading.exception
            else (expect.exception.type if no_pe and not problems and expect and expect.exception else None)
        ),
        seen_thread_id=reading.stack.os_thread_id if reading.stack else None,
        seen_stack=reading.stack,
        reader_warnings=reading.warnings,
    )
