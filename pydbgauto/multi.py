"""Every process of a name: one debugger per process, one ``watch`` loop per process on its own thread.

    import pydbgauto as pda
    result = pda.watch_all("ServiceApp", wait=True, when=pda.exception_type("System.TimeoutException"),
                           dump_dir="dumps", max_dumps=3, timeout=3600)
    for capture in result.captures:             # from every process; capture.event.pid says which
        print(capture.event.pid, capture.dump.path)

``pydbgauto watch --name X`` comes here when several processes have the name, or with ``--wait``; when
exactly one process matches (and no ``--wait``), it is the single-process ``watch`` as before.

Limits: ``max_dumps`` is a total across all processes (the watch ends once that many dumps are decided,
whichever processes they came from); ``skip_first``, ``cooldown`` and ``dedupe`` apply per process (each
process's own stream of throws: an object address or a stack means something in one process only).
Without ``wait`` the processes running at the start are watched, and the watch ends when they all have
ended; with ``wait`` the name is polled every ``poll_interval`` seconds and new processes are watched too,
until ``timeout``, ``max_dumps`` or ``stop``.

One decision log for all (``pydbgauto-decisions.jsonl`` in ``dump_dir``), each line with its ``pid``:
every loop opens it with ``O_APPEND`` and writes a line in one write, so lines never interleave. Capture
records carry the pid in ``event.pid`` and in the dump's name.
"""

from __future__ import annotations

import argparse
import json
import os
import threading
import time
from typing import Any, Dict, List, Mapping, Optional, Sequence, Set, TextIO

from pydbgauto import predicates as preds
from pydbgauto import processes
from pydbgauto.errors import NoSuchProcessError
from pydbgauto.policy import GIB, DumpPolicy
from pydbgauto.session import Session
from pydbgauto.watching.checks import prepare
from pydbgauto.watching.loop import WatchLoop
from pydbgauto.watching.result import EventCallback, MultiWatchResult, WatchResult
from pydbgauto.watching.shared_limit import SharedLimit, SharedLimitState

__all__ = ["MultiWatchResult", "SharedLimit", "SharedLimitState", "watch_all"]

# The shared stop breaks into each loop's wait (watching/stop_breaker.py); only with a driver that cannot
# break in does a loop wait in slices this long (or poll_interval, if longer), each breaking in and resuming
# its target (a few ms), so not much more often than once a second.
LOOP_SLICE = 1.0


def watch_all(
    name: str,
    *,
    wait: bool = False,
    when: Any = None,
    dump_dir: str = ".",
    max_dumps: Optional[int] = 1,
    timeout: Optional[float] = None,
    skip_first: int = 0,
    cooldown: float = 0.0,
    dedupe: bool = True,
    min_free_disk: int = GIB,
    name_template: Optional[str] = None,
    verify: bool = True,
    debugger: Optional[str] = None,
    in_debugger_filter: bool = True,
    log_path: Optional[str] = None,
    on_event: Optional[EventCallback] = None,
    session_options: Optional[Mapping[str, Any]] = None,
    stop: Optional[threading.Event] = None,
    poll_interval: float = 0.5,
    live: Optional[bool] = None,
) -> MultiWatchResult:
    """Watch every process called ``name`` (with ``wait``, also those that start later), each with its own
    debugger on its own thread, until ``timeout``, ``max_dumps`` dumps in total, ``stop``, or (without
    ``wait``) until every one has ended. Options as :func:`pydbgauto.watch`; see the module docstring for
    which limits are per process. ``on_event(kind, data)`` gets every process's events with ``data["pid"]``
    (their end as ``"process-done"``), ``"process-error"`` for a process that could not be watched, and
    at the end ``"done"`` with the :class:`MultiWatchResult`; calls are serialised (one at a time).
    ``live``: a live view over all processes, as :func:`pydbgauto.watch` (None: in a Jupyter kernel)."""
    predicate, policy, log_path = prepare(
        when,
        dump_dir,
        max_dumps,
        skip_first,
        cooldown,
        dedupe,
        min_free_disk,
        name_template,
        verify,
        log_path,
        timeout,
        poll_interval,
    )
    pids = processes.find_pids(name)  # also checks the name
    if not pids and not wait:
        raise NoSuchProcessError(f"no process called {name!r} is running (use --wait to wait for one)")
    from pydbgauto import progress

    if live or (live is None and progress.in_notebook()):
        on_event = progress.NotebookProgress().wrap(on_event)
    return _Multi(
        name,
        wait,
        predicate,
        policy,
        log_path,
        on_event,
        in_debugger_filter,
        stop,
        poll_interval,
        debugger,
        dict(session_options or {}),
    ).run(pids, timeout)


