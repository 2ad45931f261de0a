"""pytest plugin: watch a .NET process while a test drives it, then assert on what was caught.

    import pydbgauto as pda

    def test_checkout_never_throws_ioe(dotnet_watch):
        ioe = pda.exception_type("System.InvalidOperationException")
        with dotnet_watch([app, "first-chance"], when=ioe) as w:
            ...                                  # drive the app
        assert w.captures == []                  # a failure report shows each exception, stack and dump

The watch is ``pydbgauto.watching.watch`` running on a thread for the length of the ``with`` block. Leaving
the block waits for a launched program to finish (``exit_timeout``; past it the program is killed and the
test fails), or, for ``pid=``, stops watching, detaches and leaves the target running.

Options: ``--pydbgauto-dump-dir`` (default: the test's ``tmp_path``), ``--pydbgauto-debugger``.
Marker: ``@pytest.mark.needs_debugger`` skips a test when no debugger (or SOS) is available.
The plugin is registered as the ``pytest11`` entry point ``pydbgauto`` (or load it with
``-p pydbgauto.pytest_plugin``).
"""

from __future__ import annotations

import os
import re
import signal
import sys
import threading
import time
from typing import Any, Dict, Generator, Iterator, List, Mapping, Optional, Sequence, Tuple

import pytest

from pydbgauto.errors import DebuggerNotFoundError, DebuggerTimeoutError, PydbgautoError
from pydbgauto.models import CaptureRecord, DecisionRecord, StopEvent
from pydbgauto.models import hex_text as _hex

__all__ = ["CaptureList", "Watcher", "debugger_unavailable", "describe_captures"]

DEFAULT_EXIT_TIMEOUT = 120.0
DEFAULT_POLL_INTERVAL = 0.5
# How long leaving may take once the loop was asked to stop: one poll, the driver's grace to break in,
# and a dump that may be under way.
STOP_GRACE = 660.0


class CaptureList(List[CaptureRecord]):
    """A plain list of captures (so ``captures == []`` reads naturally) with a short, readable repr."""

    def __repr__(self) -> str:
        return "[" + ", ".join(_capture_line(c) for c in self) + "]"


class _StoppableDriver:
    """Wraps a real driver: waits in short slices so a watch can be stopped from another thread.

    Each slice that ends without an event breaks in and resumes (the driver's own time-limit path);
    events the debugger-side filter resumed are kept by the driver across slices.
    """

    def __init__(self, inner: Any, stop: threading.Event, kill: threading.Event, poll: float) -> None:
        self._inner = inner
        self._stop = stop
        self._kill = kill
        self._poll = poll

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    @property
    def pid(self) -> Optional[int]:
        return self._inner.pid  # type: ignore[no-any-return]

    def resume(self, timeout: Optional[float]) -> Any:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if self._stop.is_set():
                self._give_up()
                raise DebuggerTimeoutError("the watch was stopped")
            step = self._poll if deadline is None else min(self._poll, deadline - time.monotonic())
            if step <= 0:
                raise DebuggerTimeoutError(f"no debug event within {timeout} s")
            try:
                return self._inner.resume(step)
            except DebuggerTimeoutError:
                continue

    def _give_up(self) -> None:
        if self._kill.is_set():
            kill = getattr(self._inner, "kill_target", None)
            if kill is not None:
                try:
                    kill()
                except PydbgautoError:
                    pass


