"""The watch loop of one session: arm the stops, wait for events (a ``stop`` set ends the wait by breaking
in: stop_breaker.py), hand each to the :class:`~pydbgauto.watching.capture.StopHandler`, end at a limit,
and detach."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from typing import Any, Optional, Tuple

from pydbgauto import predicates as preds
from pydbgauto import processes
from pydbgauto.errors import DebuggerNotAnsweringError, DebuggerTimeoutError, PydbgautoError
from pydbgauto.policy import DumpPolicy, PolicyState
from pydbgauto.session import Session
from pydbgauto.watching.asked import AskedThrows
from pydbgauto.watching.capture import StopHandler
from pydbgauto.watching.checks import check_disk_for
from pydbgauto.watching.decision_log import open_private_log
from pydbgauto.watching.result import EventCallback, WatchResult
from pydbgauto.watching.signals import SignalGuard
from pydbgauto.watching.stop_breaker import StopBreaker

log = logging.getLogger(__name__)


class WatchLoop:
    """Runs one session's watch to its end and returns the :class:`WatchResult`; the session is closed
    (detached, the target runs on) whatever ends it.

    ``stop``: set from another thread, the loop ends between events (``ended == "stopped"``): the wait is
    broken into (with a driver that cannot, it runs in slices of ``poll_interval`` seconds). ``state``: as
    :class:`StopHandler`'s. ``guard``: the caller's :class:`SignalGuard`, told when a signal starts the end
    so that the detach is not cut short.
    """

    def __init__(
        self,
        session: Session,
        predicate: preds.Predicate,
        policy: DumpPolicy,
        process: str,
        log_path: str,
        on_event: Optional[EventCallback],
        in_debugger_filter: bool,
        stop: Optional[threading.Event] = None,
        poll_interval: float = 0.5,
        state: Optional[PolicyState] = None,
        guard: Optional[SignalGuard] = None,
    ) -> None:
        self.session = session
        self.handler = StopHandler(session, predicate, policy, process, on_event, state)
        self.log_path = log_path
        self.in_debugger_filter = in_debugger_filter
        self.thin = False  # stops come with the object's type, message and HResult (watching/thin.py)
        self.stop = stop
        self.poll_interval = poll_interval
        self.guard = guard
        self.count_at_arm: Optional[int] = None  # the runtime's exception counter when armed

    def run(self, timeout: Optional[float], log_file: Any = None) -> WatchResult:
        """Watch until a limit; ``log_file``: the open decision log (None: open ``log_path`` here)."""
        handler = self.handler
        started = time.monotonic()
        handler.deadline = None if timeout is None else started + timeout
        ended, exit_status, filtered, signum = "interrupted", None, False, None
        if log_file is None:
            log_file = os.fdopen(open_private_log(self.log_path), "a", encoding="utf-8")
        handler.log_fd = log_file.fileno()
        cancel = False  # a signal: the last dump, if not yet checked, is removed (all or nothing)
        try:
            with self.session, log_file:
                try:
                    ended, exit_status, filtered = self._loop(timeout, started)
                except KeyboardInterrupt as e:  # Ctrl-C or SIGTERM/SIGHUP (Interrupted): detach, summary
                    cancel = True
                    if self.guard is not None:
                        self.guard.defer()
                    signum = getattr(e, "signum", None) or signal.SIGINT
                    ended = "interrupted"
                    try:
                        handler.log_filtered()
                    except PydbgautoError as err:
                        log.warning("could not log the last filtered stops: %s", err)
                if not cancel:  # the detach resumes the target: the last check need not wait for it
                    handler.resumed()
        finally:  # after the detach: the last capture's record is written before the result
            handler.finish_pending(cancel)
        thrown = self._thrown_since_arm()  # as read at the detach (or the exit, or the kill)
        result = WatchResult(
            tuple(handler.captures),
            tuple(handler.decisions),
            ended,
            self.log_path,
            time.monotonic() - started,
            exit_status,
            filtered,
            exceptions=handler.exceptions,
            matches=handler.matches,
            signal=signum,
            thrown=thrown,
        )
        handler.on_event("done", {"result": result})
        return result

    def _arm(self) -> bool:
        """Stops on CLR exceptions, the predicate in the debugger where it can run there; True if it does."""
        handler, session = self.handler, self.session
        filtered = False
        session.break_on_clr_exceptions()
        if self.in_debugger_filter:
            filtered = session.set_filter(handler.predicate)
            # else Python decides every stop, from what the debugger read of the object where it can
            self.thin = not filtered and session.driver.read_fields_at_stops()
            if self.thin:  # and where the target can ask instead of stopping, decided as it asks
                asked = AskedThrows(handler.predicate, handler.predicate_lock, session.pid)
                handler.asked = asked if session.driver.ask_about_throws(asked.decide) else None
        if session.pid and os.name == "posix":
            check_disk_for(session.pid, handler.policy.dump_dir, handler.policy.min_free_disk)
            handler.dump_size = processes.memory_size(session.pid)
        handler.on_event(
            "armed",
            {
                "pid": session.pid,
                "versions": dict(session.versions),
                "filtered_in_debugger": filtered,
                "asked_without_stop": handler.asked is not None,
                "predicate": handler.predicate.describe(),
            },
        )
        return filtered

    def _thrown_since_arm(self) -> Optional[int]:
        now = self.session.driver.runtime_exception_count("end")
        if self.count_at_arm is None or now is None:
            return None
        return (now - self.count_at_arm) % 2**32  # the counter is 32 bits

    def _loop(self, timeout: Optional[float], started: float) -> Tuple[str, Optional[int], bool]:
        if self.stop is None or not self.session.driver.supports_interrupt_wait:
            return self._waits(timeout, started, sliced=self.stop is not None)
        with StopBreaker(self.session, self.stop):
            return self._waits(timeout, started, sliced=False)

    def _waits(
        self, timeout: Optional[float], started: float, sliced: bool
    ) -> Tuple[str, Optional[int], bool]:
        handler = self.handler
        filtered = self._arm()
        self.count_at_arm = self.session.driver.runtime_exception_count("arm")
        while True:
            if self.stop is not None and self.stop.is_set():
                return "stopped", None, filtered
            remaining = None if timeout is None else timeout - (time.monotonic() - started)
            if remaining is not None and remaining <= 0:
                return "timeout", None, filtered
            step, flush = remaining, None
            if sliced:  # a driver that cannot break in: slices, each broken into, to see ``stop``
                step = self.poll_interval if remaining is None else min(self.poll_interval, remaining)
            elif filtered or handler.asked is not None:
                # The stops the debugger's filter resumed (or the throws the predicate let go as the
                # target asked) are logged as they come, and neither lldb nor
                # Python holds a long watch's worth of them (memory stays flat): the wait ends at the first
                # such stop past poll_interval; the target is never stopped for that.
                flush = self.poll_interval
            handler.resumed()  # this wait resumes the target: the last dump's check may begin
            try:
                # Filtered in the debugger: a match may be dumped before SOS reads it (StopHandler); thin:
                # the predicate may decide before SOS reads it
                event = self.session.wait_for_event(
                    step, parse=not (filtered or self.thin), flush_after=flush
                )
            except DebuggerNotAnsweringError:
                handler.log_filtered()
                raise  # the debugger is hung: a debugger problem, not the end of the time
            except DebuggerTimeoutError:
                handler.log_filtered()
                if step != remaining or (flush is not None and not _past(timeout, started)):
                    continue  # only a slice or a flush ended: look at ``stop`` and the time limit again
                return "timeout", None, filtered
            handler.log_filtered()
            if event.kind == "break":  # the StopBreaker: ``stop`` is set
                continue
            if event.kind == "exit":
                handler.decide(event, matched=False)
                return "exit", event.exit_status, filtered
            if not handler.handle(event, parsed=not (filtered or self.thin)):
                return "timeout", None, filtered  # the predicate overran the time limit
            if handler.state.done:
                return "max-dumps", None, filtered


def _past(timeout: Optional[float], started: float) -> bool:
    return timeout is not None and time.monotonic() - started >= timeout
