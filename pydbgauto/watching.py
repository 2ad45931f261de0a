"""The job end to end: watch a process, decide with a predicate, write the right dumps, log every decision.

    import pydbgauto as pda
    when = pda.exception_type("System.InvalidOperationException") & pda.message_matches(r"timeout")
    result = pda.watch(pid=1234, when=when, dump_dir="dumps", max_dumps=3, timeout=3600)

Every stop gets one line in the decision log (JSON lines, mode 0600, written line by line as it goes):
what was seen, whether it matched, and if it matched but was not dumped, why. Every dump gets a capture
record (JSON, beside the dump). Everything a user passes is checked before a debugger starts.

SIGINT, SIGTERM and SIGHUP end a watch run in the main thread the same way: the wait is interrupted, the
debugger detaches (the target runs on), the summary goes to ``on_event("done")``, and
:class:`pydbgauto.Interrupted` (a ``KeyboardInterrupt``) is raised with the result.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import json
import logging
import os
import shutil
import signal
import stat
import threading
import time
from types import FrameType
from typing import Any, Callable, Deque, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

import attr

from pydbgauto import fields
from pydbgauto.after_resume import Pending
from pydbgauto import predicates as preds
from pydbgauto import interrupts, processes
from pydbgauto.errors import (
    ConfigurationError,
    DebuggerNotAnsweringError,
    DebuggerTimeoutError,
    DiskSpaceError,
    DumpError,
    Interrupted,
    PydbgautoError,
)
from pydbgauto.models import (
    CaptureRecord,
    DecisionRecord,
    DumpRecord,
    ManagedException,
    ManagedStack,
    StopEvent,
)
from pydbgauto.policy import GIB, Decision, DumpPolicy, PolicyState
from pydbgauto.dumpfile import check_dump_folder
from pydbgauto.session import Session

log = logging.getLogger(__name__)

MAX_INNER = 8
LOG_NAME = "pydbgauto-decisions.jsonl"
# The signals that end a watch like Ctrl-C (the command exits with 128 + the signal's number).
END_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
# WatchResult keeps the last this many (event, decision) pairs; the decision log has them all.
KEEP_DECISIONS = 1000


@attr.frozen
class WatchResult:
    """What one watch saw and did.

    ``captures`` holds every dump attempt (``capture.dump`` is None when it failed: ``dump_error`` says
    why); ``decisions`` only the last ``KEEP_DECISIONS`` (event, decision) pairs, so a long watch does not
    grow: the decision log has every one, and ``events_seen``/``matched`` count them all.
    """

    captures: Tuple[CaptureRecord, ...]
    decisions: Tuple[Tuple[StopEvent, DecisionRecord], ...]
    ended: str  # "max-dumps", "timeout", "exit", "interrupted" (a signal), "stopped" (``stop`` was set)
    log_path: str
    elapsed: float
    exit_status: Optional[int] = None
    filtered_in_debugger: bool = False  # the predicate ran inside the debugger's agent
    exceptions: Optional[int] = None  # exceptions seen (None: count ``decisions``)
    matches: Optional[int] = None
    signal: Optional[int] = None  # the signal that ended the watch

    @property
    def events_seen(self) -> int:
        """Exceptions seen (the exit is in ``decisions`` too, but is not an exception)."""
        if self.exceptions is not None:
            return self.exceptions
        return sum(1 for e, _ in self.decisions if e.kind != "exit")

    @property
    def matched(self) -> int:
        if self.matches is not None:
            return self.matches
        return sum(1 for _, d in self.decisions if d.reason != "no-match")

    def _repr_html_(self) -> str:
        from pydbgauto.display import watch_result_html

        return watch_result_html(self)

    def _repr_markdown_(self) -> str:
        from pydbgauto.display import watch_result_markdown

        return watch_result_markdown(self)

    @property
    def dumps(self) -> Tuple[CaptureRecord, ...]:
        """The captures whose dump was written."""
        return tuple(c for c in self.captures if c.dump is not None)

    def __str__(self) -> str:
        failed = len(self.captures) - len(self.dumps)
        ended = self.ended if self.signal is None else f"{self.ended} ({_signal_name(self.signal)})"
        return (
            f"{self.events_seen} exceptions seen, {self.matched} matched, "
            f"{len(self.dumps)} dumps written{f', {failed} failed' if failed else ''}; "
            f"ended: {ended} after {self.elapsed:.1f} s; decision log: {self.log_path}"
        )


EventCallback = Callable[[str, Mapping[str, Any]], None]


def watch(
    pid: Optional[int] = None,
    *,
    name: Optional[str] = None,
    launch: Optional[Sequence[str]] = None,
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
    handle_signals: bool = True,
) -> WatchResult:
    """Watch one process until ``max_dumps`` dumps are written, ``timeout`` seconds pass, or it exits.

    Target: exactly one of ``pid``, ``name`` (``wait=True`` waits for it to start, within ``timeout``)
    or ``launch`` (argv).
    ``when``: a predicate from pydbgauto's helpers (combined with ``&``, ``|``, ``~``) or any callable
    taking the ``ManagedException`` (or the ``StopEvent``); None matches every exception. A callable runs
    on a worker thread within what is left of ``timeout``: one that overruns it ends the watch (the
    target is released; the thread is abandoned, see docs/linux.md).
    ``stop``: set it (from another thread) to end the watch between events (``ended == "stopped"``); the
    wait then runs in slices of ``poll_interval`` seconds (each slice breaks in and resumes the target).
    ``live``: a live view (counts, last exception, dumps) updated as the watch goes; None shows it when
    running in a Jupyter kernel (``pydbgauto.progress``).
    ``handle_signals`` (main thread only): SIGINT, SIGTERM and SIGHUP (where their handler is the
    default) end the watch cleanly and raise :class:`pydbgauto.Interrupted` carrying the result.
    """
    targets = sum(x is not None for x in (pid, name, launch))
    if targets != 1:
        raise ConfigurationError("watch needs exactly one target: pid=, name= or launch=[argv]")
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
    if pid is not None and (debugger or "lldb") == "lldb" and os.name == "posix":
        processes.check_attachable(pid)  # before anything is opened: the real cause, no debugger
        check_disk_for(pid, dump_dir, min_free_disk)
    log_fd = open_private_log(log_path)  # refuses a planted symlink before any debugger starts

    from pydbgauto import progress

    if live or (live is None and progress.in_notebook()):
        on_event = progress.NotebookProgress().wrap(on_event)
    options = dict(session_options or {})
    guard = _SignalGuard(handle_signals)
    started = time.monotonic()
    with guard, os.fdopen(log_fd, "a", encoding="utf-8") as log_file:
        try:
            if launch is not None:
                session = Session.launch(list(launch), debugger=debugger, **options)
                process = os.path.basename(str(launch[0]))
            elif pid is not None:
                session = Session.attach(pid=pid, debugger=debugger, **options)
                process = _process_name(pid)
            else:
                options.setdefault("wait_timeout", timeout)
                session = Session.attach(name=name, wait=wait, debugger=debugger, **options)
                process = str(name)
        except KeyboardInterrupt as e:
            guard.defer()
            signum = getattr(e, "signum", None) or guard.signum or signal.SIGINT
            result = WatchResult((), (), "interrupted", log_path, time.monotonic() - started, signal=signum)
            if on_event is not None:
                on_event("done", {"result": result})
            raise Interrupted(signum, result) from None
        watcher = _Watch(
            session, predicate, policy, process, log_path, on_event, in_debugger_filter, stop, poll_interval
        )
        watcher.guard = guard
        result = watcher.run(timeout, log_file)
    if result.signal is not None:
        raise Interrupted(result.signal, result)
    return result


class _SignalGuard:
    """While a watch runs in the main thread, SIGINT/SIGTERM/SIGHUP raise :class:`Interrupted` where the
    main thread is (a wait, a command, a predicate), once: after the first one (``defer``) they are only
    recorded, so the detach that follows is never cut short."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled and threading.current_thread() is threading.main_thread()
        self.signum: Optional[int] = None
        self.deferred = False
        self._old: Dict[int, Any] = {}

    def __enter__(self) -> "_SignalGuard":
        if not self.enabled:
            return self
        for signum in END_SIGNALS:
            old = signal.getsignal(signum)
            if old in (signal.SIG_DFL, signal.default_int_handler):  # never replace the caller's own
                self._old[signum] = old
                signal.signal(signum, self._handler)
        return self

    def _handler(self, signum: int, frame: Optional[FrameType]) -> None:
        if self.signum is None:
            self.signum = signum
        if not self.deferred:
            self.deferred = True
            interrupts.deliver(Interrupted(signum))  # now, or once the driver's critical statements ran
            return
        log.warning("%s received while the watch is ending: it ends as soon as it has detached", signum)

    def defer(self) -> None:
        """From now on signals are recorded, not raised (the watch is ending)."""
        self.deferred = True

    def __exit__(self, *exc: object) -> None:
        for signum, old in self._old.items():
            signal.signal(signum, old)
        self._old.clear()


