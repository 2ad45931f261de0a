"""Dump now: stop a running .NET process, record what every thread is doing, write a verified full dump,
and let it run on (a hang dump). ``pydbgauto dump`` and ``pda.dump_now``::

    import pydbgauto as pda
    snap = pda.dump_now(pid=1234, dump_dir="/var/dumps")       # the process keeps running
    print(snap.dump, len(snap.stacks), [e.exception.type for e in snap.exceptions if e.exception])

Inside a session of your own, ``snapshot(session, dump_dir)`` does the same at any stop (``break_in()``
first if the target runs in another thread's ``wait_for_event``). The capture record
(``<dump>.json``, mode 0600) holds the stop, the ``clrthreads`` table, every thread's managed stack
(``clrstack -all``), and ``pe`` of each exception a thread holds.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any, List, Mapping, Optional, Tuple

from pydbgauto import arg_types, errors, processes
from pydbgauto.dumpfile import check_dump_folder
from pydbgauto.errors import ConfigurationError, PydbgautoError
from pydbgauto.models import ManagedStack, SnapshotRecord, ThreadExceptionRecord, ThreadTable
from pydbgauto.policy import DumpPolicy
from pydbgauto.session import Session
from pydbgauto.sos import parse_clrstack_all
from pydbgauto.watching.records import write_new_json

__all__ = ["dump_now", "snapshot", "register"]

HANG = "hang"  # the {exception} part of a snapshot's file name
MAX_NAME_TRIES = 100


def snapshot(
    session: Session,
    dump_dir: str = ".",
    *,
    process: Optional[str] = None,
    verify: bool = True,
    timeout: Optional[float] = 600.0,
) -> SnapshotRecord:
    """At the session's current stop (breaking in if needed): threads, every managed stack, the exceptions
    threads hold, then a full dump in ``dump_dir`` named like watch's (``{process}_{pid}_{n}_hang_{time}``)
    with its record beside it. A dump that fails is in ``dump_error`` (the record is written anyway)."""
    folder = os.path.abspath(dump_dir)
    check_dump_folder(folder)
    started = time.monotonic()
    previous, was_running = session.last_event, session.waiting
    event = session.break_in()
    problems: List[str] = []
    threads: Optional[ThreadTable] = None
    stacks: Tuple[ManagedStack, ...] = ()
    try:
        threads = session.threads()
    except PydbgautoError as e:
        problems.append(f"clrthreads: {e}")
    try:
        stacks = parse_clrstack_all(session.sos("clrstack -all"))
    except PydbgautoError as e:
        problems.append(f"clrstack -all: {e}")
    exceptions = _thread_exceptions(session, threads)
    # At an exception stop the exception may not be in clrthreads yet (.NET 9+ lists it once dispatch
    # has begun): the stop's own exception is current on its thread.
    stop = event if event.exception is not None else (None if was_running else previous)
    listed = {e.thread_id for e in exceptions}
    if stop is not None and stop.exception is not None and stop.thread_id and stop.thread_id not in listed:
        exceptions = (ThreadExceptionRecord(thread_id=stop.thread_id, exception=stop.exception),) + exceptions
    pid = session.pid or 0
    path = _new_path(folder, process or processes.name_of(pid), pid)
    gathered = time.monotonic()
    dump, dump_error = None, None
    try:
        dump = session.dump(path, verify=verify, expect=event, timeout=timeout)
    except PydbgautoError as e:
        dump_error = str(e)
    timings = {"gather": gathered - started}
    if dump is not None:
        timings["dump_write"] = dump.seconds
        if dump.verify_seconds is not None:
            timings["verify"] = dump.verify_seconds
    record = SnapshotRecord(
        event=event,
        threads=threads,
        stacks=stacks,
        exceptions=exceptions,
        dump=dump,
        dump_error=dump_error,
        errors=tuple(problems),
        timings=timings,
        versions=dict(session.versions),
        record_path=(dump.path if dump else path) + ".json",
    )
    write_new_json(record.record_path or path + ".json", record.to_dict())
    return record


def dump_now(
    pid: Optional[int] = None,
    *,
    name: Optional[str] = None,
    dump_dir: str = ".",
    verify: bool = True,
    debugger: Optional[str] = None,
    timeout: Optional[float] = 600.0,
    session_options: Optional[Mapping[str, Any]] = None,
) -> SnapshotRecord:
    """Attach to a running process (``pid`` or ``name``), take a ``snapshot``, detach: it keeps running."""
    if (pid is None) == (name is None):
        raise ConfigurationError("dump_now takes exactly one of pid= or name=")
    if pid is not None and (not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0):
        raise ConfigurationError(f"pid must be a positive integer, not {pid!r}")
    if timeout is not None and timeout <= 0:
        raise ConfigurationError(f"timeout must be positive seconds (or None), not {timeout!r}")
    folder = os.path.abspath(dump_dir)
    check_dump_folder(folder)
    options = dict(session_options or {})
    with Session.attach(pid, name=name, debugger=debugger, **options) as session:
        process = name if name is not None else processes.name_of(session.pid or 0)
        return snapshot(session, folder, process=process, verify=verify, timeout=timeout)


def _thread_exceptions(session: Session, threads: Optional[ThreadTable]) -> Tuple[ThreadExceptionRecord, ...]:
    found: List[ThreadExceptionRecord] = []
    for thread in threads.threads if threads else ():
        if not thread.exception_address:
            continue
        try:
            exception = session.exception(thread.exception_address)
            found.append(ThreadExceptionRecord(thread_id=thread.os_id, exception=exception))
        except PydbgautoError as e:
            found.append(ThreadExceptionRecord(thread_id=thread.os_id, error=str(e)))
    return tuple(found)


def _new_path(folder: str, process: str, pid: int) -> str:
    policy = DumpPolicy(dump_dir=folder)
    now = time.time()
    for n in range(1, MAX_NAME_TRIES + 1):
        path = policy.path(process, pid, HANG, now, n)
        if not os.path.lexists(path) and not os.path.lexists(path + ".json"):
            return path
    raise errors.DumpError(f"{MAX_NAME_TRIES} snapshots of pid {pid} this second already: try again")


# ----- the command ------------------------------------------------------------------------------------

EXIT_OK, EXIT_USAGE, EXIT_DUMP = 0, 2, 5


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``dump`` to the ``pydbgauto`` command's subparsers."""
    p = subparsers.add_parser(
        "dump",
        help="write a verified full dump of a running .NET process now, and leave it running",
        description="Attach to a running .NET process, stop it, record every thread's managed stack and "
        "the exceptions threads hold, write a verified full dump with its capture record, and detach: "
        "the process runs on (a hang dump). Exit codes: 0 written (and verified unless --no-verify), "
        "2 bad input, 3 the target cannot be debugged, 4 the debugger or SOS is missing or failed, "
        "5 the dump could not be written or verified, 130 interrupted (the target was left running).",
    )
    target = p.add_mutually_exclusive_group(required=True)
    target.add_argument("--pid", type=arg_types.process_id, help="the process id")
    target.add_argument("--name", help="the process name (exactly one process must have it)")
    p.add_argument(
        "--dump-dir", default=".", help="where the dump and its record go (must exist; default: .)"
    )
    p.add_argument(
        "--no-verify", action="store_true", help="do not reopen the dump with an independent reader"
    )
    p.add_argument(
        "--timeout",
        type=arg_types.positive_seconds,
        default=600.0,
        help="seconds to write (and verify) the dump",
    )
    p.add_argument("--debugger", choices=["lldb", "cdb"], help="default: lldb on Linux, cdb on Windows")
    p.add_argument("--json", action="store_true", help="print the capture record as JSON")
    p.set_defaults(run=run)
    return p