class _Multi:
    def __init__(
        self,
        name: str,
        wait: bool,
        predicate: preds.Predicate,
        policy: DumpPolicy,
        log_path: str,
        on_event: Optional[EventCallback],
        in_debugger_filter: bool,
        stop: Optional[threading.Event],
        poll_interval: float,
        debugger: Optional[str],
        session_options: Dict[str, Any],
    ) -> None:
        self.name = name
        self.wait = wait
        self.predicate = predicate
        self.policy = policy
        self.log_path = log_path
        self.user_on_event = on_event
        self.in_debugger_filter = in_debugger_filter
        self.user_stop = stop
        self.poll_interval = poll_interval
        self.debugger = debugger
        self.session_options = session_options
        self.stop = threading.Event()
        self.shared = SharedLimit(policy.max_dumps, self.stop)
        self.callback_lock = threading.Lock()
        self.lock = threading.Lock()
        self.results: Dict[int, WatchResult] = {}
        self.errors: Dict[int, str] = {}
        self.order: List[int] = []
        self.threads: Dict[int, threading.Thread] = {}

    def emit(self, kind: str, data: Mapping[str, Any]) -> None:
        if self.user_on_event is not None:
            with self.callback_lock:
                self.user_on_event(kind, data)

    def run(self, pids: Sequence[int], timeout: Optional[float]) -> MultiWatchResult:
        started = time.monotonic()
        deadline = None if timeout is None else started + timeout
        known: Set[int] = set()
        ended = "interrupted"
        try:
            while True:
                for pid in pids:
                    if pid not in known:
                        known.add(pid)
                        self._start(pid, deadline)
                if self.shared.reached:
                    ended = "max-dumps"
                    break
                if self.user_stop is not None and self.user_stop.is_set():
                    ended = "stopped"
                    break
                if deadline is not None and time.monotonic() >= deadline:
                    ended = "timeout"
                    break
                if not self.wait and not any(t.is_alive() for t in self.threads.values()):
                    ended = "exit"
                    break
                self.stop.wait(self.poll_interval)
                pids = processes.find_pids(self.name) if self.wait else ()
        finally:
            self.stop.set()  # every loop ends between events (each detaches: the targets run on)
            for thread in list(self.threads.values()):
                thread.join()
        if ended == "exit" and self.shared.reached:
            ended = "max-dumps"
        result = MultiWatchResult(
            self.name,
            tuple((pid, self.results[pid]) for pid in self.order if pid in self.results),
            tuple(sorted(self.errors.items())),
            ended,
            self.log_path,
            time.monotonic() - started,
        )
        self.emit("done", {"result": result})
        return result

    def _start(self, pid: int, deadline: Optional[float]) -> None:
        thread = threading.Thread(
            target=self._watch_one, args=(pid, deadline), name=f"pydbgauto-watch-{pid}", daemon=True
        )
        self.threads[pid] = thread
        thread.start()

    def _watch_one(self, pid: int, deadline: Optional[float]) -> None:
        def on_event(kind: str, data: Mapping[str, Any]) -> None:
            self.emit("process-done" if kind == "done" else kind, dict(data, pid=pid))

        try:
            if self.stop.is_set():
                return
            process = processes.name_of(pid)
            session = Session.attach(pid=pid, debugger=self.debugger, **self.session_options)
            try:
                loop = WatchLoop(
                    session,
                    self.predicate,
                    self.policy,
                    process,
                    self.log_path,
                    on_event,
                    self.in_debugger_filter,
                    self.stop,
                    max(self.poll_interval, LOOP_SLICE),
                    state=SharedLimitState(self.policy, self.shared),
                )
            except BaseException:
                session.close()
                raise
            with self.lock:
                self.order.append(pid)
            remaining = None if deadline is None else max(deadline - time.monotonic(), 0.001)
            result = loop.run(remaining)
            with self.lock:
                self.results[pid] = result
        except Exception as e:  # a pydbgauto error, or a bug: this process is not watched, the others are
            with self.lock:
                self.errors[pid] = f"{type(e).__name__}: {e}"
                if pid in self.order:
                    self.order.remove(pid)
            self.emit("process-error", {"pid": pid, "error": f"{type(e).__name__}: {e}"})