class _Watch:
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
    ) -> None:
        self.session = session
        self.predicate = predicate
        self.policy = policy
        self.state = PolicyState(policy)
        self.process = process
        self.log_path = log_path
        self.on_event = _serialized(on_event or (lambda kind, data: None))  # a capture's thread calls it too
        self.in_debugger_filter = in_debugger_filter
        self.needs = predicate.needs | policy.needs
        self.captures: List[CaptureRecord] = []
        self.decisions: Deque[Tuple[StopEvent, DecisionRecord]] = collections.deque(maxlen=KEEP_DECISIONS)
        self.exceptions = 0
        self.matches = 0
        self.stop = stop
        self.poll_interval = poll_interval
        self.guard: Optional[_SignalGuard] = None
        self.deadline: Optional[float] = None
        self._log_fd = -1
        self._dump_size = 0  # bytes a dump of the target may take (its readable mappings)
        self._pending: Optional[Pending[Tuple[Optional[DumpRecord], float]]] = None  # a capture's check

    def run(self, timeout: Optional[float], log_file: Any = None) -> WatchResult:
        started = time.monotonic()
        self.deadline = None if timeout is None else started + timeout
        ended, exit_status, filtered, signum = "interrupted", None, False, None
        if log_file is None:  # called directly (tests): open the log here
            log_file = os.fdopen(open_private_log(self.log_path), "a", encoding="utf-8")
        self._log_fd = log_file.fileno()
        # The last capture's record is written after the debugger has let the target go (first: exits last).
        with self._finishing_captures(), self.session, log_file:
            try:
                ended, exit_status, filtered = self._loop(timeout, started)
            except KeyboardInterrupt as e:  # Ctrl-C or SIGTERM/SIGHUP (Interrupted): detach, summary
                if self.guard is not None:
                    self.guard.defer()
                if self._pending is not None:  # a dump not yet checked is removed: all or nothing
                    self._pending.cancel()
                signum = getattr(e, "signum", None) or signal.SIGINT
                ended = "interrupted"
                try:
                    self._log_filtered()
                except PydbgautoError as err:
                    log.warning("could not log the last filtered stops: %s", err)
            if self._pending is not None:  # the detach resumes the target: the check need not wait for it
                self._pending.resumed()
        result = WatchResult(
            tuple(self.captures),
            tuple(self.decisions),
            ended,
            self.log_path,
            time.monotonic() - started,
            exit_status,
            filtered,
            exceptions=self.exceptions,
            matches=self.matches,
            signal=signum,
        )
        self.on_event("done", {"result": result})
        return result

    def _loop(self, timeout: Optional[float], started: float) -> Tuple[str, Optional[int], bool]:
        filtered = False
        self.session.break_on_clr_exceptions()
        if self.in_debugger_filter:
            filtered = self.session.set_filter(self.predicate)
        if self.session.pid and os.name == "posix":
            check_disk_for(self.session.pid, self.policy.dump_dir, self.policy.min_free_disk)
            self._dump_size = processes.memory_size(self.session.pid)
        self.on_event(
            "armed",
            {
                "pid": self.session.pid,
                "versions": dict(self.session.versions),
                "filtered_in_debugger": filtered,
                "predicate": self.predicate.describe(),
            },
        )
        while True:
            if self.stop is not None and self.stop.is_set():
                return "stopped", None, filtered
            remaining = None if timeout is None else timeout - (time.monotonic() - started)
            if remaining is not None and remaining <= 0:
                return "timeout", None, filtered
            step = remaining
            if self.stop is not None:
                step = self.poll_interval if remaining is None else min(self.poll_interval, remaining)
            if self._pending is not None:  # this wait resumes the target: the capture's check may begin
                self._pending.resumed()
            try:
                event = self.session.wait_for_event(step)
            except DebuggerNotAnsweringError:
                self._log_filtered()
                raise  # the debugger is hung: a debugger problem, not the end of the time
            except DebuggerTimeoutError:
                self._log_filtered()
                if step != remaining:  # only a slice ended: look at ``stop`` and the time limit again
                    continue
                return "timeout", None, filtered
            self._log_filtered()
            if event.kind == "exit":
                self._decide(event, matched=False)
                return "exit", event.exit_status, filtered
            if not self._handle(event):
                return "timeout", None, filtered  # the predicate overran the time limit
            if self.state.done:
                return "max-dumps", None, filtered

    # ----- one stop -----------------------------------------------------------------------------------

    def _handle(self, event: StopEvent) -> bool:
        """Decide one stop (and dump it); False when the predicate overran the watch's time limit."""
        inner = self._inner_exceptions(event) if "inner" in self.needs else ()
        if "fields" in self.needs:
            event, inner = fields.with_fields(self.session, event, inner)
        if "type_chain" in self.needs and not event.type_chain and event.exception_address:
            try:
                event = attr.evolve(event, type_chain=self.session.type_chain(event.exception_address))
            except PydbgautoError as e:
                log.warning("could not read the base types of %s: %s", event.exception_type, e)
        chains: Tuple[Tuple[str, ...], ...] = ()
        if "inner" in self.needs and "type_chain" in self.needs:
            chains = tuple(self._chain(e.address) for e in inner)
        facts = preds.Facts(event=event, inner_exceptions=inner, inner_type_chains=chains)
        verdict = evaluate_within(self.predicate, facts, self.deadline)
        if verdict is None:
            limit = "the watch's time limit"
            self._decide(event, False, predicate_error=f"the predicate did not return within {limit}")
            log.error("the predicate %s did not return within the time limit", self.predicate.describe())
            return False
        if verdict.error:
            log.warning("the predicate failed on %s: %s", event, verdict.error)
        decision = self._decide(event, verdict.matched, predicate_error=verdict.error)
        if decision.action == "dump":
            self._capture(event, decision, inner)
        return True

    def _decide(
        self, event: StopEvent, matched: bool, predicate_error: Optional[str] = None
    ) -> DecisionRecord:
        free = _free_disk(self.policy.dump_dir)
        if free is not None:  # room for the dump itself as well as min_free_disk
            free = max(free - self._dump_size, 0)
        decision: Decision = self.state.decide(event, matched, time.monotonic(), free)
        record = DecisionRecord(
            action=decision.action, reason=decision.reason, detail=decision.detail, n=decision.n
        )
        self.decisions.append((event, record))
        if event.kind != "exit":
            self.exceptions += 1
        if record.reason != "no-match":
            self.matches += 1
        line: Dict[str, Any] = {
            "sequence": event.sequence,
            "pid": event.pid if event.pid is not None else self.session.pid,
            "time": event.time,
            "kind": event.kind,
            "thread_id": event.thread_id,
            "exception_type": event.exception_type,
            "exception_address": event.exception_address,
            "message": event.exception.message if event.exception else None,
            "matched": matched,
            "action": record.action,
            "reason": record.reason,
            "detail": record.detail,
            "filtered_in_debugger": event.description == "resumed by the debugger-side filter",
        }
        if predicate_error:
            line["predicate_error"] = predicate_error
        if event.crash is not None:  # second chance: stack-overflow, fail-fast (its message), ...
            line["crash"] = {"kind": event.crash.kind, "message": event.crash.message}
        _write_line(self._log_fd, json.dumps(line) + "\n")
        self.on_event("decision", {"event": event, "decision": record})
        return record

    def _log_filtered(self) -> None:
        for event in self.session.take_filtered():
            self._decide(event, matched=False)

    def _capture(
        self, event: StopEvent, decision: DecisionRecord, inner: Tuple[ManagedException, ...]
    ) -> None:
        """At the stop: the thread list and the dump write. Its check (sha256, the reader) and its record
        wait for the target's resume (pydbgauto.after_resume), so the target is held only for the write."""
        self._finish_pending()
        seen_at = time.monotonic()
        threads = None
        try:
            threads = self.session.threads()
        except PydbgautoError as e:
            log.warning("clrthreads failed: %s", e)
        path = self.policy.path(
            self.process, self.session.pid or 0, event.exception_type, time.time(), decision.n or 0
        )
        written: Optional[DumpRecord] = None
        dump_error: Optional[str] = None
        try:
            self.on_event("dump-start", {"event": event, "path": path})
            written = self.session.dump(path, verify=False, checksum=False, expect=event)
        except PydbgautoError as e:
            dump_error = str(e)
            log.error("dump %s failed: %s", path, e)
        except KeyboardInterrupt:  # the dump was removed by Session.dump; say so in the record
            self._record_failure(event, decision, inner, path, threads, "interrupted by a signal: removed")
            raise
        stopped_at = _monotonic_of(event.time)

        def check(pause: float) -> Tuple[Optional[DumpRecord], float]:
            if written is None:
                return None, pause
            dump = attr.evolve(written, pause_seconds=pause)
            try:
                return self.session.check_dump(dump, event, verify=self.policy.verify), pause
            except (PydbgautoError, OSError) as e:
                return attr.evolve(dump, verify_error=f"the dump could not be checked: {e}"), pause

        def keep(checked: Tuple[Optional[DumpRecord], float]) -> None:
            dump, pause = checked
            timings = {"stop_to_dump_start": seen_at - stopped_at, "pause": pause}
            if dump is not None:
                timings["dump_write"] = dump.seconds
                if dump.verify_seconds is not None:
                    timings["verify"] = dump.verify_seconds
                timings["stop_to_verified"] = time.monotonic() - stopped_at
            capture = CaptureRecord(
                event=event,
                decision=decision,
                exception=event.exception,
                stack=_with_source_lines(event.stack, dump),
                threads=threads,
                inner_exceptions=inner,
                dump=dump,
                dump_error=dump_error,
                predicate=self.predicate.describe(),
                timings=timings,
                versions=dict(self.session.versions),
                record_path=(dump.path if dump else path) + ".json",
            )
            capture = self._write_record(capture)
            self.captures.append(capture)
            self.on_event("dump-done", {"capture": capture})

        def drop(pause: float) -> None:  # a signal before the check ended: all or nothing
            if written is not None and os.path.lexists(written.path):
                os.unlink(written.path)
            self._record_failure(event, decision, inner, path, threads, "interrupted by a signal: removed")

        self._pending = Pending(stopped_at, check, keep, drop)

    @contextlib.contextmanager
    def _finishing_captures(self) -> Iterator[None]:
        try:
            yield
        finally:
            self._finish_pending()

    def _finish_pending(self) -> None:
        if self._pending is not None:
            pending, self._pending = self._pending, None
            pending.finish()

    def _write_record(self, capture: CaptureRecord) -> CaptureRecord:
        """Write the capture record; a record that cannot be written is said in ``dump_error``."""
        path = capture.record_path or ""
        try:
            _write_new_json(path, capture.to_dict())
        except DumpError as e:
            log.error("%s", e)
            error = f"{capture.dump_error}; {e}" if capture.dump_error else str(e)
            return attr.evolve(capture, dump_error=error, record_path=None)
        return capture

    def _record_failure(
        self,
        event: StopEvent,
        decision: DecisionRecord,
        inner: Tuple[ManagedException, ...],
        path: str,
        threads: Any,
        error: str,
    ) -> None:
        capture = CaptureRecord(
            event=event,
            decision=decision,
            exception=event.exception,
            stack=event.stack,
            threads=threads,
            inner_exceptions=inner,
            dump=None,
            dump_error=error,
            predicate=self.predicate.describe(),
            versions=dict(self.session.versions),
            record_path=path + ".json",
        )
        self.captures.append(self._write_record(capture))

    def _inner_exceptions(self, event: StopEvent) -> Tuple[ManagedException, ...]:
        every = fields.aggregate_inner_exceptions(self.session, event.exception) if event.exception else None
        if every is not None:  # an AggregateException: all of them, not only the first
            return every
        found: List[ManagedException] = []
        current = event.exception
        while current is not None and current.inner_address and len(found) < MAX_INNER:
            try:
                current = self.session.exception(current.inner_address)
            except PydbgautoError:
                break
            if current is None:
                break
            found.append(current)
        return tuple(found)

    def _chain(self, address: Optional[int]) -> Tuple[str, ...]:
        if not address:
            return ()
        try:
            return self.session.type_chain(address)
        except PydbgautoError:
            return ()


