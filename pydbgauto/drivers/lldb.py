"""The Linux driver: lldb as a child process, with pydbgauto's agent imported into it.

Commands go to lldb's stdin as ``pda <hex JSON>``; replies come back on a private pipe, framed by
markers, so nothing lldb or SOS prints on stdout can be mistaken for a reply. A second pipe lets us
interrupt a running wait (time limit, Ctrl-C). lldb runs in its own session so a terminal Ctrl-C
reaches only Python, which then stops the wait and detaches cleanly.
"""

from __future__ import annotations

import collections
import functools
import json
import logging
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any, Deque, Dict, List, Mapping, Optional, Tuple

from pydbgauto import guardian, interrupts, locate, processes
from pydbgauto.drivers.base import (
    DEFAULT,
    Driver,
    FilteredStop,
    RawStop,
    StopKind,
    Target,
    TimeLimit,
    resolve_timeout,
)
from pydbgauto.drivers.framing import ReplyBuffer, new_token
from pydbgauto.errors import (
    AgentLoadError,
    ConfigurationError,
    DebuggerDiedError,
    DebuggerError,
    DebuggerNotAnsweringError,
    DebuggerNotFoundError,
    DebuggerTimeoutError,
    DumpError,
    NoSuchProcessError,
    NotDotnetError,
    TargetError,
    TargetExitedError,
)

log = logging.getLogger(__name__)

WATCHDOG_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "lldb_watchdog.py")
AGENT_PATH = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "agent", "lldb_agent.py"
)
PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# What lldb prints when `command script import` of the agent fails, and when the agent is not there.
IMPORT_FAILED = "error: module importing failed"
NO_AGENT = "error: 'pda' is not a valid command"
# Variables that would point lldb's embedded Python at another interpreter's files; lldb runs without
# them and a launched target gets them back.
FOREIGN_PYTHON_VARIABLES = ("PYTHONHOME", "PYTHONPATH")
LLDB_PYTHON_HINT = (
    "lldb's embedded Python must import attrs: install it for the Python lldb was built for "
    "(Debian: apt-get install python3-attr), or set PYDBGAUTO_LLDB_PYTHON to that interpreter "
    "(e.g. /usr/bin/python3.11); `pydbgauto doctor` checks this"
)
# How long a wait may overrun its own limit while the agent interrupts the target and replies. Past
# it lldb counts as hung (DebuggerNotAnsweringError).
INTERRUPT_GRACE = 5.0
# Leaving: the longest detach, and how long lldb may take to quit before it is killed.
DETACH_TIMEOUT = 15.0
QUIT_TIMEOUT = 5.0
# A hung lldb gets this long (after SIGCONT, in case it was only stopped) to detach before it is killed.
HUNG_DETACH_TIMEOUT = 3.0
# Requests whose reply is awaited even when a signal interrupts the wait: the agent is writing a file
# that must be removed after it is closed (removing it earlier would let the agent recreate it).
FINISH_ON_INTERRUPT = ("dump",)


