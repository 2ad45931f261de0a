"""The cdb commands pydbgauto sends, and the few facts it reads back from their replies.

Shared by the cdb driver (over a console) and the pykd driver (through ``pykd.dbgCommand``): both
talk to the same debugger engine, so the command line, the event filters, SOS loading, the
in-debugger type filter, ``~e`` thread prefixes and ``.dump`` are built here once. Every user
string goes through :mod:`pydbgauto.drivers.cdb_safety` first.

Pure but for :func:`write_dump_with`, which looks at the dump file around the command.
Event banners, ``.dump`` replies and SOS's load failures are read in ``pydbgauto.sos``; this module
only maps them to the driver's :class:`~pydbgauto.drivers.base.RawStop` and to errors.
"""

from __future__ import annotations

import os
import re
from typing import Callable, Optional, Sequence

from pydbgauto.drivers.base import RawStop, StopKind, Target
from pydbgauto.drivers.cdb_safety import (
    IS_WINDOWS,
    check_command,
    check_dump_path,
    check_image_name,
    check_symbol_path,
    check_type_names,
    quote_path,
)
from pydbgauto.errors import ConfigurationError, DumpError, ParseError, SosError, UnsafeInputError
from pydbgauto.sos.reader_output import SOS_LOAD_FAILURES

__all__ = [
    "CLR_EXCEPTION_CODES",
    "CLR_FILTERS",
    "DUMP_OPTIONS",
    "arm_commands",
    "build_command_line",
    "classify_stop",
    "disarm_commands",
    "load_sos_with",
    "dump_command",
    "process_id",
    "sos_load_commands",
    "thread_command",
    "type_filter_command",
    "type_filter_commands",
    "user_command",
    "write_dump_with",
]


# CLR 4+/.NET Core ("CCR" + 0xe0000000) and CLR 1.x-2.0 ("COM").
CLR_EXCEPTION_CODES = (0xE0434352, 0xE0434F4D)
# The event filters that stop at them: cdb's own "clr" name and the two codes.
CLR_FILTERS = ("clr",) + tuple(f"{code:x}" for code in CLR_EXCEPTION_CODES)

DUMP_OPTIONS = frozenset({"/ma", "/mA", "/mfFhut", "/m", "/mh", "/mi"})


# ---------------------------------------------------------------------------------------------
# Starting cdb


def build_command_line(
    cdb: str,
    target: Target,
    *,
    symbol_path: str,
    init_file: str,
    extra: Sequence[str] = (),
) -> list[str]:
    """cdb's argv for ``target``: always ``-pd -noshell -cf <empty> -lines -y <symbols>``,
    then ``-p PID``, ``-pn NAME``, or (launch) ``-2 -noinh -hd`` and the target's argv last."""
    check_symbol_path(symbol_path)
    argv = [cdb, "-pd", "-noshell", "-cf", init_file, "-lines", "-y", symbol_path, *extra]
    chosen = [x is not None for x in (target.argv, target.pid, target.name)]
    if sum(chosen) != 1:
        raise ConfigurationError("a Target needs exactly one of argv (launch), pid or name (attach)")
    if target.pid is not None:
        if not isinstance(target.pid, int) or isinstance(target.pid, bool) or target.pid <= 0:
            raise ConfigurationError(f"pid must be a positive integer, not {target.pid!r}")
        argv += ["-p", str(target.pid)]
    elif target.name is not None:
        argv += ["-pn", check_image_name(target.name)]
    else:
        assert target.argv is not None
        if not target.argv:
            raise ConfigurationError("launching needs a non-empty argv")
        for arg in target.argv:
            if "\n" in arg or "\r" in arg or "\x00" in arg:
                raise ConfigurationError(f"argument {arg!r} of the target contains a line break or NUL")
        # -2: a console target gets its own console; -noinh: it inherits none of cdb's handles,
        # so its output never lands in cdb's pipe; -hd: the normal (not the debug) heap.
        argv += ["-2", "-noinh", "-hd", *target.argv]
    return argv


