"""One debugger attached to one .NET process: the API users script against.

    with Session.launch([app, "first-chance"]) as s:   # or Session.attach(pid=...) / attach(name=...)
        s.break_on_clr_exceptions()
        ev = s.wait_for_event(timeout=60)             # StopEvent: kind, thread, parsed exception and stack
        rec = s.dump("/tmp/app.core")                  # full dump, written safely and verified

The Session picks a driver (lldb on Linux, cdb on Windows), turns the driver's raw stops into
StopEvents with the SOS parsers, and owns the rules for dump files (new name, 0600, temporary name
then rename, verification). Leaving - by ``close()``, a Python exception, a time-out or Ctrl-C - detaches
and leaves the target running; no debugger process is left behind.
"""

from __future__ import annotations

import atexit
import logging
import os
import sys
import threading
import time
import weakref
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import attr

from pydbgauto import dumpfile, processes, stop_events
from pydbgauto.drivers.choose import default_debugger, make_driver
from pydbgauto.drivers.base import DEFAULT, Driver, RawStop, StopKind, Target, TimeLimit, resolve_timeout
from pydbgauto.errors import ConfigurationError, DebuggerError, DumpError, PydbgautoError, TargetExitedError
from pydbgauto.models import DumpRecord, ManagedException, ManagedStack, StopEvent, ThreadTable
from pydbgauto.sos import parse_clrstack, parse_pe, parse_threads

log = logging.getLogger(__name__)

_OPEN_SESSIONS: "weakref.WeakSet[Session]" = weakref.WeakSet()
# A stopped thread with more frames than this is not given to clrstack (minutes on a stack overflow):
# it is read in bounds (pydbgauto.sos.deepstack), within STACK_BUDGET seconds.
STACK_FRAME_LIMIT = 1000
STACK_BUDGET = 10.0


@atexit.register
def _close_open_sessions() -> None:
    """An interpreter that exits with sessions open still detaches them."""
    for session in list(_OPEN_SESSIONS):
        try:
            session.close()
        except Exception:  # pragma: no cover - best effort at exit
            pass


