"""The Linux driver: lldb as a child process, with pydbgauto's agent imported into it.

Commands go to lldb's stdin as ``pda <hex JSON>``; replies come back on a private pipe, framed by
markers, so nothing lldb or SOS prints on stdout can be mistaken for a reply. A second pipe lets us
interrupt a running wait (time limit, Ctrl-C). lldb runs in its own session so a terminal Ctrl-C
reaches only Python, which then stops the wait and detaches cleanly.

This module is the Driver's face; channel.py (requests and replies), process.py (lldb, the watchdog and
guardian, launch/attach, leaving), embedded_python.py hold the rest; the agent: agent.py, protocol.py.
"""

from __future__ import annotations

import collections
import functools
import logging
import os
import signal
import subprocess
import threading
import time
from typing import Any, Callable, Deque, Dict, List, Mapping, Optional, Tuple

from pydbgauto import locate
from pydbgauto.drivers.base import (
    DEFAULT,
    AskedThrow,
    AskedVerdict,
    Driver,
    FilteredStop,
    RawStop,
    StopKind,
    Target,
    TimeLimit,
    resolve_timeout,
)
from pydbgauto.drivers.framing import ReplyBuffer
from pydbgauto.drivers.lldb import protocol
from pydbgauto.drivers.lldb.channel import INTERRUPT_GRACE, _filtered_stops
from pydbgauto.drivers.lldb.embedded_python import find_lldb_python
from pydbgauto.drivers.lldb.process import LldbProcess, _debugger_tree
from pydbgauto.drivers.lldb.python_question import PythonQuestion
from pydbgauto.errors import DebuggerDiedError, DebuggerError, DebuggerTimeoutError, DumpError, TargetError

log = logging.getLogger(__name__)

DETACH_TIMEOUT = 15.0  # the longest detach
HUNG_DETACH_TIMEOUT = 3.0  # a hung lldb's time to detach (after a SIGCONT: it may be only stopped)
_ASKING = ("cxa-rethrow", "append-frame")  # asked: by .NET 8's stub, by the agent at .NET 9+'s stops


