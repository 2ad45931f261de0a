"""Drive cdb.exe (Windows): CLR exception stops, SOS, full dumps, and leaving the target alive.

The driver is the top of three layers: :mod:`~pydbgauto.drivers.cdb_transport` moves bytes,
:mod:`~pydbgauto.drivers.cdb_console` frames one command's reply, and the commands themselves are
built in :mod:`~pydbgauto.drivers.cdb_commands`. Guarantees:

- **Framing.** Every command is framed by start and end markers with a fresh token; a reply is
  the text between them, never late output of an older command (the console).
- **Time limits.** Each command and each resume has a limit (``None`` = wait forever). Past it
  cdb is broken in on (CTRL_BREAK_EVENT to its own process group on Windows), the stream is
  brought in step again, and :class:`~pydbgauto.errors.DebuggerTimeoutError` is raised with the
  target stopped.
- **The target survives.** cdb always starts with ``-pd``; the driver leaves with ``qd``
  (on close, on errors, on Ctrl-C) and never sends ``q`` to a live target. If cdb does not
  answer, its process tree is ended; the target is not.
- **Nothing smuggled.** User strings (dump paths, type names, symbol paths, ``execute()``
  text) are checked by :mod:`pydbgauto.drivers.cdb_safety` before anything is sent.

Stops are classified from the event banners in the reply to ``g`` and from ``.lastevent``,
both read by :func:`pydbgauto.sos.events.parse_events`; ``.dump`` replies by
:func:`pydbgauto.sos.dump_reply.parse_dump_result`. The driver does not interpret SOS
output: the Session runs ``!pe``/``!clrstack`` through :meth:`CdbDriver.execute`.
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
import time
from typing import TYPE_CHECKING, Mapping, Optional, Sequence

from pydbgauto.drivers.base import DEFAULT, Driver, RawStop, StopKind, Target, TimeLimit, resolve_timeout
from pydbgauto.drivers.cdb_commands import (
    arm_commands,
    build_command_line,
    classify_stop,
    disarm_commands,
    load_sos_with,
    process_id,
    type_filter_commands,
    user_command,
    write_dump_with,
)
from pydbgauto.drivers.cdb_console import DEFAULT_RESYNC_TIMEOUT, CdbConsole, deadline_after
from pydbgauto.drivers.cdb_locate import default_symbol_path, find_cdb, find_coreclr_sos
from pydbgauto.drivers.cdb_prompt import debugger_version, detect_runtime
from pydbgauto.drivers.cdb_safety import check_symbol_path
from pydbgauto.drivers.cdb_transport import make_transport
from pydbgauto.errors import (
    DebuggerDiedError,
    DebuggerError,
    DebuggerTimeoutError,
    NotDotnetError,
    TargetExitedError,
)

if TYPE_CHECKING:
    from pydbgauto.models import DumpRecord, StopEvent

# A dump is reopened by a second cdb (cdb_reopen.py); the names stay importable from here for users.
from pydbgauto.drivers.cdb_reopen import read_dump_with_cdb, verify_dump_with_cdb  # noqa: E402

__all__ = ["CdbDriver", "read_dump_with_cdb", "verify_dump_with_cdb"]

log = logging.getLogger(__name__)


class CdbDriver(Driver):
    """The cdb implementation of :class:`pydbgauto.drivers.base.Driver`."""

    name = "cdb"
    sos_prefix = "!"
    supports_break_in = True

    def __init__(
        self,
        target: Target,
        *,
        cdb_path: Optional[str] = None,
        symbol_path: Optional[str] = None,
        sos_path: Optional[str] = None,
        transport: str = "pipes",
        command_timeout: Optional[float] = 60.0,
        startup_timeout: Optional[float] = 120.0,
        resync_timeout: float = DEFAULT_RESYNC_TIMEOUT,
        encoding: Optional[str] = None,
        env: Optional[Mapping[str, str]] = None,
    ) -> None:
        self.target = target
        self.command_timeout = command_timeout
        self.startup_timeout = startup_timeout
        self._env = dict(os.environ if env is None else env)
        self._cdb_path = cdb_path
        self._symbol_path = check_symbol_path(symbol_path or default_symbol_path(self._env))
        self._sos_path = sos_path
        self._transport_name = transport
        self._encoding = encoding
        self._resync_timeout = resync_timeout
        self._console: Optional[CdbConsole] = None
        self._init_file: Optional[str] = None
        self._pid: Optional[int] = target.pid
        self.runtime: Optional[str] = None
        self.sos_command: Optional[str] = None
        self.armed = False
        self.type_filter: tuple[tuple[str, ...], bool] | None = None
        self.argv: list[str] = []
        self.last_stop: Optional[RawStop] = None
        self._break_cond = threading.Condition()  # break_in from another thread while resume runs
        self._resuming = False
        self._break_requested = False
        self._break_result: Optional[RawStop] = None

    # -- Driver protocol --------------------------------------------------------------------
    @property
    def pid(self) -> Optional[int]:
        return self._pid

    def start(self) -> None:
        if self._console is not None:
            raise DebuggerError("this CdbDriver has already been started")
        cdb = find_cdb(self._cdb_path, env=self._env)
        fd, self._init_file = tempfile.mkstemp(prefix="pydbgauto-", suffix=".cdbinit")
        os.close(fd)  # -cf with an empty file: no ntsd.ini from the current folder runs
        try:
            self.argv = build_command_line(
                cdb, self.target, symbol_path=self._symbol_path, init_file=self._init_file
            )
            env = dict(self._env)
            cwd = None
            if not self.target.attaching:
                env.update(self.target.env)
                cwd = self.target.cwd
            self._console = CdbConsole(
                make_transport(self._transport_name, self._encoding), resync_timeout=self._resync_timeout
            )
            self._console.start(self.argv, env, cwd, self.startup_timeout)
            self._setup()
        except BaseException:
            self.close()  # a start that failed leaves neither cdb nor its init file behind
            raise

    def execute(
        self,
        command: str,
        timeout: TimeLimit = DEFAULT,
        *,
        thread_id: Optional[int] = None,
        allow_dangerous: bool = False,
    ) -> str:
        """Run one cdb command while stopped and return its output (prompts and symbol noise removed).

        ``timeout``: seconds, ``None`` for no limit, or the driver's ``command_timeout`` if left out.
        ``thread_id``: the OS thread id (as in ``RawStop.thread_id``) to run the command on, sent
        as ``~~[0x<tid>]e <command>``; cdb's current thread is left as it was.
        Refuses line breaks always, and commands that end, detach or resume the target, run
        programs or scripts, or write files unless ``allow_dangerous=True``. ``q``/``qq`` are
        refused in attach mode even then (they would end the target).
        """
        quit_refused = "'q' ends an attached target; pydbgauto leaves with 'qd' (close())"
        command = user_command(
            command,
            thread_id=thread_id,
            allow_dangerous=allow_dangerous,
            refuse_quit=quit_refused if self.target.attaching else None,
        )
        return self._run([command], self._timeout(timeout), what=f"command {command!r}")

    def arm_clr_exceptions(self) -> None:
        self._run(arm_commands(), self.command_timeout, what="sxe clr")
        self.armed = True

    def disarm_clr_exceptions(self) -> None:
        self._run(disarm_commands(), self.command_timeout, what="sxd clr")
        self.armed = False
        self.type_filter = None

    def set_type_filter(self, type_names: Sequence[str], derived: bool) -> None:
        """Continue, inside cdb, every CLR exception whose type is not in ``type_names``
        (or, with ``derived``, not derived from one of them). An empty list removes the filter.
        Second-chance exceptions always stop.

        Not what ``set_filter`` does (cdb keeps the base class's "not supported"): the stops this filter
        lets pass leave no record the Session could list with ``take_filtered`` (each needs the exception
        object's address, which only SOS's ``!pe`` text would give), so a watch's decision log would lose
        them."""
        commands = type_filter_commands(type_names, derived)
        if not type_names:
            self._run(commands, self.command_timeout, what="clear type filter")
            self.type_filter = None
            return
        self._run(commands, self.command_timeout, what="type filter")
        self.type_filter = (tuple(type_names), derived)
        self.armed = True

    def resume(self, timeout: Optional[float]) -> RawStop:
        with self._break_cond:
            self._resuming = True
        stop: Optional[RawStop] = None
        try:
            try:
                body = self._run(["g"], timeout, what="resume (g)")
            except KeyboardInterrupt:
                self._leave()
                raise
            lastevent = self._run([".lastevent"], self.command_timeout, what=".lastevent")
            stop = classify_stop(body, lastevent)
            if self._break_requested and stop.kind is StopKind.OTHER:
                # our own break-in: cdb reports it as a break instruction on a thread it injected
                stop = RawStop(
                    StopKind.BREAK, thread_id=stop.thread_id, description=stop.description, text=stop.text
                )
        finally:
            with self._break_cond:
                self._resuming = self._break_requested = False
                self._break_result = stop
                self._break_cond.notify_all()
        assert stop is not None
        if stop.kind is StopKind.EXIT:
            log.info("target exited: %s", stop.description)
        self.last_stop = stop
        return stop

    def break_in(self, timeout: Optional[float] = 30.0) -> RawStop:
        """Stop the target now: while ``resume`` runs in another thread, break in (Ctrl+Break to cdb's
        process group, as for a time limit) and return the stop that ``resume`` returns too (kind BREAK,
        or the event that won the race). Otherwise the target is already stopped (attach stops it, and
        cdb runs it only inside ``resume``): a BREAK stop on the last event's thread."""
        with self._break_cond:
            if self._resuming:
                if self._console is None or self._console.ended:
                    raise DebuggerDiedError("cdb has already ended")
                if not self._break_requested:
                    self._break_requested = True
                    self._console.transport.interrupt()
                deadline = None if timeout is None else time.monotonic() + timeout
                while self._resuming:
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        raise DebuggerTimeoutError(f"cdb did not break in within {timeout} s")
                    self._break_cond.wait(remaining)
                if self._break_result is None:
                    raise DebuggerError("the wait that was broken into failed; see the error it raised")
                return self._break_result
        thread = self.last_stop.thread_id if self.last_stop is not None else None
        return RawStop(StopKind.BREAK, thread_id=thread, description="stopped under the debugger")

    def write_dump(self, path: str, timeout: Optional[float], *, options: str = "/ma") -> None:
        """``.dump /ma "<path>"`` to exactly ``path`` (absolute, new). Success only when cdb says
        ``Dump successfully written`` and the file exists and is not empty."""
        limit = self._timeout(timeout)
        write_dump_with(
            lambda command: self._run([command], limit, what=".dump"), path, options, debugger="cdb"
        )

    def versions(self) -> Mapping[str, str]:
        out = {"debugger": "cdb"}
        if self._console is not None:
            v = debugger_version(self._console.banner)
            if v:
                out["cdb"] = v
        if self.runtime:
            out["runtime"] = self.runtime
        if self.sos_command:
            out["sos"] = self.sos_command
        return out

    def verify_dump(
        self, record: "DumpRecord", expect: "Optional[StopEvent]", *, timeout: Optional[float] = 300.0
    ) -> "DumpRecord":
        """Reopen a dump this driver wrote with a second, independent ``cdb -z`` (same cdb.exe, SOS
        loaded as in this session): ``pydbgauto.readers.cdb``. Never raises for a mismatch."""
        from pydbgauto.readers.cdb import verify_dump_with_cdb_z

        return verify_dump_with_cdb_z(
            record,
            expect,
            sos_command=self.sos_command,
            cdb_path=self._cdb_path,
            env=self._env,
            transport=self._transport_name,
            timeout=timeout,
        )

    def detach(self) -> None:
        self._leave()

    def close(self) -> None:
        self._leave()
        if self._init_file:
            try:
                os.unlink(self._init_file)
            except OSError:
                pass
            self._init_file = None

    def __enter__(self) -> "CdbDriver":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals --------------------------------------------------------------------------
    def _timeout(self, timeout: TimeLimit) -> Optional[float]:
        return resolve_timeout(timeout, self.command_timeout)

    def _run(self, lines: Sequence[str], timeout: Optional[float], *, what: str) -> str:
        if self._console is None:
            raise DebuggerError("the cdb driver is not started")
        try:
            return self._console.run(lines, timeout, what=what)
        except KeyboardInterrupt:
            self._leave()
            raise

    def _leave(self) -> None:
        console = self._console
        if console is None or console.ended:
            return
        console.quit_detached()

    def _setup(self) -> None:
        t = self.command_timeout
        self._run([], t, what="first sync")
        self._run(
            [".prompt_allow -dis -ea -reg -src -sym", "!sym quiet", ".outmask- 0x244", "sxe epr"],
            t,
            what="setup",
        )
        self._pid = self._pid or process_id(self._run(["|."], t, what="|."))
        self.runtime = detect_runtime(self._run(["lm"], t, what="lm"))
        if self.runtime is None and not self.target.attaching:
            self.runtime = self._run_until_runtime_loads()
        if self.runtime is None:
            raise NotDotnetError(
                f"process {self._pid} has no .NET runtime loaded (none of coreclr, clr, mscorwks in 'lm')"
            )
        self._load_sos()

    def _run_until_runtime_loads(self) -> Optional[str]:
        """Launch: stop at every module load until a CLR is in; SOS can then load before the
        first managed exception (only one ``ld:`` filter is kept, so ``sxe ld`` for all)."""
        deadline = deadline_after(self.startup_timeout)
        self._run(["sxe ld"], self.command_timeout, what="sxe ld")
        try:
            while True:
                remaining = None if deadline is None else max(0.1, deadline - time.monotonic())
                body = self._run(["g"], remaining, what="run to the runtime's module load")
                if "No runnable debuggees" in body:
                    raise TargetExitedError("the target exited before a .NET runtime loaded")
                runtime = detect_runtime(self._run(["lm"], self.command_timeout, what="lm"))
                if runtime:
                    return runtime
                last = self._run([".lastevent"], self.command_timeout, what=".lastevent")
                if "Exit process" in last:
                    raise TargetExitedError("the target exited before a .NET runtime loaded")
        finally:
            if self._console is not None and not self._console.ended and not self._console.broken:
                self._run(["sxn ld"], self.command_timeout, what="sxn ld")

    def _load_sos(self) -> None:
        assert self.runtime is not None
        sos = self._sos_path
        if self.runtime == "coreclr" and sos is None:
            sos = find_coreclr_sos(env=self._env)
        elif sos is not None:
            sos = find_coreclr_sos(sos, env=self._env)

        def run(command: str) -> str:
            return self._run([command], self.command_timeout, what=command)

        self.sos_command = load_sos_with(run, self.runtime, sos if self.runtime == "coreclr" else None)