def prepare(
    when: Any,
    dump_dir: str,
    max_dumps: Optional[int],
    skip_first: int,
    cooldown: float,
    dedupe: bool,
    min_free_disk: int,
    name_template: Optional[str],
    verify: bool,
    log_path: Optional[str],
    timeout: Optional[float],
    poll_interval: float,
) -> Tuple[preds.Predicate, DumpPolicy, str]:
    """The checked predicate, dump policy and decision-log path of a watch (one process or several):
    bad input is refused here, before any debugger starts."""
    predicate = (
        preds.as_predicate(when) if when is not None else (preds.first_chance() | preds.second_chance())
    )
    dump_dir = os.path.abspath(dump_dir)
    check_dump_folder(dump_dir)
    policy_args: Dict[str, Any] = dict(
        dump_dir=dump_dir,
        max_dumps=max_dumps,
        skip_first=skip_first,
        cooldown=cooldown,
        dedupe_stack=dedupe,
        dedupe_object=dedupe,
        min_free_disk=min_free_disk,
        verify=verify,
    )
    if name_template is not None:
        policy_args["name_template"] = name_template
    policy = DumpPolicy(**policy_args)
    log_path = os.path.abspath(log_path or os.path.join(dump_dir, LOG_NAME))
    check_dump_folder(os.path.dirname(log_path))
    if timeout is not None and timeout <= 0:
        raise ConfigurationError(
            f"timeout must be positive seconds (or None to wait for ever), not {timeout!r}"
        )
    if poll_interval <= 0:
        raise ConfigurationError(f"poll_interval must be positive seconds, not {poll_interval!r}")
    return predicate, policy, log_path


