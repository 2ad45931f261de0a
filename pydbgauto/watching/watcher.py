"""A watch on a background thread while the caller drives the target: ``with Watcher(...) as w:``.

The thread runs :func:`pydbgauto.watching.watch` with a ``stop`` event; leaving the block waits for a
launched program to finish (``exit_timeout``; past it the program is killed), or, for ``pid=``, sets
``stop``: the watch ends between events, detaches, and leaves the target running. The pytest fixture
``dotnet_watch`` (``pydbgauto.pytest_plugin``) hands these out.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from pydbgauto import processes
from pydbgauto.errors import DebuggerTimeoutError, PydbgautoError
from pydbgauto.models import CaptureRecord, DecisionRecord, StopEvent
from pydbgauto.watching.result import WatchResult

__all__ = ["CaptureList", "Watcher", "capture_line"]

DEFAULT_EXIT_TIMEOUT = 120.0
DEFAULT_POLL_INTERVAL = 0.5
# How long leaving may take once the loop was asked to stop: one poll, the driver's grace to break in,
# and a dump that may be under way.
STOP_GRACE = 660.0
# Options the Watcher gives watch() itself.
_TAKEN = ("launch", "name", "on_event", "debugger", "stop")


class CaptureList(List[CaptureRecord]):
    """A plain list of captures (so ``captures == []`` reads naturally) with a short, readable repr."""

    def __repr__(self) -> str:
        return "[" + ", ".join(capture_line(c) for c in self) + "]"


def capture_line(capture: CaptureRecord) -> str:
    """``capture 1: System.X: message -> /dumps/app.core`` (or why there is no dump)."""
    exc = capture.exception
    what = (exc.type if exc else None) or capture.event.exception_type or "unknown exception"
    message = f": {exc.message}" if exc is not None and exc.message else ""
    where = (
        capture.dump.path if capture.dump else f"no dump ({capture.dump_error or capture.decision.reason})"
    )
    return f"capture {capture.decision.n or '-'}: {what}{message} -> {where}"


class Watcher:
    """Runs :func:`pydbgauto.watching.watch` on a thread while the ``with`` block drives the target.

    Exactly one target: ``argv`` (launch it under the debugger) or ``pid`` (attach). ``when``, ``max_dumps``
    and the other keyword options are those of ``watch()``. Inside and after the block:

    - ``captures``: the dumps written (a list of CaptureRecord), ``matched``: every event the predicate
      matched (dumped or not), ``decisions``: every stop with the policy's decision;
    - ``result``: the WatchResult once the watch has ended (``ended`` is "stopped" when leaving the block
      stopped it), ``exit_status``: a launched program's exit status.
    """

    def __init__(
        self,
        argv: Optional[Sequence[str]] = None,
        *,
        pid: Optional[int] = None,
        when: Any = None,
        dump_dir: str = ".",
        max_dumps: Optional[int] = 1,
        exit_timeout: Optional[float] = DEFAULT_EXIT_TIMEOUT,
        debugger: Optional[str] = None,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        arm_timeout: Optional[float] = 300.0,
        **watch_options: Any,
    ) -> None:
        if (argv is None) == (pid is None):
            raise PydbgautoError("dotnet_watch takes exactly one target: a command (argv) or pid=")
        if isinstance(argv, str):
            raise PydbgautoError("give the command as a list of arguments, e.g. [app, 'first-chance']")
        if poll_interval <= 0:
            raise PydbgautoError(f"poll_interval must be positive seconds, not {poll_interval!r}")
        for taken in _TAKEN:
            if taken in watch_options:
                raise PydbgautoError(f"dotnet_watch sets {taken}= itself")
        self.argv = None if argv is None else [str(a) for a in argv]
        self.pid = pid
        self.when = when
        self.dump_dir = dump_dir
        self.max_dumps = max_dumps
        self.exit_timeout = exit_timeout
        self.debugger = debugger
        self.poll_interval = poll_interval
        self.arm_timeout = arm_timeout
        self.watch_options = dict(watch_options)
        self.result: Optional[WatchResult] = None
        self.error: Optional[BaseException] = None
        self.target_pid: Optional[int] = pid
        self._captures: List[CaptureRecord] = []
        self._decisions: List[Tuple[StopEvent, DecisionRecord]] = []
        self._lock = threading.Lock()
        self._armed = threading.Event()
        self._finished = threading.Event()
        self._stop = threading.Event()
        self._kill = threading.Event()  # a launched program is killed once the watch has let it go
        self._thread: Optional[threading.Thread] = None

    # ----- what a test reads --------------------------------------------------------------------------

    @property
    def captures(self) -> CaptureList:
        with self._lock:
            return CaptureList(self._captures)

    @property
    def decisions(self) -> List[Tuple[StopEvent, DecisionRecord]]:
        with self._lock:
            return list(self._decisions)

    @property
    def matched(self) -> List[StopEvent]:
        """Every exception the predicate matched, dumped or not (a limit or dedupe may skip the dump)."""
        return [e for e, d in self.decisions if e.kind != "exit" and d.reason != "no-match"]

    @property
    def exit_status(self) -> Optional[int]:
        return self.result.exit_status if self.result is not None else None

    @property
    def running(self) -> bool:
        return self._thread is not None and not self._finished.is_set()

    # ----- starting and stopping ----------------------------------------------------------------------

    def start(self) -> "Watcher":
        """Start the debugger and the loop; return once the target is under watch (stops are armed)."""
        if self._thread is not None:
            raise PydbgautoError("this watcher was started already; make a new one")
        self._thread = threading.Thread(target=self._run, name="pydbgauto-watch", daemon=True)
        self._thread.start()
        deadline = None if self.arm_timeout is None else time.monotonic() + self.arm_timeout
        while not self._armed.is_set() and not self._finished.is_set():
            if deadline is not None and time.monotonic() > deadline:
                if self.argv is not None:
                    self._kill.set()
                self._stop.set()
                raise DebuggerTimeoutError(f"the debugger was not ready within {self.arm_timeout} s")
            self._armed.wait(0.1)
        if self.error is not None and not self._armed.is_set():
            self._join(STOP_GRACE)
            raise self.error
        return self

    def stop(self, timeout: Optional[float] = STOP_GRACE) -> None:
        """Stop watching now: detach (the target runs on), or, for a launched target, let it go too."""
        if self._thread is None:
            return
        self._stop.set()
        self._join(timeout)

    def abandon(self) -> None:
        """Stop now; a launched program is killed too (an attached one is only detached)."""
        if self.argv is not None:
            self._kill.set()
        self.stop()
        self._kill_leftover()

    def finish(self) -> None:
        """What leaving the ``with`` block does: see the class docstring. Raises what the watch raised."""
        if self._thread is None:
            return
        if self.argv is None:
            self.stop()
        else:
            self._finish_launched()
        if self.error is not None:
            raise self.error

    def __enter__(self) -> "Watcher":
        return self.start()

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self.finish()
            return
        # The block failed: do not wait for the program; stop, and keep the block's own error.
        self.abandon()

    # ----- internals ----------------------------------------------------------------------------------

    def _finish_launched(self) -> None:
        deadline = None if self.exit_timeout is None else time.monotonic() + self.exit_timeout
        while not self._finished.is_set():
            if deadline is not None and time.monotonic() > deadline:
                self.abandon()
                raise self._late()
            self._finished.wait(0.1)
        self._join(STOP_GRACE)
        if self.result is not None and self.result.ended == "exit":
            return  # seen to exit: its pid may be another process's by now
        # The watch may have ended before the program did (max_dumps reached): it runs on, detached.
        while self.target_pid is not None and _alive(self.target_pid):
            if deadline is not None and time.monotonic() > deadline:
                self._kill_leftover()
                raise self._late()
            time.sleep(0.1)

    def _late(self) -> DebuggerTimeoutError:
        program = self.argv[0] if self.argv else "the program"
        return DebuggerTimeoutError(
            f"{program} did not finish within {self.exit_timeout} s after the with block; it was killed "
            "(give dotnet_watch a longer exit_timeout=)"
        )

    def _kill_leftover(self) -> None:
        """A program we launched and no longer watch is still running: end it (never an attached one)."""
        if self.argv is None or self.target_pid is None or not _alive(self.target_pid):
            return
        try:
            os.kill(self.target_pid, getattr(signal, "SIGKILL", signal.SIGTERM))
        except OSError:
            pass

    def _join(self, timeout: Optional[float]) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def _on_event(self, kind: str, data: Mapping[str, Any]) -> None:
        if kind == "armed":
            self.target_pid = data.get("pid") or self.target_pid
            self._armed.set()
        elif kind == "decision":
            with self._lock:
                self._decisions.append((data["event"], data["decision"]))
        elif kind == "dump-done":
            with self._lock:
                self._captures.append(data["capture"])

    def _run(self) -> None:
        from pydbgauto.watching.one_process import watch

        try:
            target: Dict[str, Any] = {"launch": self.argv} if self.argv is not None else {"pid": self.pid}
            self.result = watch(
                when=self.when,
                dump_dir=self.dump_dir,
                max_dumps=self.max_dumps,
                debugger=self.debugger,
                on_event=self._on_event,
                stop=self._stop,
                poll_interval=self.poll_interval,
                **target,
                **self.watch_options,
            )
        except BaseException as e:  # handed to the test's thread by start()/finish()
            self.error = e
        finally:
            if self._kill.is_set():  # given up on while the watch ran: it has detached, now end it
                self._kill_leftover()
            self._finished.set()


def _alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie counts as finished)."""
    if os.path.isdir("/proc"):
        return processes.alive(pid)
    try:
        os.kill(pid, 0)
        return True
    except OSError:
        return False