def run(args: argparse.Namespace) -> int:
    """The ``dump`` subcommand; errors go up to ``cli.main``, which maps them to exit codes."""
    if args.name is not None and (not args.name.strip() or "/" in args.name):
        raise ConfigurationError(f"--name takes a process name such as ThrowingApp, not {args.name!r}")
    check_dump_folder(os.path.abspath(args.dump_dir))
    record = dump_now(
        args.pid,
        name=args.name,
        dump_dir=args.dump_dir,
        verify=not args.no_verify,
        debugger=args.debugger,
        timeout=args.timeout,
    )
    if args.json:
        print(json.dumps(record.to_dict(include_raw=False)))
    else:
        _print_text(record)
    sys.stdout.flush()
    if record.dump is None or (not args.no_verify and not record.dump.verified):
        if record.dump is None:
            print(f"pydbgauto: the dump could not be written: {record.dump_error}", file=sys.stderr)
        else:
            print(f"pydbgauto: the dump is NOT verified: {record.dump.verify_error}", file=sys.stderr)
        return EXIT_DUMP
    return EXIT_OK


def _print_text(record: SnapshotRecord) -> None:
    print(str(record))
    for stack in record.stacks:
        top = next((f for f in stack.frames if f.kind == "managed"), None)
        where = (top.method or top.call_site) if top is not None else "(no managed frame)"
        print(f"  thread {stack.os_thread_id or 0:#x}: {where}")
    for item in record.exceptions:
        print(f"  {item}".replace("\n", "\n  "))
    for problem in record.errors:
        print(f"  could not read: {problem}")
    print(f"record: {record.record_path}")
