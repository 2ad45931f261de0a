"""The job end to end: watch a process, decide with a predicate, write the right dumps, log every decision.

    import pydbgauto as pda
    when = pda.exception_type("System.InvalidOperationException") & pda.message_matches(r"timeout")
    result = pda.watch(pid=1234, when=when, dump_dir="dumps", max_dumps=3, timeout=3600)

Every stop gets one line in the decision log (JSON lines, mode 0600): what was seen, whether it matched,
and if it matched but was not dumped, why. Every dump gets a capture record (JSON, beside the dump).
Everything a user passes is checked before a debugger starts.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
import time
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import attr

from pydbgauto import fields
from pydbgauto import predicates as preds
from pydbgauto.errors import ConfigurationError, DebuggerTimeoutError, PydbgautoError
from pydbgauto.models import (
    CaptureRecord,
    DecisionRecord,
    DumpRecord,
    ManagedException,
    ManagedStack,
    StopEvent,
)
from pydbgauto.policy import GIB, Decision, DumpPolicy, PolicyState
from pydbgauto.session import Session, check_dump_folder

log = logging.getLogger(__name__)

MAX_INNER = 8
LOG_NAME = "pydbgauto-decisions.jsonl"


@attr.frozen
class WatchResult:
    """What one watch saw and did."""

    captures: Tuple[CaptureRecord, ...]
    decisions: Tuple[Tuple[StopEvent, DecisionRecord], ...]
    ended: str  # "max-dumps", "timeout", "exit", "interrupted", "stopped" (``stop`` was set)
    log_path: str
    elapsed: float
    exit_status: Optional[int] = None
    filtered_in_debugger: bool = False  # the predicate ran inside the debugger's agent

    @property
    def events_seen(self) -> int:
        """Exceptions seen (the exit is in ``decisions`` too, but is not an exception)."""
        return sum(1 for e, _ in self.decisions if e.kind != "exit")

    @property
    def matched(self) -> int:
        return sum(1 for _, d in self.decisions if d.reason != "no-match")

    def _repr_html_(self) -> str:
        from pydbgauto.display import watch_result_html

        return watch_result_html(self)

    def _repr_markdown_(self) -> str:
        from pydbgauto.display import watch_result_markdown

        return watch_result_markdown(self)

    def __str__(self) -> str:
        return (
            f"{self.events_seen} exceptions seen, {self.matched} matched, "
            f"{len(self.captures)} dumps written; "
            f"ended: {self.ended} after {self.elapsed:.1f} s; decision log: {self.log_path}"
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
) -> WatchResult:
    """Watch one process until ``max_dumps`` dumps are written, ``timeout`` seconds pass, or it exits.

    Target: exactly one of ``pid``, ``name`` (``wait=True`` waits for it to start) or ``launch`` (argv).
    ``when``: a predicate from pydbgauto's helpers (combined with ``&``, ``|``, ``~``) or any callable
    taking the ``ManagedException`` (or the ``StopEvent``); None matches every exception.
    ``stop``: set it (from another thread) to end the watch between events (``ended == "stopped"``); the
    wait then runs in slices of ``poll_interval`` seconds (each slice breaks in and resumes the target).
    ``live``: a live view (counts, last exception, dumps) updated as the watch goes; None shows it when
    running in a Jupyter kernel (``pydbgauto.progress``).
    """
    targets = sum(x is not None for x in (pid, name, launch))
    if targets != 1:
        raise ConfigurationError("watch needs exactly one target: pid=, name= or launch=[argv]")
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

    from pydbgauto import progress

    if live or (live is None and progress.in_notebook()):
        on_event = progress.NotebookProgress().wrap(on_event)
    options = dict(session_options or {})
    if launch is not None:
        session = Session.launch(list(launch), debugger=debugger, **options)
        process = os.path.basename(str(launch[0]))
    elif pid is not None:
        session = Session.attach(pid=pid, debugger=debugger, **options)
        process = _process_name(pid)
    else:
        session = Session.attach(name=name, wait=wait, debugger=debugger, **options)
        process = str(name)
    return _Watch(
        session, predicate, policy, process, log_path, on_event, in_debugger_filter, stop, poll_interval
    ).run(timeout)


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
        self.on_event = on_event or (lambda kind, data: None)
        self.in_debugger_filter = in_debugger_filter
        self.needs = predicate.needs | policy.needs
        self.captures: List[CaptureRecord] = []
        self.decisions: List[Tuple[StopEvent, DecisionRecord]] = []
        self.stop = stop
        self.poll_interval = poll_interval

    def run(self, timeout: Optional[float]) -> WatchResult:
        started = time.monotonic()
        ended, exit_status, filtered = "interrupted", None, False
        fd = os.open(
            self.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_CLOEXEC", 0), 0o600
        )
        with self.session, os.fdopen(fd, "a", encoding="utf-8") as self._log:
            self.session.break_on_clr_exceptions()
            if self.in_debugger_filter:
                filtered = self.session.set_filter(self.predicate)
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
                    ended = "stopped"
                    break
                remaining = None if timeout is None else timeout - (time.monotonic() - started)
                if remaining is not None and remaining <= 0:
                    ended = "timeout"
                    break
                step = remaining
                if self.stop is not None:
                    step = self.poll_interval if remaining is None else min(self.poll_interval, remaining)
                try:
                    event = self.session.wait_for_event(step)
                except DebuggerTimeoutError:
                    self._log_filtered()
                    if step != remaining:  # only a slice ended: look at ``stop`` and the time limit again
                        continue
                    ended = "timeout"
                    break
                self._log_filtered()
                if event.kind == "exit":
                    exit_status = event.exit_status
                    self._decide(event, matched=False)
                    ended = "exit"
                    break
                self._handle(event)
                if self.state.done:
                    ended = "max-dumps"
                    break
        result = WatchResult(
            tuple(self.captures),
            tuple(self.decisions),
            ended,
            self.log_path,
            time.monotonic() - started,
            exit_status,
            filtered,
        )
        self.on_event("done", {"result": result})
        return result

    # ----- one stop -----------------------------------------------------------------------------------

    def _handle(self, event: StopEvent) -> None:
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
        verdict = preds.evaluate(
            self.predicate, preds.Facts(event=event, inner_exceptions=inner, inner_type_chains=chains)
        )
        if verdict.error:
            log.warning("the predicate failed on %s: %s", event, verdict.error)
        decision = self._decide(event, verdict.matched, predicate_error=verdict.error)
        if decision.action == "dump":
            self._capture(event, decision, inner)

    def _decide(
        self, event: StopEvent, matched: bool, predicate_error: Optional[str] = None
    ) -> DecisionRecord:
        free = _free_disk(self.policy.dump_dir)
        decision: Decision = self.state.decide(event, matched, time.monotonic(), free)
        record = DecisionRecord(
            action=decision.action, reason=decision.reason, detail=decision.detail, n=decision.n
        )
        self.decisions.append((event, record))
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
        self._log.write(json.dumps(line) + "\n")
        self._log.flush()
        self.on_event("decision", {"event": event, "decision": record})
        return record

    def _log_filtered(self) -> None:
        for event in self.session.take_filtered():
            self._decide(event, matched=False)

    def _capture(
        self, event: StopEvent, decision: DecisionRecord, inner: Tuple[ManagedException, ...]
    ) -> None:
        seen_at = time.monotonic()
        threads = None
        try:
            threads = self.session.threads()
        except PydbgautoError as e:
            log.warning("clrthreads failed: %s", e)
        path = self.policy.path(
            self.process, self.session.pid or 0, event.exception_type, time.time(), decision.n or 0
        )
        self.on_event("dump-start", {"event": event, "path": path})
        dump, dump_error = None, None
        try:
            dump = self.session.dump(path, verify=self.policy.verify, expect=event)
        except PydbgautoError as e:
            dump_error = str(e)
            log.error("dump %s failed: %s", path, e)
        timings = {"stop_to_dump_start": seen_at - _monotonic_of(event.time)}
        if dump is not None:
            timings["dump_write"] = dump.seconds
            if dump.verify_seconds is not None:
                timings["verify"] = dump.verify_seconds
            timings["stop_to_verified"] = time.monotonic() - _monotonic_of(event.time)
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
        _write_new_json(capture.record_path or path + ".json", capture.to_dict())
        self.captures.append(capture)
        self.on_event("dump-done", {"capture": capture})

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


def _with_source_lines(stack: Optional[ManagedStack], dump: Optional[DumpRecord]) -> Optional[ManagedStack]:
    """The reader's stack of the same thread when it has file and line (the live lldb path has none)."""
    seen = dump.seen_stack if dump is not None else None
    if seen is None or stack is None or seen.os_thread_id != stack.os_thread_id:
        return stack
    if not any(frame.source_file for frame in seen.frames):
        return stack
    return seen


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


def _write_new_json(path: str, data: Mapping[str, Any]) -> None:
    """A capture record: created new (never overwritten), mode 0600 (it holds exception messages)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1)
        f.write("\n")
