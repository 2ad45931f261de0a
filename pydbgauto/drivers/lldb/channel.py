"""The driver's wire to its agent through lldb: request lines on lldb's stdin, framed replies on the
private reply pipe, lldb's own output kept for error messages, and the cancel of a running wait.
"""

from __future__ import annotations

import logging
import os
import re
import select
import signal
import subprocess
import threading
import time
from typing import Any, Deque, Dict, List, Optional, Tuple

from pydbgauto import interrupts, locate, processes
from pydbgauto.drivers.base import FilteredStop
from pydbgauto.drivers.framing import ReplyBuffer, new_token
from pydbgauto.drivers.lldb import protocol
from pydbgauto.drivers.lldb.embedded_python import LLDB_PYTHON_HINT, lldb_python_version
from pydbgauto.errors import (
    AgentLoadError,
    DebuggerDiedError,
    DebuggerError,
    DebuggerNotAnsweringError,
    DebuggerNotFoundError,
    NotDotnetError,
    TargetError,
    TargetExitedError,
)

log = logging.getLogger(__name__)

# What lldb prints when `command script import` of the agent fails, and when the agent is not there.
IMPORT_FAILED = "error: module importing failed"
NO_AGENT = f"error: '{protocol.COMMAND}' is not a valid command"
# How long a wait may overrun its own limit while the agent interrupts the target and replies. Past
# it lldb counts as hung (DebuggerNotAnsweringError).
INTERRUPT_GRACE = 5.0
# Requests whose reply is awaited even when a signal interrupts the wait: the agent is writing a file
# that must be removed after it is closed (removing it earlier would let the agent recreate it).
FINISH_ON_INTERRUPT = (protocol.OP_DUMP,)


COUNT_KEY = "runtime_exception_count"  # in the agent's replies that read it (exception_counter.py)


class AgentChannel:
    """The request/reply half of LldbDriver (a base class of it; LldbDriver.__init__ sets the state)."""

    lldb_path: str
    _proc: Optional[subprocess.Popen[bytes]]
    _counts: Dict[str, int]  # the runtime's exception count, by the op whose reply carried it
    _reply_r: Optional[int]
    _cancel_w: Optional[int]
    _buffer: ReplyBuffer
    _log: Deque[str]
    _lock: threading.Lock
    _pid: Optional[int]
    _attached: bool
    _hung: bool
    _in_flight: Optional[Tuple[str, str]]
    _poked: bool
    _filtered: List[FilteredStop]
    _load_failure: Optional[List[str]]
    _lldb_python: Optional[str]

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
            line = protocol.encode_request(token, op, args)
            with interrupts.critical():  # a signal between the two would hide the request from _cancel_wait
                self._send_line(line)
                self._in_flight = (token, op)
            try:
                reply = self._wait_reply(token, limit, op)
            except KeyboardInterrupt:
                if op in FINISH_ON_INTERRUPT:
                    self._finish_in_flight(token, limit, op)
                    self._in_flight = None
                raise
        data = protocol.decode_reply(reply.body)
        if data.get(protocol.OK):
            result = data[protocol.RESULT]
            if isinstance(result, dict) and result.get(COUNT_KEY) is not None:
                self._counts[op] = result[COUNT_KEY]  # arm, an exit (resume), detach, kill
            return result
        raise self._error(op, data)

    def runtime_exception_count(self, at: str = "end") -> Optional[int]:
        """The runtime's count as the agent last sent it, without a request: ``"arm"``, as armed;
        ``"end"``, at the target's exit, detach or kill (None before any of them)."""
        if at == "arm":
            return self._counts.get("arm")
        return next((self._counts[op] for op in ("detach", "kill", "resume") if op in self._counts), None)

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
        kind, message = data.get(protocol.KIND), data.get(protocol.ERROR, "unknown error")
        if kind == protocol.ERR_INTERNAL:
            log.debug("agent traceback: %s", data.get(protocol.TRACEBACK))
        if kind == protocol.ERR_NOT_DOTNET:
            return NotDotnetError(message)
        if kind in (protocol.ERR_EXITED, protocol.ERR_NO_PROCESS):
            self._attached = False
            return TargetExitedError(message)
        if kind in (protocol.ERR_ATTACH, protocol.ERR_LAUNCH):
            return TargetError(message)
        if kind == protocol.ERR_SOS:
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
        if (
            in_flight is None
            or in_flight[1] != protocol.OP_RESUME
            or self._cancel_w is None
            or not self._alive()
        ):
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
            result = protocol.decode_reply(body).get(protocol.RESULT) or {}
        except ValueError:
            return
        self._filtered.extend(_filtered_stops(result.get(protocol.FILTERED)))

    def _finish_in_flight(self, token: str, limit: Optional[float], op: str) -> None:
        """After an interrupt: wait (within ``limit``) for the reply of ``op`` the agent is still working
        on, so whatever it writes is complete and closed before the caller removes it."""
        try:
            self._wait_reply(token, limit, op)
        except Exception as e:  # noqa: BLE001 - the interrupt is what the caller reports
            log.warning("'%s' did not finish after the interrupt: %s", op, e)


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