class Session:
    """A debugger attached to one .NET process. Use ``Session.launch`` or ``Session.attach``."""

    def __init__(
        self, driver: Driver, *, kill_on_close: bool = False, command_timeout: Optional[float] = 60.0
    ):
        self.driver = driver
        self.kill_on_close = kill_on_close
        self.command_timeout = command_timeout
        self._sequence = 0
        self._closed = False
        self._exited = False
        self.last_event: Optional[StopEvent] = None
        self._last_raw: Optional[RawStop] = None  # the driver's stop behind last_event
        self._type_cache: Dict[int, Tuple[str, ...]] = {}
        self._filtered: List[StopEvent] = []
        self._event_cond = threading.Condition()  # break_in from another thread waits on it
        self._waiting = False  # wait_for_event is running
        self.stack_frame_limit = STACK_FRAME_LIMIT
        self._partial_dumps: List[str] = []  # temporary dump files of interrupted dumps, removed at close
        self.stack_budget = STACK_BUDGET

    # ----- construction -------------------------------------------------------------------------------

    @classmethod
    def launch(
        cls,
        argv: Sequence[str],
        *,
        debugger: Any = None,
        env: Optional[Mapping[str, str]] = None,
        cwd: Optional[str] = None,
        kill_on_close: bool = False,
        command_timeout: Optional[float] = 60.0,
        **driver_options: Any,
    ) -> "Session":
        """Start ``argv`` under the debugger, stopped once the runtime is up (before Main runs)."""
        if isinstance(argv, str) or not argv:
            raise ConfigurationError("launch takes a non-empty list of arguments, e.g. ['./MyApp', 'arg']")
        target = Target(
            argv=tuple(str(a) for a in argv), env=dict(env or {}), cwd=cwd, kill_on_close=kill_on_close
        )
        return cls._start(target, debugger, kill_on_close, command_timeout, driver_options)

    @classmethod
    def attach(
        cls,
        pid: Optional[int] = None,
        *,
        name: Optional[str] = None,
        wait: bool = False,
        wait_timeout: Optional[float] = None,
        debugger: Any = None,
        command_timeout: Optional[float] = 60.0,
        **driver_options: Any,
    ) -> "Session":
        """Attach to a running process by pid or by name (``wait=True``: wait for it to start)."""
        if (pid is None) == (name is None):
            raise ConfigurationError("attach takes exactly one of pid= or name=")
        # lldb on Linux: refuse pids no debugger can attach to, with the real cause, before lldb starts.
        linux_lldb = (debugger or default_debugger()) == "lldb" and sys.platform.startswith("linux")
        if pid is not None:
            if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
                raise ConfigurationError(f"pid must be a positive integer, not {pid!r}")
            if linux_lldb:
                processes.check_attachable(pid)
            target = Target(pid=pid)
        else:
            assert name is not None
            if (debugger or default_debugger()) == "cdb" or not isinstance(debugger, (str, type(None))):
                target = Target(name=name)  # cdb resolves -pn itself
            else:
                started = time.monotonic()
                found = processes.find_one(name, wait=wait, timeout=wait_timeout)
                if linux_lldb and wait:  # just started: give it the rest of the time to load the runtime
                    left = (
                        None if wait_timeout is None else max(wait_timeout - (time.monotonic() - started), 0)
                    )
                    processes.wait_for_runtime(found, left)
                elif linux_lldb:
                    processes.check_attachable(found)
                target = Target(pid=found, name=name)
        return cls._start(target, debugger, False, command_timeout, driver_options)

    @classmethod
    def _start(
        cls,
        target: Target,
        debugger: Any,
        kill_on_close: bool,
        command_timeout: Optional[float],
        driver_options: Mapping[str, Any],
    ) -> "Session":
        driver = make_driver(target, debugger, {"command_timeout": command_timeout, **driver_options})
        driver.start()
        session = cls(driver, kill_on_close=kill_on_close, command_timeout=command_timeout)
        _OPEN_SESSIONS.add(session)
        return session

    # ----- what the user calls ------------------------------------------------------------------------

    @property
    def pid(self) -> Optional[int]:
        return self.driver.pid

    @property
    def versions(self) -> Mapping[str, str]:
        return self.driver.versions()

    def break_on_clr_exceptions(self) -> None:
        """Stop at every first-chance managed exception from now on; second chance always stops."""
        self._check_open()
        self.driver.arm_clr_exceptions()

    def stop_breaking_on_clr_exceptions(self) -> None:
        self._check_open()
        self.driver.disarm_clr_exceptions()

    def wait_for_event(
        self, timeout: Optional[float] = None, *, parse: bool = True, flush_after: Optional[float] = None
    ) -> StopEvent:
        """Let the target run to its next exception stop or its exit.

        ``timeout`` None waits for ever; past it, DebuggerTimeoutError (the target is then stopped, and
        ``close()`` lets it go). With ``parse`` the event carries the parsed ``pe`` and ``clrstack``;
        without, only what the debugger read of the exception object (its type, where it knows it):
        ``read_stop`` parses the same stop later, while the target is still stopped there.
        ``flush_after``: that error too at the first stop the filter resumed past so many seconds (see
        ``take_filtered``); lldb never stops the target for it.
        """
        self._check_open()
        if self._exited:
            raise TargetExitedError("the target has exited; there are no more events")
        with self._event_cond:
            self._waiting = True
        try:
            try:
                flush = self.driver.resume_to_flush
                raw = self.driver.resume(timeout) if flush_after is None else flush(timeout, flush_after)
            finally:
                self._collect_filtered()  # they happened before this event: number them first
            self._sequence += 1
            event = self._event_from(raw, parse)
            if raw.kind is StopKind.EXIT:
                self._exited = True
            self.last_event, self._last_raw = event, raw
        finally:
            with self._event_cond:
                self._waiting = False
                self._event_cond.notify_all()
        return event

    def read_stop(self, event: StopEvent) -> StopEvent:
        """``event`` (the last, read without ``parse``) with pe and clrstack parsed, the target still
        stopped there: the same sequence number and time. SOS's failures are in ``error``."""
        self._check_open()
        if event is not self.last_event or self._last_raw is None or self._waiting:
            raise PydbgautoError("read_stop reads the last event's stop, before the next wait_for_event")
        self.last_event = attr.evolve(self._event_from(self._last_raw, True), time=event.time)
        return self.last_event

    @property
    def waiting(self) -> bool:
        """True while ``wait_for_event`` runs (in another thread): the target runs."""
        return self._waiting

    def break_in(self, timeout: Optional[float] = 30.0) -> StopEvent:
        """Stop the target now (every thread) and return the stop, a StopEvent of kind ``"break"``.

        Called from another thread while ``wait_for_event`` runs, it interrupts that wait, which returns
        the same event (if an exception stop wins the race, both get that event instead). Otherwise the
        target is already stopped (after an attach, or at an event): the event describes that state.
        ``dump()`` works at such a stop; ``wait_for_event`` lets the target run on.
        """
        self._check_open()
        if self._exited:
            raise TargetExitedError("the target has exited; there is nothing to break into")
        if not self.driver.supports_break_in:
            raise DebuggerError(f"the {self.driver.name} driver cannot break in to a running target")
        with self._event_cond:
            waiting, before = self._waiting, self._sequence
        raw = self.driver.break_in(timeout)
        if waiting:
            with self._event_cond:
                self._event_cond.wait_for(lambda: not self._waiting, timeout)
                if self.last_event is None or self.last_event.sequence <= before:
                    raise DebuggerError("the wait that was broken into ended without an event")
                return self.last_event
        self._sequence += 1
        event = self._event_from(raw, True)
        self.last_event = event
        return event

    def set_filter(self, predicate: Any) -> bool:
        """Let the debugger side decide ``predicate`` at each first-chance stop where it can.

        Returns True when the debugger evaluates it (a predicate made only of pydbgauto's helpers);
        False when every stop must come back to Python (a plain callable, or a debugger without it).
        Stops the debugger let pass are listed by ``take_filtered()``.
        """
        self._check_open()
        spec = predicate.to_spec() if predicate is not None else None
        if spec is None and predicate is not None:  # a plain callable: every stop comes back to Python
            self.driver.set_filter(None)
            return False
        return bool(self.driver.set_filter(spec)) and spec is not None

    def take_filtered(self) -> List[StopEvent]:
        """First-chance stops the debugger-side filter resumed without reporting, as events, oldest first."""
        events, self._filtered = self._filtered, []
        return events

    def _collect_filtered(self) -> None:
        for item in self.driver.take_filtered():
            self._sequence += 1
            self._filtered.append(
                StopEvent(
                    kind="first-chance",
                    sequence=self._sequence,
                    pid=self.pid,
                    thread_id=item.thread_id,
                    exception_address=item.exception_address,
                    exception=ManagedException(address=item.exception_address, type=item.type, message=None),
                    description=item.description,
                    time=item.time,
                    filtered=True,
                )
            )

    def execute(self, command: str, timeout: TimeLimit = DEFAULT, **options: Any) -> str:
        """Run one debugger command while stopped; return its text as printed.

        ``timeout``: seconds, None for no limit, left out for the session's ``command_timeout``."""
        self._check_open()
        return self.driver.execute(command, resolve_timeout(timeout, self.command_timeout), **options)

    def sos(self, command: str, timeout: TimeLimit = DEFAULT) -> str:
        """Run an SOS command with the prefix this debugger needs (``!pe`` on cdb, ``pe`` on lldb)."""
        return self.execute(self.driver.sos_prefix + command, timeout)

    def exception(self, address: Optional[int] = None) -> Optional[ManagedException]:
        text = self.sos(f"pe 0x{address:x}" if address else "pe")
        return parse_pe(text)

    def stack(self, thread_id: Optional[int] = None) -> ManagedStack:
        """The managed stack of ``thread_id`` (an OS thread id), or of the current thread.

        Every driver takes ``thread_id=`` in ``execute`` (lldb: selects the thread; cdb/pykd:
        ``~~[0x<tid>]e``), so the stack is never silently another thread's.
        """
        if thread_id is not None:
            return parse_clrstack(self.execute(self.driver.sos_prefix + "clrstack", thread_id=thread_id))
        return parse_clrstack(self.sos("clrstack"))

    def threads(self) -> ThreadTable:
        return parse_threads(self.sos(self.driver.threads_command))

    def type_chain(self, address: int) -> Tuple[str, ...]:
        """The exception's type and its base types, most derived first (walks ``dumpmt`` parents)."""
        return stop_events.type_chain(self, address)

    def dump(
        self,
        path: str,
        *,
        verify: bool = True,
        expect: Optional[StopEvent] = None,
        checksum: bool = True,
        timeout: Optional[float] = 600.0,
        verifier: Optional[Callable[[DumpRecord, Optional[StopEvent]], DumpRecord]] = None,
    ) -> DumpRecord:
        """Write a full dump of the stopped target to ``path``.

        Never overwrites: ``path`` must not exist. The dump is written to a temporary name in the same
        folder (mode 0600), fsync'ed and renamed into place. With ``verify`` an independent reader
        (dotnet-dump analyze on Linux) reopens it and must see the exception of ``expect`` (default: the
        last event) on the same thread; at a stop with no exception (a ``break_in``, a fresh attach) it
        must list the runtime's managed threads instead. ``verifier(record, expect) -> DumpRecord``
        replaces that reader; by default it is the driver's ``verify_dump`` when it has one (cdb: a second
        ``cdb -z``), else ``pydbgauto.verify.verify_dump`` (dotnet-dump).
        """
        self._check_open()
        final = os.path.abspath(path)
        folder = os.path.dirname(final)
        dumpfile.check_dump_folder(folder)
        if os.path.lexists(final):
            raise DumpError(f"{final} already exists; pydbgauto never overwrites a dump: choose another name")
        temp = dumpfile.temporary_name(final)
        started = time.monotonic()
        pid = self.pid
        died = DumpError(
            f"the target (pid {pid}) died while its dump was written: the incomplete dump was removed; "
            f"nothing was written to {final}"
        )
        try:
            try:
                self.driver.write_dump(temp, timeout)
            except DumpError as e:
                if pid and self.driver.local_process and not processes.alive(pid):
                    self._exited = True
                    raise died from e
                raise
            if pid and self.driver.local_process and not processes.alive(pid):
                self._exited = True
                raise died
            if not os.path.isfile(temp) or os.path.getsize(temp) == 0:
                raise DumpError(f"the debugger reported success but wrote nothing to {temp}")
            os.chmod(temp, 0o600)
            dumpfile.rename_no_overwrite(temp, final)
        except BaseException:  # a failure, a signal, a time-out: nothing partial stays
            if os.path.lexists(temp):
                os.unlink(temp)
            # Interrupted (Ctrl-C) before the debugger created it, it may still: close() removes it then.
            self._partial_dumps.append(temp)
            raise
        try:
            record = DumpRecord(path=final, size=os.path.getsize(final), seconds=time.monotonic() - started)
        except KeyboardInterrupt:  # a signal before the dump was checked: all or nothing
            os.unlink(final)
            raise
        check = verifier or self.driver.verify_dump
        last = expect if expect is not None else self.last_event
        return dumpfile.check_written(record, last, check, verify=verify, checksum=checksum)

    # ----- leaving ------------------------------------------------------------------------------------

    def detach(self) -> None:
        """Let the target go on alone; the debugger stays until ``close()``."""
        if not self._closed:
            self.driver.detach()

    def close(self) -> None:
        """Detach (or kill a launched target when asked) and end the debugger. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        _OPEN_SESSIONS.discard(self)
        try:
            if self.kill_on_close and not self._exited:
                try:
                    if not self.driver.kill_target():
                        log.warning(
                            "the %s driver cannot kill the target: it is left running", self.driver.name
                        )
                except PydbgautoError as e:
                    log.warning("could not kill the target: %s", e)
        finally:
            self.driver.close()
            for temp in self._partial_dumps:  # the debugger has ended: nothing writes them any more
                if os.path.lexists(temp):
                    os.unlink(temp)

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----- internals ----------------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise PydbgautoError(
                "this session is closed; start a new one with Session.launch or Session.attach"
            )

    def _event_from(self, raw: RawStop, parse: bool) -> StopEvent:
        return stop_events.event_from(self, raw, parse)