class LldbDriver(Driver):
    """Drives one lldb process; implements pydbgauto.drivers.Driver."""

    name = "lldb"
    sos_prefix = ""
    threads_command = "clrthreads"
    supports_break_in = True
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
        self._guardian: Optional[subprocess.Popen[bytes]] = None  # outlives lldb: pydbgauto/guardian.py
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
        self._watchdog: Optional[subprocess.Popen[bytes]] = None  # pydbgauto/drivers/lldb_watchdog.py
        self._lock = threading.Lock()
        self.info: Dict[str, Any] = {}
        self.target_stdout: Optional[str] = None
        self._filtered: List[FilteredStop] = []  # first-chance stops the agent's filter let pass
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
            self.info["lldb"] = self._request("init", self.startup_timeout, sos_plugin=self.sos_plugin)[
                "lldb"
            ]
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
            "exec",
            resolve_timeout(timeout, self.command_timeout),
            command=command,
            thread_id=thread_id,
        )
        return reply["output"] + reply["error"]

    def arm_clr_exceptions(self) -> None:
        self.info["mechanism"] = self._request("arm", self.command_timeout)["mechanism"]

    def disarm_clr_exceptions(self) -> None:
        self._request("disarm", self.command_timeout)

    def resume(self, timeout: Optional[float]) -> RawStop:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._break_cond:
                self._resuming = True
                self._break_result = None
            try:
                event = self._resume_once(None if deadline is None else max(0.0, deadline - time.monotonic()))
            except BaseException:
                self._break_done(None)
                raise
            if event["kind"] == "cancelled" and self._stale_cancel and not self._break_requested:
                # a cancel byte of an earlier break_in that the agent had not read: not a stop for anyone
                self._stale_cancel = False
                self._filtered.extend(_filtered_stops(event.get("filtered")))
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
                if self._cancel_w is None or not self._alive():
                    raise DebuggerDiedError(f"lldb is not running; its last words: {self.last_output()}")
                if not self._break_requested:
                    self._break_requested = True
                    os.write(self._cancel_w, b"b")
                deadline = None if timeout is None else time.monotonic() + timeout
                while self._resuming:
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        raise DebuggerTimeoutError(
                            f"the target did not stop within {timeout} s of breaking in"
                        )
                    self._break_cond.wait(remaining)
                result = self._break_result
                if result is None:
                    raise DebuggerError("the wait that was broken into failed; see the error it raised")
                return result
        return RawStop(
            StopKind.BREAK, thread_id=self._selected_thread(), description="stopped under the debugger"
        )

    def _resume_once(self, timeout: Optional[float]) -> Dict[str, Any]:
        limit = None if timeout is None else timeout + INTERRUPT_GRACE
        try:
            return self._request("resume", limit, timeout=timeout)  # type: ignore[no-any-return]
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
            selected = self._request("threads", self.command_timeout).get("selected")
        except (DebuggerError, TargetError):
            return None
        return int(selected) if selected else None

    def _stop_from(self, event: Dict[str, Any], timeout: Optional[float]) -> Any:
        """The RawStop of a reply to ``resume``, or the error to raise for it."""
        kind = event["kind"]
        self._filtered.extend(_filtered_stops(event.get("filtered")))
        if self._break_requested and kind in ("cancelled", "timeout"):
            return RawStop(
                StopKind.BREAK, thread_id=self._selected_thread(), description="broken into (break_in)"
            )
        if kind == "timeout":
            return DebuggerTimeoutError(
                f"no debug event within {timeout} s; the target is stopped under the debugger"
            )
        if kind == "cancelled":
            return DebuggerError("the wait was cancelled")
        if kind == "exit":
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
        )

    def set_filter(self, spec: Optional[Dict[str, Any]]) -> bool:
        """Have the agent evaluate a predicate spec at each first-chance stop (None: report all).
        Returns True when the agent took it (a spec it cannot fully decide is left to the caller)."""
        reply = self._request("set_filter", self.command_timeout, spec=spec)
        self.info["filter_type_only"] = reply["type_only"]
        return bool(reply["filtering"])

    def stop_stack(self, thread_id: Optional[int], max_frames: int, budget: float) -> Dict[str, Any]:
        """The stopped thread's stack, bounded (the agent's ``stop_stack``: clrstack text or a reading
        for ``pydbgauto.sos.deepstack.build_stack``); the reply comes within ``budget`` plus a grace."""
        reply = self._request(
            "stop_stack", budget + INTERRUPT_GRACE, thread_id=thread_id, max_frames=max_frames, budget=budget
        )
        return dict(reply)

    def take_filtered(self) -> List[FilteredStop]:
        """The first-chance stops the agent's filter resumed since the last call."""
        filtered, self._filtered = self._filtered, []
        return filtered

    def write_dump(self, path: str, timeout: Optional[float]) -> None:
        try:
            self.info["last_dump"] = self._request("dump", timeout, path=path)
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
        return self._request("stats", self.command_timeout)

    def threads(self) -> List[int]:
        return list(self._request("threads", self.command_timeout)["threads"])

    def detach(self) -> None:
        if self._attached and self._alive():
            self._request("detach", _shorter(self.command_timeout, DETACH_TIMEOUT))
        self._attached = False

    def kill_target(self) -> bool:
        if self._attached and self._alive():
            self._request("kill", self.command_timeout)
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
                self._request("detach", HUNG_DETACH_TIMEOUT)
                self._attached = False
            except Exception as e:
                log.warning("the hung lldb did not detach within %s s: %s", HUNG_DETACH_TIMEOUT, e)
                self._attached = False  # do not wait for it again: it is killed next

    def _remove_output_dir(self) -> None:
        folder, self._own_output_dir = self._own_output_dir, None
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)

    # ----- lldb process -------------------------------------------------------------------------------

    def _spawn(self) -> None:
        reply_r, reply_w = os.pipe()
        cancel_r, cancel_w = os.pipe()
        self._python_dir = tempfile.mkdtemp(prefix="pydbgauto-lldb-python-")
        try:
            env, self._lldb_python = lldb_environment(self.lldb_path, os.environ, self._python_dir)
        except BaseException:
            shutil.rmtree(self._python_dir, ignore_errors=True)
            raise
        journal_w, self._guardian = guardian.start()  # restores the target's code if lldb dies
        # The owner tag lets tests (and doctor) tell our lldb processes from anyone else's.
        env.update(
            {
                "PYDBGAUTO_REPLY_FD": str(reply_w),
                "PYDBGAUTO_CANCEL_FD": str(cancel_r),
                "PYDBGAUTO_OWNER_PID": str(os.getpid()),
                guardian.GUARDIAN_FD_ENV: str(journal_w),
            }
        )
        try:
            self._proc = subprocess.Popen(
                [self.lldb_path, "--no-lldbinit", "--no-use-colors"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                pass_fds=(reply_w, cancel_r, journal_w),
                env=env,
                start_new_session=True,
            )
        except OSError as e:
            shutil.rmtree(self._python_dir, ignore_errors=True)
            raise DebuggerNotFoundError(f"cannot start {self.lldb_path}: {e}: {locate.INSTALL_HINT}") from e
        finally:
            os.close(reply_w)
            os.close(cancel_r)
            os.close(journal_w)
        self._reply_r, self._cancel_w = reply_r, cancel_w
        self._start_watchdog()
        threading.Thread(target=self._drain, daemon=True).start()
        self._send_line(agent_path_line())
        self._send_line(f"command script import {AGENT_PATH}")

    def _start_watchdog(self) -> None:
        """The watchdog that outlives us (pydbgauto/drivers/lldb_watchdog.py): it makes lldb let the target
        go should this process die while lldb waits (pydbgauto/guardian.py restores the code if lldb dies)."""
        assert self._proc is not None
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYDBGAUTO_")}
        try:
            self._watchdog = subprocess.Popen(
                [sys.executable, WATCHDOG_PATH, str(self._proc.pid)],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env=env,
                start_new_session=True,
            )
        except OSError as e:
            log.warning("no watchdog for lldb (%s): a crash of Python may leave the target traced", e)

    def _tell_watchdog(self, line: str, last: bool = False) -> None:
        watchdog = self._watchdog
        if watchdog is None or watchdog.stdin is None:
            return
        try:
            watchdog.stdin.write(line.encode() + b"\n")
            watchdog.stdin.flush()
            if last:
                watchdog.stdin.close()
                watchdog.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            pass
        if last:
            self._watchdog = None

    def _drain(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        failure: Optional[List[str]] = None
        for raw in iter(self._proc.stdout.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self._log.append(line)
            log.debug("lldb: %s", line)
            if self._load_failure is not None:
                continue
            if line.startswith(IMPORT_FAILED):
                failure = [line]
            elif failure is not None and not line.startswith("(lldb)") and NO_AGENT not in line:
                failure.append(line)
            elif failure is not None or NO_AGENT in line:
                self._load_failure = failure or [line]

    def _alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _send_line(self, line: str) -> None:
        assert self._proc is not None and self._proc.stdin is not None
        try:
            self._proc.stdin.write(line.encode("utf-8") + b"\n")
            self._proc.stdin.flush()
        except (BrokenPipeError, OSError) as e:
            raise DebuggerDiedError(f"lldb is gone ({e}); its last words: {self.last_output()}") from e

    def last_output(self, lines: int = 15) -> str:
        return " | ".join(list(self._log)[-lines:]) or "(nothing)"

    def _request(self, op: str, limit: Optional[float], **args: Any) -> Any:
        with self._lock:
            if not self._alive():
                raise DebuggerDiedError(f"lldb is not running; its last words: {self.last_output()}")
            token = new_token()
            payload = json.dumps(dict(args, token=token, op=op)).encode("utf-8").hex()
            with interrupts.critical():  # a signal between the two would hide the request from _cancel_wait
                self._send_line(f"pda {payload}")
                self._in_flight = (token, op)
            try:
                reply = self._wait_reply(token, limit, op)
            except KeyboardInterrupt:
                if op in FINISH_ON_INTERRUPT:
                    self._finish_in_flight(token, limit, op)
                    self._in_flight = None
                raise
        data = json.loads(reply.body)
        if data.get("ok"):
            return data["result"]
        raise self._error(op, data)

    def _wait_reply(self, token: str, timeout: Optional[float], op: str):  # type: ignore[no-untyped-def]
        assert self._reply_r is not None
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with interrupts.critical():  # taken and no longer in flight, together
                reply = self._buffer.take(token)
                if reply is not None and self._in_flight is not None and self._in_flight[0] == token:
                    self._in_flight = None
            if reply is not None:
                if reply.noise.strip():
                    log.debug("dropped stale reply text: %r", reply.noise[:200])
                return reply
            if self._load_failure is not None:
                raise self._agent_load_error()
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                self._hung = True
                raise DebuggerNotAnsweringError(
                    f"lldb did not answer '{op}' within {timeout:g} s: it is hung (or stopped); pydbgauto "
                    f"ends it and detaches if it can. Last output: {self.last_output()}"
                )
            ready, _, _ = select.select(
                [self._reply_r], [], [], 0.5 if remaining is None else min(0.5, remaining)
            )
            if ready:
                data = os.read(self._reply_r, 1 << 16)
                if not data:
                    raise DebuggerDiedError(f"lldb ended during '{op}'; its last words: {self.last_output()}")
                self._buffer.feed(data.decode("utf-8", "replace"))
            elif not self._alive():
                raise DebuggerDiedError(f"lldb ended during '{op}'; its last words: {self.last_output()}")

    def _agent_load_error(self) -> AgentLoadError:
        lines = self._load_failure or []
        cause = next((x.strip() for x in reversed(lines) if re.match(r"\s*\w+(Error|Exception)\b", x)), "")
        cause = cause or (lines[-1].strip() if lines else "unknown cause")
        version = lldb_python_version(self.lldb_path) or "?"
        python = self._lldb_python or f"no python{version} was found"
        return AgentLoadError(
            f"pydbgauto's agent could not load inside lldb's embedded Python {version} ({python}): "
            f"{cause}. Fix: {LLDB_PYTHON_HINT}"
        )

    def _error(self, op: str, data: Dict[str, Any]) -> Exception:
        kind, message = data.get("kind"), data.get("error", "unknown error")
        if kind == "internal":
            log.debug("agent traceback: %s", data.get("traceback"))
        if kind == "not-dotnet":
            return NotDotnetError(message)
        if kind in ("exited", "no-process"):
            self._attached = False
            return TargetExitedError(message)
        if kind in ("attach", "launch"):
            return TargetError(message)
        if kind == "sos":
            return DebuggerNotFoundError(f"{message}: {locate.SOS_HINT}")
        return DebuggerError(f"lldb agent failed in '{op}': {message}")

    def _cancel_wait(self, poke: bool = True) -> None:
        """Interrupt the agent's wait (if one is in flight) and collect its reply, so lldb is ready for
        detach.

        The stops the agent's filter let pass during the cancelled wait are kept (``take_filtered``), so
        the decision log still has them. The agent's watchdog can miss a cancel byte that arrives just as
        it resumes the target; then, after a second, the target gets a SIGSTOP (only while our lldb-server
        traces it; lldb stops on it and suppresses it) so the agent's wait returns and reads the next
        cancel byte. ``close`` sends SIGCONT should that SIGSTOP ever outlive the session.
        """
        in_flight = self._in_flight
        log.debug("cancel: in flight %s", in_flight)
        if in_flight is None or in_flight[1] != "resume" or self._cancel_w is None or not self._alive():
            return
        token = in_flight[0]
        started = time.monotonic()
        next_cancel = started
        poked = False
        try:
            while True:
                reply = self._buffer.take(token)
                if reply is not None:
                    log.debug("cancel: the wait ended after %.2f s", time.monotonic() - started)
                    self._in_flight = None
                    self._keep_filtered(reply.body)
                    return
                now = time.monotonic()
                if now - started > INTERRUPT_GRACE:
                    self._hung = True  # no answer within the grace: close() ends lldb
                    return
                if now >= next_cancel:
                    os.write(self._cancel_w, b"x")
                    next_cancel = now + 1.0
                if poke and not poked and now - started > 1.0:
                    poked = self._poke_target()
                ready, _, _ = select.select([self._reply_r], [], [], 0.2)
                if ready:
                    data = os.read(self._reply_r, 1 << 16)  # type: ignore[arg-type]
                    if not data:
                        return
                    self._buffer.feed(data.decode("utf-8", "replace"))
        except OSError:
            pass

    def _poke_target(self) -> bool:
        """SIGSTOP the target, only while lldb-server of ours traces it (see ``_cancel_wait``)."""
        pid = self._pid
        if not pid or not self._traced_by_us(pid):
            return False
        try:
            os.kill(pid, signal.SIGSTOP)
        except OSError:
            return False
        self._poked = True
        log.info("the agent missed the cancel: pid %s got a SIGSTOP to end the wait", pid)
        return True

    @staticmethod
    def _traced_by_us(pid: int) -> bool:
        tracer = processes.tracer_of(pid)
        if not tracer:
            return False
        try:
            with open(f"/proc/{tracer}/environ", "rb") as f:
                return f"PYDBGAUTO_OWNER_PID={os.getpid()}".encode() in f.read().split(b"\0")
        except OSError:
            return False

    def _unpoke_target(self) -> None:
        """After the session: a target left stopped (state T, untraced) by our SIGSTOP gets SIGCONT."""
        pid = self._pid
        if not self._poked or not pid:
            return
        self._poked = False
        if processes.state_of(pid) == "T" and not processes.tracer_of(pid):
            try:
                os.kill(pid, signal.SIGCONT)
                log.warning("pid %s was left stopped by the cancel's SIGSTOP: sent SIGCONT", pid)
            except OSError:
                pass

    def _keep_filtered(self, body: str) -> None:
        """The ``filtered`` list of a resume reply nobody waits for any more."""
        try:
            result = json.loads(body).get("result") or {}
        except ValueError:
            return
        self._filtered.extend(_filtered_stops(result.get("filtered")))

    def _finish_in_flight(self, token: str, limit: Optional[float], op: str) -> None:
        """After an interrupt: wait (within ``limit``) for the reply of ``op`` the agent is still working
        on, so whatever it writes is complete and closed before the caller removes it."""
        try:
            self._wait_reply(token, limit, op)
        except Exception as e:  # noqa: BLE001 - the interrupt is what the caller reports
            log.warning("'%s' did not finish after the interrupt: %s", op, e)

    def _launch(self) -> Dict[str, Any]:
        assert self.target.argv is not None
        out_dir = self._output_dir
        if out_dir is None:  # removed at close: pass output_dir= to keep the target's output
            out_dir = self._own_output_dir = tempfile.mkdtemp(prefix="pydbgauto-")
        self.target_stdout = os.path.join(out_dir, "target.stdout")
        self.target_stderr = os.path.join(out_dir, "target.stderr")
        argv = list(self.target.argv)
        if not os.path.exists(argv[0]):
            raise TargetError(f"cannot launch {argv[0]}: no such file")
        described = self._request(
            "launch",
            self.startup_timeout,
            argv=argv,
            env=target_environment(self.target.env),
            stdout=self.target_stdout,
            stderr=self.target_stderr,
            stdin=None,
            cwd=self.target.cwd,
        )
        self._attached = True
        return described

    def _attach(self) -> Dict[str, Any]:
        pid = self.target.pid
        assert pid is not None
        if not os.path.exists(f"/proc/{pid}"):
            raise NoSuchProcessError(f"no process with pid {pid}")
        try:
            described = self._request("attach", self.startup_timeout, pid=pid)
        except TargetError as e:
            # lldb says "lost connection" for most failures: look for the real cause ourselves.
            processes.check_attachable(pid, require_dotnet=False)
            raise TargetError(f"{e} (no cause found in /proc/{pid}: try attaching with lldb -p {pid})") from e
        self._attached = True
        return described

    def _stop_lldb(self) -> None:
        proc = self._proc
        if proc is None:
            return
        tree = _debugger_tree(proc.pid) if proc.poll() is None else []
        try:
            if proc.poll() is None:
                try:
                    self._send_line("quit")
                    proc.stdin.close()  # type: ignore[union-attr]
                except (DebuggerDiedError, OSError):
                    pass
                try:
                    proc.wait(timeout=0.5 if self._hung else QUIT_TIMEOUT)
                except subprocess.TimeoutExpired:
                    proc.kill()  # lldb alone: the guardian ends lldb-server without freeing an int3
                    proc.wait(timeout=10)
            guardian.reap(self._guardian)  # it ends once lldb and lldb-server are gone
            _kill_group(proc.pid)  # lldb and its lldb-server share the session: nothing may stay
        finally:
            # lldb-server has a process group of its own; a stopped or hung one would stay (and keep the
            # target traced): end whatever of lldb's tree is left once lldb is gone.
            for pid in tree[1:]:
                _kill_if_debugger(pid)
            self._tell_watchdog("bye", last=True)
            for fd in (self._reply_r, self._cancel_w):
                if fd is not None:
                    try:
                        os.close(fd)
                    except OSError:
                        pass
            self._reply_r = self._cancel_w = None
            self._proc = None
            guardian.reap(self._guardian)
            self._guardian = None
            if self._python_dir is not None:
                shutil.rmtree(self._python_dir, ignore_errors=True)
                self._python_dir = None


def _debugger_tree(root: int) -> List[int]:
    """``root`` and its descendants (lldb, lldb-server), from the parent pids in /proc."""
    children: Dict[int, List[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                raw = f.read().decode("utf-8", "replace")
            ppid = int(raw[raw.rindex(")") + 2 :].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def _kill_if_debugger(pid: int) -> None:
    """SIGKILL ``pid`` if it is still an lldb process (a pid is not reused within this fraction of a second,
    but check its name all the same)."""
    try:
        with open(f"/proc/{pid}/comm", encoding="utf-8", errors="replace") as f:
            if not f.read().startswith("lldb"):
                return
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


# ----- lldb's embedded Python -------------------------------------------------------------------------


@functools.lru_cache(maxsize=8)
def lldb_python_dir(lldb_path: str) -> Optional[str]:
    """Where lldb's own Python module lives (``lldb -P``): /usr/lib/llvm-19/lib/python3.11/site-packages."""
    try:
        done = subprocess.run(
            [lldb_path, "-P"], capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL
        )
    except (OSError, subprocess.SubprocessError):
        return None
    lines = done.stdout.strip().splitlines()
    return lines[-1].strip() if done.returncode == 0 and lines else None


def lldb_python_version(lldb_path: str) -> Optional[str]:
    """The ``X.Y`` of the Python lldb was built for, read from its module folder."""
    folder = lldb_python_dir(lldb_path) or ""
    m = re.search(r"python(\d+\.\d+)", folder)
    return m.group(1) if m else None


def find_lldb_python(lldb_path: str) -> Optional[str]:
    """The interpreter lldb's embedded Python belongs to: PYDBGAUTO_LLDB_PYTHON, else pythonX.Y of the
    system (lldb's libpython comes from the distribution: Debian's /usr/bin/python3.11)."""
    explicit = os.environ.get("PYDBGAUTO_LLDB_PYTHON")
    if explicit:
        if not (os.path.isfile(explicit) and os.access(explicit, os.X_OK)):
            raise ConfigurationError(
                f"PYDBGAUTO_LLDB_PYTHON={explicit} is not an executable: point it at the Python lldb was "
                f"built for (`{lldb_path} -P` names its folder), or unset it"
            )
        return explicit
    version = lldb_python_version(lldb_path)
    if version is None:
        return None
    for folder in ("/usr/bin", "/bin", "/usr/local/bin"):
        candidate = os.path.join(folder, f"python{version}")
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


def lldb_environment(
    lldb_path: str, base: Mapping[str, str], private_dir: Optional[str]
) -> Tuple[Dict[str, str], Optional[str]]:
    """lldb's environment, such that its embedded Python is the one lldb was built for.

    lldb's Python finds its prefix (and so its site-packages) from the first ``python3`` on PATH: from a
    venv, pyenv or conda shell that is another interpreter, whose packages lldb's Python cannot see (or
    must not load). With ``private_dir`` (a new empty folder), a ``python3`` link to lldb's interpreter
    is made there and put first on PATH. PYTHONHOME and PYTHONPATH are left out. Returns the
    environment and the interpreter (None when it was not found: the environment is then the base one,
    less those two variables).
    """
    env = {k: v for k, v in base.items() if k not in FOREIGN_PYTHON_VARIABLES}
    python = find_lldb_python(lldb_path)
    if python is None or private_dir is None:
        return env, python
    os.symlink(python, os.path.join(private_dir, "python3"))
    env["PATH"] = private_dir + os.pathsep + base.get("PATH", os.defpath)
    return env, python


def target_environment(extra: Mapping[str, str]) -> Dict[str, str]:
    """What a launched target gets on top of lldb's environment: ``extra``, and the PATH, PYTHONHOME and
    PYTHONPATH of the caller that lldb's own environment changed (see ``lldb_environment``)."""
    env = dict(extra)
    for key in ("PATH",) + FOREIGN_PYTHON_VARIABLES:
        if key not in env and key in os.environ:
            env[key] = os.environ[key]
    return env


def agent_path_line() -> str:
    """An lldb command that puts pydbgauto's parent first on the embedded Python's sys.path, and the
    folder that holds attrs for the Python running pydbgauto last (attrs is pure Python: a fallback
    for an lldb Python without its own)."""
    last: List[str] = []
    try:
        import attr

        last.append(os.path.dirname(os.path.dirname(os.path.abspath(attr.__file__))))
    except ImportError:  # pragma: no cover - pydbgauto itself needs attrs
        pass
    return (
        "script import sys; "
        f"sys.path[:0] = [p for p in {[PACKAGE_PARENT]!r} if p not in sys.path]; "
        f"sys.path.extend(p for p in {last!r} if p not in sys.path)"
    )


def _shorter(a: Optional[float], b: float) -> float:
    return b if a is None else min(a, b)


def _filtered_stops(items: Optional[List[Dict[str, Any]]]) -> List[FilteredStop]:
    """The agent's reply list of stops its filter resumed, as FilteredStops."""
    return [
        FilteredStop(
            thread_id=item.get("thread_id"),
            exception_address=int(item.get("exception_address") or 0),
            type=item.get("type"),
            time=float(item.get("time") or 0.0),
        )
        for item in items or []
    ]