def _with_source_lines(stack: Optional[ManagedStack], dump: Optional[DumpRecord]) -> Optional[ManagedStack]:
    """The reader's stack of the same thread when it has file and line (the live lldb path has none)."""
    seen = dump.seen_stack if dump is not None else None
    if seen is None or stack is None or seen.os_thread_id != stack.os_thread_id:
        return stack
    if not any(frame.source_file for frame in seen.frames):
        return stack
    return seen


def _serialized(callback: EventCallback) -> EventCallback:
    """``callback`` called by one thread at a time (the watch's and a capture's after-resume thread)."""
    lock = threading.Lock()

    def call(kind: str, data: Mapping[str, Any]) -> None:
        with lock:
            callback(kind, data)

    return call


def _monotonic_of(epoch: float) -> float:
    """An epoch time on the monotonic clock (for durations that start at a stop's wall time)."""
    return time.monotonic() - (time.time() - epoch) if epoch else time.monotonic()


def _free_disk(folder: str) -> Optional[int]:
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def _process_name(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm", encoding="utf-8", errors="replace") as f:
            return f.read().strip() or str(pid)
    except OSError:
        return str(pid)


_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


def _write_new_json(path: str, data: Mapping[str, Any]) -> None:
    """A capture record: created new (never overwritten, never through a symlink), mode 0600 whatever
    the umask (it holds exception messages). Nothing half-written stays: a failed write removes it."""
    text = json.dumps(data, indent=1) + "\n"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o600)
    except FileExistsError:
        what = "a symlink" if os.path.islink(path) else "a file"
        raise DumpError(
            f"{what} is already at {path}: pydbgauto never writes a capture record through a symlink "
            "or over a file; remove it, or use a dump folder only you can write to"
        ) from None
    except OSError as e:
        raise DumpError(f"cannot create the capture record {path}: {e.strerror}") from e
    try:
        os.fchmod(fd, 0o600)
        _write_all(fd, text.encode("utf-8"))
        os.fsync(fd)
    except OSError as e:
        os.close(fd)
        _unlink_quietly(path)
        raise DumpError(f"cannot write the capture record {path}: {e.strerror}; it was removed") from e
    os.close(fd)