class LldbDriver(LldbProcess, Driver):
    """Drives one lldb process; implements pydbgauto.drivers.Driver."""

    name = "lldb"
    sos_prefix = ""
    threads_command = "clrthreads"
    supports_break_in = True
    supports_interrupt_wait = True
    local_process = True

    def __init__(
        self,
        target: Target,
        *,
        lldb_path: Optional[str] = None,
        sos_plugin: Optional[str] = None,
        command_timeout: Optional[float] = 60.0,
        startup_timeout: Optional[float] = 120.0,
        output_dir: Optional[str] = None,
    ) -> None:
        self.target = target
        self.lldb_path = locate.find_lldb(lldb_path)
        self.sos_plugin = locate.find_sos_plugin(sos_plugin)
        find_lldb_python(self.lldb_path)  # a bad PYDBGAUTO_LLDB_PYTHON is refused before lldb starts
        self.command_timeout = command_timeout
        self.startup_timeout = startup_timeout
        self._output_dir = output_dir
        self._proc: Optional[subprocess.Popen[bytes]] = None
        self._guardian: Optional[subprocess.Popen[bytes]] = None  # outlives lldb: drivers/lldb/guardian.py
        self._reply_r: Optional[int] = None
        self._cancel_w: Optional[int] = None
        self._buffer = ReplyBuffer()
        self._log: Deque[str] = collections.deque(maxlen=400)
        self._pid: Optional[int] = None
        self._attached = False  # True once a process is under the debugger
        self._hung = False  # lldb did not answer within a time limit and its grace
        self._in_flight: Optional[Tuple[str, str]] = None  # (token, op) of a request sent, not answered
        self._poked = False  # the target got a SIGSTOP from _cancel_wait
        self._own_output_dir: Optional[str] = None  # a folder we made for a launched target's output
        self._watchdog: Optional[subprocess.Popen[bytes]] = None  # pydbgauto/drivers/lldb/watchdog.py
        self._lock = threading.Lock()
        self.info: Dict[str, Any] = {}
        self.target_stdout: Optional[str] = None
        self._filtered: List[FilteredStop] = []  # first-chance stops the agent's filter let pass
        self._counts: Dict[str, int] = {}  # channel.py: runtime_exception_count
        self._question: Optional[PythonQuestion] = None  # the stub asks this process (ask_about_throws)
        self._ask = functools.partial(self._request, protocol.OP_ASK, command_timeout)  # its op_ask(name=)
        self._load_failure: Optional[List[str]] = None  # lldb's words when the agent did not load
        # break_in from another thread while resume runs (see break_in)
        self._break_cond = threading.Condition()
        self._resuming = False
        self._break_requested = False
        self._break_result: Optional[RawStop] = None
        self._stale_cancel = False  # a cancel byte may wait unread in the agent's pipe
        self._python_dir: Optional[str] = None  # holds the python3 link lldb's Python starts from
        self._lldb_python: Optional[str] = None
        self.target_stderr: Optional[str] = None

    # ----- Driver protocol ----------------------------------------------------------------------------

    @property
    def pid(self) -> Optional[int]:
        return self._pid

    def start(self) -> None:
        self._spawn()
        try:
            self.info["lldb"] = self._request(
                protocol.OP_INIT, self.startup_timeout, sos_plugin=self.sos_plugin
            )["lldb"]
            if self.target.argv is not None:
                described = self._launch()
            else:
                described = self._attach()
            self._pid = described["pid"]
            self._tell_watchdog(f"pid {self._pid}")
            self.info["runtime"] = described["runtime"]
        except BaseException:
            self.close()
            raise

    def execute(self, command: str, timeout: TimeLimit = DEFAULT, *, thread_id: Optional[int] = None) -> str:
        if "\n" in command or "\r" in command:
            raise DebuggerError("one command at a time: the command text has a line break")
        reply = self._request(
            protocol.OP_EXEC,
            resolve_timeout(timeout, self.command_timeout),
            command=command,
            thread_id=thread_id,
        )
        return reply["output"] + reply["error"]

    def arm_clr_exceptions(self) -> None:
        self.info["mechanism"] = self._request(protocol.OP_ARM, self.command_timeout)["mechanism"]

    def disarm_clr_exceptions(self) -> None:
        self._request(protocol.OP_DISARM, self.command_timeout)

    def resume(self, timeout: Optional[float], flush_after: Optional[float] = None) -> RawStop:
        if self._question is not None and self._question.given_up:  # the predicate keeps needing stops
            self._end_question()
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._break_cond:
                self._resuming = True
                self._break_result = None
            try:
                remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
                event = self._resume_once(remaining, flush_after)
            except BaseException:
                self._break_done(None)
                raise
            if event["kind"] == protocol.EVENT_CANCELLED and self._stale_cancel and not self._break_requested:
                # a cancel byte of an earlier break_in that the agent had not read: not a stop for anyone
                self._stale_cancel = False
                self._filtered.extend(_filtered_stops(event.get(protocol.FILTERED)))
                continue
            break
        stop = self._stop_from(event, timeout)
        if isinstance(stop, Exception):
            self._break_done(None)
            raise stop
        self._break_done(stop)
        return stop

    def break_in(self, timeout: Optional[float] = INTERRUPT_GRACE) -> RawStop:
        """Stop the target now, every thread; a stop of kind BREAK (or the event that won the race).

        While ``resume`` runs in another thread, this sends the agent's watchdog its cancel byte (it
        interrupts the target as for a time limit); that ``resume`` then returns the same stop as this
        call. Otherwise the target is already stopped (lldb runs it only inside ``resume``, and an attach
        stops it): the stop describes the current state, the selected thread.
        """
        with self._break_cond:
            if self._resuming:
                return self._break_running(timeout)
        return RawStop(
            StopKind.BREAK, thread_id=self._selected_thread(), description="stopped under the debugger"
        )

    def interrupt_wait(self, timeout: Optional[float] = INTERRUPT_GRACE) -> bool:
        """Break into a ``resume`` running in another thread, as ``break_in`` does; False, having done
        nothing, when none runs. Never a request of its own: that one would wait for the lock a ``resume``
        begun meanwhile holds (a watch's StopBreaker once hung so, until the wait's time limit)."""
        with self._break_cond:
            if not self._resuming:
                return False
            self._break_running(timeout)
            return True

    def _break_running(self, timeout: Optional[float]) -> RawStop:
        """The cancel byte to the running ``resume``, then its stop; ``_break_cond`` is held. The agent can
        miss a byte that comes as it resumes the target (``_cancel_wait``): each second another, and
        after the first second a SIGSTOP that ends the agent's run so that it reads it."""
        if self._cancel_w is None or not self._alive():
            raise DebuggerDiedError(f"lldb is not running; its last words: {self.last_output()}")
        if not self._break_requested:
            self._break_requested = True
            os.write(self._cancel_w, b"b")
        started = time.monotonic()
        deadline = None if timeout is None else started + timeout
        poked = False
        while self._resuming:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise DebuggerTimeoutError(f"the target did not stop within {timeout} s of breaking in")
            self._break_cond.wait(1.0 if remaining is None else min(1.0, remaining))
            if self._resuming and time.monotonic() - started >= 1.0:
                os.write(self._cancel_w, b"b")
                poked = poked or self._poke_target()
        result = self._break_result
        if result is None:
            raise DebuggerError("the wait that was broken into failed; see the error it raised")
        return result

    def resume_to_flush(self, timeout: Optional[float], flush_after: float) -> RawStop:
        """The agent ends the run at the first stop it would have resumed past ``flush_after``: the
        target is never interrupted for the log's sake (agent ``op_resume``)."""
        return self.resume(timeout, flush_after)

    def _resume_once(self, timeout: Optional[float], flush_after: Optional[float]) -> Dict[str, Any]:
        limit = None if timeout is None else timeout + INTERRUPT_GRACE
        args: Dict[str, Any] = {"timeout": timeout}
        if flush_after is not None:
            args["flush_after"] = flush_after
        try:
            return self._request(protocol.OP_RESUME, limit, **args)  # type: ignore[no-any-return]
        except KeyboardInterrupt:  # Ctrl-C, or a signal that ends the watch (pydbgauto.Interrupted)
            self._cancel_wait()
            raise

    def _break_done(self, stop: Optional[RawStop]) -> None:
        with self._break_cond:
            if self._break_requested and stop is not None and stop.kind is not StopKind.BREAK:
                self._stale_cancel = True  # the target stopped by itself first: the byte may be unread
            self._break_requested = False
            self._resuming = False
            self._break_result = stop
            self._break_cond.notify_all()

    def _selected_thread(self) -> Optional[int]:
        try:
            selected = self._request(protocol.OP_THREADS, self.command_timeout).get("selected")
        except (DebuggerError, TargetError):
            return None
        return int(selected) if selected else None

    def _stop_from(self, event: Dict[str, Any], timeout: Optional[float]) -> Any:
        """The RawStop of a reply to ``resume``, or the error to raise for it."""
        kind = event["kind"]
        self._filtered.extend(_filtered_stops(event.get(protocol.FILTERED)))
        if self._question is not None:
            self._question.learn(event.get("method_table"), event.get("type_chain"))
        if self._break_requested and kind in (protocol.EVENT_CANCELLED, protocol.EVENT_TIMEOUT):
            return RawStop(
                StopKind.BREAK, thread_id=self._selected_thread(), description="broken into (break_in)"
            )
        if kind == protocol.EVENT_TIMEOUT:
            return DebuggerTimeoutError(
                f"no debug event within {timeout} s; the target is stopped under the debugger"
            )
        if kind == protocol.EVENT_CANCELLED:
            return DebuggerError("the wait was cancelled")
        if kind == protocol.EVENT_EXIT:
            self._attached = False
            return RawStop(
                StopKind.EXIT,
                exit_status=event.get("exit_status"),
                description=event.get("description") or "",
            )
        return RawStop(
            StopKind(kind),
            thread_id=event.get("thread_id"),
            exception_address=event.get("exception_address"),
            description=event.get("description", ""),
            type_chain=tuple(event.get("type_chain") or ()),
            filter_matched=bool(event.get("filter_matched")),
            message=event.get("message"),
            hresult=event.get("hresult"),
            fields_read=bool(event.get("fields_read")),
            no_inner=bool(event.get("no_inner")),
        )

    def set_filter(self, spec: Optional[Dict[str, Any]]) -> bool:
        """Have the agent evaluate a predicate spec at each first-chance stop (None: report all).
        Returns True when the agent took it (a spec it cannot fully decide is left to the caller)."""
        reply = self._request(protocol.OP_SET_FILTER, self.command_timeout, spec=spec)
        self.info["filter_type_only"] = reply["type_only"]
        return bool(reply["filtering"])

    def read_fields_at_stops(self) -> bool:
        reply = self._request(protocol.OP_SET_FILTER, self.command_timeout, spec=None, read_fields=True)
        self.info["filter_type_only"] = False
        return bool(reply.get("reading_fields"))

    def ask_about_throws(self, decide: Callable[[AskedThrow], AskedVerdict]) -> bool:
        """After read_fields_at_stops: .NET 8's stub or the agent at .NET 9+'s stops asks ``decide`` here."""
        if self.info.get("mechanism") in _ASKING and self._pid is not None and self._question is None:
            self._question = PythonQuestion.start(self._pid, decide, self._ask)
        return self._question is not None

    def _end_question(self) -> None:
        question, self._question = self._question, None
        if question is not None:  # the agent turns it off (the target is stopped), then no one answers
            self._filtered.extend(question.end(self._ask if self._attached and self._alive() else None))
            self.info["python_question"] = question.stats()

    def stop_stack(
        self,
        thread_id: Optional[int],
        max_frames: int,
        budget: float,
        exception_address: Optional[int] = None,
    ) -> Dict[str, Any]:
        """The stopped thread's stack, bounded (the agent's ``stop_stack``: clrstack text or a reading
        for ``pydbgauto.sos.deepstack.build_stack``), and with ``exception_address`` the ``pe`` text of
        that object when the stack was within bounds; the reply comes within ``budget`` plus a grace."""
        reply = self._request(
            protocol.OP_STOP_STACK,
            budget + INTERRUPT_GRACE,
            thread_id=thread_id,
            max_frames=max_frames,
            budget=budget,
            exception_address=exception_address,
        )
        return dict(reply)

    def take_filtered(self) -> List[FilteredStop]:
        """The first-chance stops the agent's filter resumed since the last call."""
        filtered, self._filtered = self._filtered, []
        return self._question.with_passed(filtered) if self._question is not None else filtered

    def write_dump(self, path: str, timeout: Optional[float]) -> None:
        try:
            self.info["last_dump"] = self._request(protocol.OP_DUMP, timeout, path=path)
        except DebuggerTimeoutError:
            raise  # a hung debugger is a debugger problem, not a dump problem
        except DebuggerError as e:
            why = str(e).replace("lldb agent failed in 'dump': ", "")
            raise DumpError(f"the dump was not written ({why}); nothing was kept at {path}") from e

    def versions(self) -> Mapping[str, str]:
        runtime = self.info.get("runtime") or {}
        return {
            "debugger": str(self.info.get("lldb", "")),
            "sos": self.sos_plugin,
            "runtime": str(runtime.get("version") or "unknown"),
            "mechanism": str(self.info.get("mechanism", "")),
        }

    def stats(self) -> Dict[str, Any]:
        stats = self._request(protocol.OP_STATS, self.command_timeout)
        question = self._question.stats() if self._question is not None else self.info.get("python_question")
        return dict(stats, python_question=question) if question else stats

    def threads(self) -> List[int]:
        return list(self._request(protocol.OP_THREADS, self.command_timeout)["threads"])

    def detach(self) -> None:
        self._end_question()
        if self._attached and self._alive():
            self._request(protocol.OP_DETACH, _shorter(self.command_timeout, DETACH_TIMEOUT))
        self._attached = False

    def kill_target(self) -> bool:
        self._end_question()  # no one asks a killed target's questions
        if self._attached and self._alive():
            self._request(protocol.OP_KILL, self.command_timeout)
        self._attached = False
        return True

    def close(self) -> None:
        """Detach (the target keeps running), quit lldb, and make sure no lldb process is left."""
        try:
            if self._hung and self._alive():
                self._revive()
            if self._attached and self._alive():
                try:
                    self.detach()
                except Exception as e:  # the target may be gone; lldb must still go
                    log.warning("detach at close failed: %s", e)
        finally:
            self._end_question()  # when the detach did not run: no answers from here on
            self._stop_lldb()
            self._unpoke_target()
            self._remove_output_dir()

    def _revive(self) -> None:
        """A hung lldb: SIGCONT (it may only be stopped), interrupt its wait, give detach a short time."""
        assert self._proc is not None
        for pid in _debugger_tree(self._proc.pid):  # lldb-server runs in a process group of its own
            try:
                os.kill(pid, signal.SIGCONT)
            except (ProcessLookupError, PermissionError):
                pass
        self._cancel_wait(poke=False)  # a SIGSTOP on top of a debugger that is catching up confuses it
        if self._attached:
            try:
                self._request(protocol.OP_DETACH, HUNG_DETACH_TIMEOUT)
                self._attached = False
            except Exception as e:
                log.warning("the hung lldb did not detach within %s s: %s", HUNG_DETACH_TIMEOUT, e)
                self._attached = False  # do not wait for it again: it is killed next


def _shorter(a: Optional[float], b: float) -> float:
    return b if a is None else min(a, b)