# ---------------------------------------------------------------------------------------------
# the command line: `pydbgauto watch --name X` with several processes, or with --wait


def wants_every_process(args: argparse.Namespace) -> bool:
    """``pydbgauto watch --name X`` goes to :func:`watch_all` with ``--wait`` or when several processes
    have the name (Linux, lldb); exactly one (and no ``--wait``) keeps the single-process watch."""
    if not args.name or args.debugger == "cdb" or not os.path.isdir("/proc"):
        return False
    return bool(args.wait) or len(processes.find_pids(args.name)) > 1


class _PidStream:
    """What one process's printer writes, line by line: ``[pid N]`` before each text line, a ``pid``
    field in each JSON line."""

    def __init__(self, out: TextIO, pid: int, as_json: bool) -> None:
        self.out = out
        self.pid = pid
        self.as_json = as_json
        self._partial = ""

    def write(self, text: str) -> int:
        self._partial += text
        while "\n" in self._partial:
            line, self._partial = self._partial.split("\n", 1)
            if self.as_json:
                data = json.loads(line)
                self.out.write(json.dumps(dict({"pid": self.pid}, **data)) + "\n")
            else:
                self.out.write(f"[pid {self.pid}] {line}\n")
        return len(text)

    def flush(self) -> None:
        self.out.flush()

    def isatty(self) -> bool:
        return False  # no spinner: several processes share the output


class MultiPrinter:
    """The ``watch`` printer of the command line for every process: one ``cli.printer.Printer`` per pid
    writing to a :class:`_PidStream`; the end of all as a last line (JSON: ``{"event": "summary-all"}``)."""

    def __init__(self, out: TextIO, as_json: bool) -> None:
        self.out = out
        self.as_json = as_json
        self.printers: Dict[int, Any] = {}

    def __call__(self, kind: str, data: Mapping[str, Any]) -> None:
        from pydbgauto.cli.printer import Printer

        if kind == "done":
            self._summary(data["result"])
        elif kind == "process-error":
            if self.as_json:
                self.out.write(json.dumps({"event": "process-error", **data}) + "\n")
            else:
                self.out.write(f"[pid {data['pid']}] not watched: {data['error']}\n")
        else:
            pid = int(data["pid"])
            printer = self.printers.get(pid)
            if printer is None:
                stream: Any = _PidStream(self.out, pid, self.as_json)
                printer = self.printers[pid] = Printer(stream, self.as_json)
            printer("done" if kind == "process-done" else kind, data)
        self.out.flush()

    def _summary(self, result: MultiWatchResult) -> None:
        if not self.as_json:
            self.out.write(f"{result}\n")
            return
        line = {
            "event": "summary-all",
            "name": result.name,
            "pids": list(result.pids),
            "not_watched": {str(pid): why for pid, why in result.errors},
            "exceptions": result.events_seen,
            "thrown": result.thrown,
            "matched": result.matched,
            "dumps": [c.dump.path for c in result.captures if c.dump],
            "ended": result.ended,
            "log": result.log_path,
            "seconds": round(result.elapsed, 3),
        }
        self.out.write(json.dumps(line) + "\n")


def run_cli(args: argparse.Namespace, predicate: Optional[preds.Predicate], on_event: EventCallback) -> int:
    """``pydbgauto watch --name X`` over every process of the name; exit codes as ``watch``'s."""
    from pydbgauto.cli.watch import exit_code, watch_options

    result = watch_all(args.name, **watch_options(args, predicate, on_event))
    if not result.results and result.errors:
        raise NoSuchProcessError("no process could be watched: " + "; ".join(w for _, w in result.errors))
    if not result.results and args.wait and args.timeout is not None:
        raise NoSuchProcessError(
            f"no process named {args.name!r} started within {args.timeout:g} s: check the name "
            "(`ps -eo comm`), or give --timeout more time"
        )
    return exit_code(args, result.captures)