def open_private_log(path: str) -> int:
    """Open (or create) the decision log for appending: never through a symlink, only a regular file of
    ours with one link, mode 0600 whatever the umask. Returns the file descriptor."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NONBLOCK | _NOFOLLOW
    try:
        fd = os.open(path, flags, 0o600)
    except OSError as e:
        if e.errno == errno.ELOOP or os.path.islink(path):
            raise ConfigurationError(
                f"{path} is a symlink: pydbgauto never writes its decision log through a symlink "
                "(someone may have planted it); remove it, or use a folder only you can write to"
            ) from None
        raise ConfigurationError(f"cannot open the decision log {path}: {e.strerror}") from e
    try:
        info = os.fstat(fd)
        problem = None
        if not stat.S_ISREG(info.st_mode):
            problem = "is not a regular file"
        elif info.st_nlink != 1:
            problem = f"has {info.st_nlink} hard links (it may be another file under a planted name)"
        elif info.st_uid != os.geteuid():
            problem = f"belongs to user id {info.st_uid}, not to you"
        if problem:
            raise ConfigurationError(
                f"the decision log {path} {problem}: remove it, or give another log_path / --dump-dir"
            )
        os.fchmod(fd, 0o600)
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def check_disk_for(pid: int, folder: str, min_free_disk: int) -> None:
    """Refuse up front when the dump folder cannot hold a dump of ``pid`` plus ``min_free_disk``."""
    free = _free_disk(folder)
    need = processes.memory_size(pid)
    if free is None or not need:
        return
    if free < need + min_free_disk:
        raise DiskSpaceError(
            f"the dump folder {folder} has {_mib(free)} free; a dump of pid {pid} can take up to "
            f"{_mib(need)} (its readable memory) and min_free_disk is {_mib(min_free_disk)}: free some "
            "space, choose another --dump-dir, or lower --min-free-disk"
        )


def evaluate_within(
    predicate: preds.Predicate, facts: preds.Facts, deadline: Optional[float]
) -> Optional[preds.Verdict]:
    """Evaluate on a worker thread until ``deadline`` (monotonic; None: no limit); None when it overran.

    The main thread waits in short slices, so a signal still ends the watch. A predicate that never
    returns cannot be stopped (Python cannot kill a thread): its daemon thread is abandoned and runs on
    until it returns or the process exits.
    """
    box: List[preds.Verdict] = []
    worker = threading.Thread(
        target=lambda: box.append(preds.evaluate(predicate, facts)), name="pydbgauto-predicate", daemon=True
    )
    worker.start()
    while worker.is_alive():
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            return None
        worker.join(0.2 if left is None else min(0.2, left))
    return box[0] if box else preds.Verdict(False, "the predicate ended without an answer")


def _write_line(fd: int, line: str) -> None:
    """One decision log line in one write (O_APPEND): a crash loses at most the line being written."""
    if fd >= 0:
        _write_all(fd, line.encode("utf-8"))


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _mib(value: int) -> str:
    return f"{value / (1 << 20):.0f} MiB"


def _signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"