def process_id(text: str) -> Optional[int]:
    """The target's pid from the reply to ``|.`` (``. 0 id: 1a2c attach name: ...``)."""
    m = re.search(r"\bid:\s*([0-9a-fA-F]+)\b", text)
    return int(m.group(1), 16) if m else None


def sos_load_commands(runtime: str, sos_path: Optional[str]) -> list[str]:
    """The commands that load SOS for ``runtime`` (``clr``, ``mscorwks`` or ``coreclr``)."""
    if runtime == "clr":
        return [".loadby sos clr"]
    if runtime == "mscorwks":
        return [".loadby sos mscorwks"]
    if runtime == "coreclr":
        if sos_path:
            check_dump_path(sos_path, windows=IS_WINDOWS)  # same character rules as any path
            return [f".load {quote_path(sos_path) if ' ' in sos_path else sos_path}"]
        return [".loadby sos coreclr"]
    raise ConfigurationError(f"unknown runtime {runtime!r}: expected clr, mscorwks or coreclr")


def load_sos_with(run: Callable[[str], str], runtime: str, sos_path: Optional[str]) -> str:
    """Load SOS for ``runtime`` by passing :func:`sos_load_commands` to ``run``; the command that
    loaded it. SosError, with what to install, when the debugger says the load failed."""
    loaded = ""
    for command in sos_load_commands(runtime, sos_path):
        reply = run(command)
        if SOS_LOAD_FAILURES.search(reply):
            raise SosError(
                f"{command} failed: {reply.strip()[-400:]!r}. For .NET Core install SOS with "
                "'dotnet tool install -g dotnet-sos' and 'dotnet-sos install', "
                "or pass sos_path=<sos.dll>."
            )
        loaded = command
    return loaded


# ---------------------------------------------------------------------------------------------
# Stopping at CLR exceptions


def arm_commands() -> list[str]:
    """Break at every first-chance CLR exception."""
    return [f"sxe {f}" for f in CLR_FILTERS]


def disarm_commands() -> list[str]:
    """No first-chance breaks and no type filter; sxd, not sxi: sxd is documented to break at the
    second chance, so an unhandled exception still stops (one printed line per first chance)."""
    return [f'sx- -c "" {f}' for f in CLR_FILTERS] + [f"sxd {f}" for f in CLR_FILTERS]


def type_filter_command(type_names: Sequence[str], derived: bool) -> str:
    """The ``-c`` text that makes cdb continue, inside the debugger, every CLR exception whose
    type is not one of ``type_names`` (SOS ``!soe`` sets ``$t1..$tN``; what ``!soe -create``
    installs, for several types at once)."""
    names = check_type_names(type_names)
    if not names:
        raise ConfigurationError("a type filter needs at least one type name")
    if len(names) > 19:
        raise ConfigurationError("at most 19 type names fit in cdb's pseudo-registers $t1..$t19")
    flag = "-derived " if derived else ""
    soes = ";".join(f"!soe {flag}{name} {i}" for i, name in enumerate(names, start=1))
    any_hit = "|".join(f"@$t{i}" for i in range(1, len(names) + 1))
    return f"{soes};.if(({any_hit})==0) {{g}} .else {{.echo 'pydbgauto: type filter hit'}}"


def type_filter_commands(type_names: Sequence[str], derived: bool) -> list[str]:
    """Break only at the CLR exceptions of ``type_names`` (see :func:`type_filter_command`); an
    empty list removes the filter (the breaks stay as they were)."""
    if not type_names:
        return [f'sx- -c "" {f}' for f in CLR_FILTERS]
    command = type_filter_command(type_names, derived)
    return [f'sxe -c "{command}" {f}' for f in CLR_FILTERS]