class Watcher:
    """Runs ``pydbgauto.watching.watch`` on a thread while the ``with`` block drives the target.

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
        for taken in ("launch", "name", "on_event", "debugger"):
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
        self.result: Optional[Any] = None  # pydbgauto.watching.WatchResult
        self.error: Optional[BaseException] = None
        self.target_pid: Optional[int] = pid
        self._captures: List[CaptureRecord] = []
        self._decisions: List[Tuple[StopEvent, DecisionRecord]] = []
        self._lock = threading.Lock()
        self._armed = threading.Event()
        self._finished = threading.Event()
        self._stop = threading.Event()
        self._kill = threading.Event()
        self._stopped_by_us = False
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
        if not self._finished.is_set():
            self._stopped_by_us = True
            self._stop.set()
        self._join(timeout)

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
        self._abandon()

    # ----- internals ----------------------------------------------------------------------------------

    def _finish_launched(self) -> None:
        deadline = None if self.exit_timeout is None else time.monotonic() + self.exit_timeout
        while not self._finished.is_set():
            if deadline is not None and time.monotonic() > deadline:
                self._abandon()
                raise self._late()
            self._finished.wait(0.1)
        self._join(STOP_GRACE)
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

    def _abandon(self) -> None:
        """Stop now; a launched program is killed too (an attached one is only detached)."""
        if self.argv is not None:
            self._kill.set()
        self.stop()
        self._kill_leftover()

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

    def _make_driver(self, target: Any, **options: Any) -> Any:
        from pydbgauto.session import make_driver

        return _StoppableDriver(
            make_driver(target, self.debugger, options), self._stop, self._kill, self.poll_interval
        )

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
        from pydbgauto.watching import watch

        try:
            target: Dict[str, Any] = {"launch": self.argv} if self.argv is not None else {"pid": self.pid}
            result = watch(
                when=self.when,
                dump_dir=self.dump_dir,
                max_dumps=self.max_dumps,
                debugger=self._make_driver,  # type: ignore[arg-type]  # watch() hands it to make_driver
                on_event=self._on_event,
                **target,
                **self.watch_options,
            )
            if self._stopped_by_us and result.ended == "timeout":
                import attr

                result = attr.evolve(result, ended="stopped")
            self.result = result
        except BaseException as e:  # handed to the test's thread by start()/finish()
            self.error = e
        finally:
            self._finished.set()


def _alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie counts as finished)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8", errors="replace") as f:
            raw = f.read()
        return raw[raw.rindex(")") + 2] not in "ZX"
    except (OSError, ValueError, IndexError):
        pass
    if sys.platform == "win32" or not os.path.isdir("/proc"):
        try:
            os.kill(pid, 0)
            return True
        except OSError:
            return False
    return False


# ----- the failure report ------------------------------------------------------------------------------


def _capture_line(capture: CaptureRecord) -> str:
    exc = capture.exception
    what = (exc.type if exc else None) or capture.event.exception_type or "unknown exception"
    message = f": {exc.message}" if exc is not None and exc.message else ""
    where = (
        capture.dump.path if capture.dump else f"no dump ({capture.dump_error or capture.decision.reason})"
    )
    return f"capture {capture.decision.n or '-'}: {what}{message} -> {where}"


def _indent(text: str, prefix: str = "    ") -> str:
    return "\n".join(prefix + line for line in text.splitlines())


def describe_captures(watchers: Sequence[Watcher]) -> str:
    """Plain text for a failure report: each capture's exception, managed stack and dump; then matches
    that were not dumped."""
    parts: List[str] = []
    for watcher in watchers:
        target = " ".join(watcher.argv) if watcher.argv else f"pid {watcher.pid}"
        captures, matched = watcher.captures, watcher.matched
        dumped = {c.event.sequence for c in captures}
        head = f"watch of {target}: {len(captures)} capture(s), {len(matched)} matching exception(s)"
        if watcher.result is not None:
            head += f"; ended: {watcher.result.ended}; decision log: {watcher.result.log_path}"
        parts.append(head)
        for capture in captures:
            parts.append(_capture_line(capture))
            event = capture.event
            parts.append(f"  {event.kind} on thread {_hex(event.thread_id)}; decision: {capture.decision}")
            if capture.exception is not None:
                parts.append("  exception:")
                parts.append(_indent(str(capture.exception)))
            stack = capture.stack or event.stack
            if stack is not None:
                parts.append("  managed stack:")
                parts.append(_indent(str(stack)))
            if event.error:
                parts.append(f"  (SOS: {event.error})")
            if capture.dump is not None:
                parts.append(f"  dump: {capture.dump}")
            else:
                parts.append(f"  dump: none ({capture.dump_error})")
            if capture.record_path:
                parts.append(f"  record: {capture.record_path}")
        for event in matched:
            if event.sequence not in dumped:
                reasons = [d for e, d in watcher.decisions if e.sequence == event.sequence]
                why = str(reasons[0]) if reasons else ""
                parts.append(f"matched, not dumped: {str(event).splitlines()[0]} [{why}]")
    return "\n".join(parts)


# ----- availability ------------------------------------------------------------------------------------


def debugger_unavailable(debugger: Optional[str] = None) -> Optional[str]:
    """Why ``debugger`` (default: this platform's) cannot run here, or None when it can."""
    from pydbgauto.session import default_debugger

    name = debugger or default_debugger()
    try:
        if name == "lldb":
            from pydbgauto import locate

            locate.find_lldb()
            locate.find_sos_plugin()
        elif name in ("cdb", "pykd"):
            if sys.platform != "win32":
                return f"{name} runs only on Windows"
            if name == "cdb":
                from pydbgauto.drivers.cdb_locate import find_cdb

                find_cdb()
            else:
                import importlib

                importlib.import_module("pykd")
        else:
            return f"unknown debugger {name!r}"
    except (DebuggerNotFoundError, ImportError) as e:
        return str(e)
    return None


# ----- hooks and the fixture ---------------------------------------------------------------------------

_WATCHERS = pytest.StashKey[List[Watcher]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("pydbgauto", "pydbgauto: watch .NET processes for exceptions")
    group.addoption(
        "--pydbgauto-dump-dir",
        dest="pydbgauto_dump_dir",
        default=None,
        metavar="DIR",
        help="where dotnet_watch writes dumps (a folder per test); default: the test's tmp_path",
    )
    group.addoption(
        "--pydbgauto-debugger",
        dest="pydbgauto_debugger",
        default=None,
        choices=("lldb", "cdb", "pykd"),
        help="the debugger dotnet_watch drives (default: lldb on " "Linux, cdb on Windows)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "needs_debugger: skip the test when no debugger with SOS is available "
        "(pydbgauto's dotnet_watch needs one)",
    )


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("needs_debugger") is not None:
        why = debugger_unavailable(item.config.getoption("pydbgauto_debugger", None))
        if why is not None:
            pytest.skip(f"no debugger: {why}")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    watchers: List[Watcher] = item.stash.get(_WATCHERS, [])
    if not watchers or report.when == "setup":
        return
    if report.when == "call":
        for watcher in watchers:
            for capture in watcher.captures:
                if capture.dump is not None:
                    item.user_properties.append(("pydbgauto_dump", capture.dump.path))
    if report.failed:
        text = describe_captures(watchers)
        if text:
            report.sections.append(("pydbgauto captures", text))


def pytest_assertrepr_compare(config: pytest.Config, op: str, left: Any, right: Any) -> Optional[List[str]]:
    """``assert w.captures == []`` explains itself in one line per capture, not in attrs reprs."""
    if op != "==" or not (isinstance(left, CaptureList) or isinstance(right, CaptureList)):
        return None

    def short(value: Any) -> str:
        return f"<{len(value)} capture(s)>" if isinstance(value, CaptureList) else repr(value)

    lines = [f"{short(left)} == {short(right)}"]
    for side, value in (("left", left), ("right", right)):
        if isinstance(value, CaptureList):
            lines.append(f"{side}: {len(value)} capture(s)")
            lines += ["  " + _capture_line(c) for c in value]
    lines.append("(the 'pydbgauto captures' section of the report shows each exception, stack and dump)")
    return lines


def _test_folder(base: str, nodeid: str) -> str:
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid).strip("._")[:120] or "test"
    return os.path.join(base, name)


@pytest.fixture
def dotnet_watch(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[Any]:
    """A factory: ``with dotnet_watch([app, "arg"], when=...) as w:`` or ``dotnet_watch(pid=..., when=...)``.

    Takes the options of ``Watcher`` (and through it of ``pydbgauto.watching.watch``); the dump folder and
    debugger default to the ``--pydbgauto-*`` options. Watchers still running at the end of the test are
    stopped.
    """
    config = request.config
    base = config.getoption("pydbgauto_dump_dir", None)
    debugger = config.getoption("pydbgauto_debugger", None)
    watchers: List[Watcher] = request.node.stash.setdefault(_WATCHERS, [])

    def make(
        argv: Optional[Sequence[str]] = None, *, pid: Optional[int] = None, when: Any = None, **options: Any
    ) -> Watcher:
        if "dump_dir" not in options:
            if base:
                folder = _test_folder(os.path.abspath(base), request.node.nodeid)
                os.makedirs(folder, exist_ok=True)
            else:
                folder = str(tmp_path)
            options["dump_dir"] = folder
        options.setdefault("debugger", debugger)
        watcher = Watcher(argv, pid=pid, when=when, **options)
        watchers.append(watcher)
        return watcher

    yield make
    for watcher in watchers:
        if watcher.running:
            watcher._abandon()