def classify_stop(body: str, lastevent: str) -> RawStop:
    """Why the target stopped, from the reply to ``g`` and the output of ``.lastevent``."""
    from pydbgauto.sos.events import parse_events

    text = body + ("\n" + lastevent if lastevent else "")
    if "No runnable debuggees" in body:
        return RawStop(kind=StopKind.EXIT, description="no runnable debuggees", text=text)
    events = parse_events(lastevent) or parse_events(body)
    if not events:
        return RawStop(kind=StopKind.OTHER, description=lastevent.strip() or "unknown stop", text=text)
    event = events[-1]
    description = str(event)
    if event.description.lower().startswith("exit process"):
        m = re.search(r"code\s+([0-9a-fA-Fx]+)", event.description)
        status = int(m.group(1), 16) if m else None
        return RawStop(
            kind=StopKind.EXIT, thread_id=event.tid, exit_status=status, description=description, text=text
        )
    if event.code in CLR_EXCEPTION_CODES or event.description.startswith("CLR exception"):
        kind = StopKind.SECOND_CHANCE if event.chance == 2 else StopKind.FIRST_CHANCE
        return RawStop(kind=kind, thread_id=event.tid, description=description, text=text)
    if event.chance == 2:
        return RawStop(kind=StopKind.SECOND_CHANCE, thread_id=event.tid, description=description, text=text)
    return RawStop(kind=StopKind.OTHER, thread_id=event.tid, description=description, text=text)


# ---------------------------------------------------------------------------------------------
# The user's commands and dumps


def thread_command(command: str, thread_id: int) -> str:
    """``command`` run on the thread whose OS thread id is ``thread_id``: ``~~[0x<tid>]e <command>``
    (``~e`` runs a command on one thread without changing cdb's current thread)."""
    if not isinstance(thread_id, int) or isinstance(thread_id, bool) or not 0 < thread_id <= 0xFFFFFFFF:
        raise ConfigurationError(f"thread_id must be a positive 32-bit OS thread id, not {thread_id!r}")
    if command.lstrip().startswith("~"):
        raise ConfigurationError(f"{command!r} already names its thread(s); do not pass thread_id as well")
    return f"~~[0x{thread_id:x}]e {command.strip()}"


def user_command(
    command: str, *, thread_id: Optional[int], allow_dangerous: bool, refuse_quit: Optional[str]
) -> str:
    """``command`` checked (:func:`~pydbgauto.drivers.cdb_safety.check_command`; and ``q``/``qq``
    refused with the reason ``refuse_quit`` when given, even if dangerous commands are allowed),
    then put on ``thread_id`` when given."""
    check_command(command, allow_dangerous=allow_dangerous)
    if refuse_quit and command.strip().lower() in ("q", "qq"):
        raise UnsafeInputError(refuse_quit)
    return command if thread_id is None else thread_command(command, thread_id)


def dump_command(path: str, options: str = "/ma") -> str:
    """``.dump <options> "<path>"`` for an absolute, safe ``path``."""
    check_dump_path(path, windows=IS_WINDOWS)
    if options not in DUMP_OPTIONS:
        raise ConfigurationError(f"dump options {options!r}: use one of {sorted(DUMP_OPTIONS)}")
    return f".dump {options} {quote_path(path)}"


def write_dump_with(run: Callable[[str], str], path: str, options: str, *, debugger: str) -> None:
    """Write a dump to exactly ``path`` (absolute, new) by passing :func:`dump_command` to ``run``.
    Success only when ``debugger`` says ``Dump successfully written`` and the file exists and is not
    empty; DumpError otherwise (and if ``path`` exists already: a dump is never overwritten)."""
    from pydbgauto.sos.dump_reply import parse_dump_result

    command = dump_command(path, options)
    if os.path.exists(path):
        raise DumpError(f"{path} already exists; pydbgauto never overwrites a dump")
    reply = run(command)
    try:
        result = parse_dump_result(reply)
    except ParseError:
        raise DumpError(f"{debugger}'s reply to .dump is not understood: {reply.strip()[-300:]!r}") from None
    if not result.success:
        raise DumpError(f"{debugger} could not write {path}: {result.error or reply.strip()[-300:]}")
    try:
        size = os.path.getsize(path)
    except OSError:
        raise DumpError(f"{debugger} said the dump was written, but {path} does not exist") from None
    if size <= 0:
        raise DumpError(f"{debugger} said the dump was written, but {path} is empty")
