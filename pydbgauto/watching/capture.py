"""One stop of a watch: event -> facts -> predicate -> decision (a line in the decision log) -> dump ->
capture record (JSON beside the dump). The target is held stopped up to the dump's write; the dump's
check (sha256, the reader) and its record follow once it runs again (:mod:`pydbgauto.after_resume`).

A stop the debugger-side filter matched (``StopEvent.matched_in_debugger``) is decided before SOS reads
it when the policy needs no stack for it (no dump's stack to compare with yet): decision, dump, then
``pe`` and ``clrstack`` (and the thread list) at the same stop, for the record. Its decision log line has
what the debugger read of the object (type, and message and HResult for a message predicate)."""

from __future__ import annotations

import collections
import json
import logging
import threading
import time
import os
from typing import Any, Callable, Deque, List, Mapping, Optional, Tuple

import attr

from pydbgauto import dumpfile, fields
from pydbgauto.after_resume import Pending
from pydbgauto import predicates as preds
from pydbgauto.errors import DumpError, PydbgautoError
from pydbgauto.models import (
    CaptureRecord,
    DecisionRecord,
    DumpRecord,
    ManagedException,
    ManagedStack,
    StopEvent,
)
from pydbgauto.policy import DumpPolicy, PolicyState
from pydbgauto.session import Session
from pydbgauto.watching.checks import free_disk
from pydbgauto.watching.predicate_workers import evaluate_within
from pydbgauto.watching.decision_log import decision_line, write_line
from pydbgauto.watching import thin
from pydbgauto.watching.asked import AskedThrows
from pydbgauto.watching.records import write_new_json
from pydbgauto.watching.result import EventCallback

log = logging.getLogger(__name__)

MAX_INNER = 8
# A watch keeps the last this many (event, decision) pairs; the decision log has them all.
KEEP_DECISIONS = 1000
Evaluate = Callable[[preds.Predicate, preds.Facts], preds.Verdict]


class StopHandler:
    """Decides each stop of one session, dumps what the policy says to, and keeps the tally: the captures,
    the last ``KEEP_DECISIONS`` decisions, and counts of exceptions and matches.

    ``state``: the policy's running state (default: this process's own; ``watch_all`` gives one whose
    ``max_dumps`` counts every process's dumps). ``log_fd``: the open decision log (-1: none).
    """

    def __init__(
        self,
        session: Session,
        predicate: preds.Predicate,
        policy: DumpPolicy,
        process: str,
        on_event: Optional[EventCallback] = None,
        state: Optional[PolicyState] = None,
    ) -> None:
        self.session = session
        self.predicate = predicate
        self.policy = policy
        self.state = state or PolicyState(policy)
        self.process = process
        self.on_event = _serialized(on_event or (lambda kind, data: None))  # a capture's thread calls it too
        self.needs = predicate.needs | policy.needs
        self.captures: List[CaptureRecord] = []
        self.decisions: Deque[Tuple[StopEvent, DecisionRecord]] = collections.deque(maxlen=KEEP_DECISIONS)
        self.exceptions = 0
        self.matches = 0
        self.deadline: Optional[float] = None  # the watch's end (monotonic): a predicate may not pass it
        self.log_fd = -1
        self.dump_size = 0  # bytes a dump of the target may take (its readable mappings)
        self.pending: Optional[Pending[Tuple[Optional[DumpRecord], float]]] = None  # the last dump's check
        # a callable decided while the target runs (asked.py): one evaluation at a time
        self.asked: Optional[AskedThrows] = None
        self.predicate_lock = threading.Lock()

    def handle(self, event: StopEvent, parsed: bool = True) -> bool:
        """Decide one stop (and dump it); False when the predicate overran the watch's time limit.
        ``parsed``: the event carries pe and clrstack (else they are read here, after a dump if the
        debugger-side filter decided it)."""
        if not parsed and event.kind != "exit":
            if event.matched_in_debugger and self.state.can_decide_without_stack():
                return self._decided_before_reading(event)
            if thin.applies(event):  # the type, message and HResult may be all the predicate needs
                verdict = self.asked.verdict_for(event) if self.asked is not None else None
                if verdict is None:  # not given while the target asked (watching/asked.py)
                    facts, touches = thin.facts_of(event)
                    evaluate = self._locked(thin.evaluate)
                    verdict = evaluate_within(self.predicate, facts, self.deadline, evaluate)
                    if verdict is None:
                        return self._overran(event)
                    if thin.needed_more(verdict, touches):
                        verdict = thin.NEEDS_MORE
                if verdict is not thin.NEEDS_MORE and not verdict.error:
                    if not verdict.matched:
                        self.decide(event, False)
                        return True
                    if self.state.can_decide_without_stack():
                        return self._decided_before_reading(event)
            try:
                event = self.session.read_stop(event)
            except PydbgautoError as e:
                log.warning("could not read the stop of %s: %s", event, e)
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
        verdict = evaluate_within(self.predicate, facts, self.deadline, self._locked(preds.evaluate))
        if verdict is None:
            return self._overran(event)
        if verdict.error:
            log.warning("the predicate failed on %s: %s", event, verdict.error)
        decision = self.decide(event, verdict.matched, predicate_error=verdict.error)
        if decision.action == "dump":
            self._capture(event, decision, inner)
        return True

    def _locked(self, evaluate: Evaluate) -> Evaluate:
        """``evaluate`` under predicate_lock: the predicate may be asked about a throw meanwhile."""

        def run(predicate: preds.Predicate, facts: preds.Facts) -> preds.Verdict:
            with self.predicate_lock:
                return evaluate(predicate, facts)

        return run

    def _decided_before_reading(self, event: StopEvent) -> bool:
        """A match decided from what the debugger read: decision, dump, then SOS reads it for the record."""
        decision = self.decide(event, True)
        if decision.action == "dump":
            self._capture(event, decision, (), read_after=True)
        return True

    def _overran(self, event: StopEvent) -> bool:
        limit = "the watch's time limit"
        self.decide(event, False, predicate_error=f"the predicate did not return within {limit}")
        log.error("the predicate %s did not return within the time limit", self.predicate.describe())
        return False

    def decide(
        self, event: StopEvent, matched: bool, predicate_error: Optional[str] = None
    ) -> DecisionRecord:
        """The policy's decision on one stop, counted, logged, and told to ``on_event``."""
        free = free_disk(self.policy.dump_dir)
        if free is not None:  # room for the dump itself as well as min_free_disk
            free = max(free - self.dump_size, 0)
        record = self.state.decide(event, matched, time.monotonic(), free)
        self.decisions.append((event, record))
        if event.kind != "exit":
            self.exceptions += 1
        if record.reason != "no-match":
            self.matches += 1
        line = decision_line(event, record, matched, self.session.pid, predicate_error)
        write_line(self.log_fd, json.dumps(line) + "\n")
        self.on_event("decision", {"event": event, "decision": record})
        return record

    def log_filtered(self) -> None:
        """Log the stops the debugger-side filter resumed since the last call (none matched)."""
        for event in self.session.take_filtered():
            self.decide(event, matched=False)

    def resumed(self) -> None:
        """The target runs again (the loop's next wait, or the detach): the last dump's check may begin."""
        if self.pending is not None:
            self.pending.resumed()

    def finish_pending(self, cancel: bool = False) -> None:
        """Wait for the last dump's check and record; ``cancel`` (a signal): remove the dump instead."""
        pending = self.pending
        if pending is not None:  # cleared only once finished: a signal during the wait leaves it to cancel
            if cancel:
                pending.cancel()
            pending.finish()
            self.pending = None

    def _capture(
        self,
        event: StopEvent,
        decision: DecisionRecord,
        inner: Tuple[ManagedException, ...],
        read_after: bool = False,
    ) -> None:
        """At the stop: the dump write, then the thread list (and with ``read_after`` the stop's pe and
        clrstack: it was decided on what the debugger read); the check and the record after the resume."""
        self.finish_pending()
        seen_at = time.monotonic()
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
            self._record_failure(event, decision, inner, path, None, "interrupted by a signal: removed")
            raise
        stopped_at = _monotonic_of(event.time)
        file_at = time.monotonic()
        if read_after:
            event, inner = self._read_decided(event, decision)
        threads = None
        try:
            threads = self.session.threads()
        except PydbgautoError as e:
            log.warning("clrthreads failed: %s", e)

        def check(pause: float) -> Tuple[Optional[DumpRecord], float]:
            if written is None:
                return None, pause
            dump = attr.evolve(written, pause_seconds=pause)
            try:
                verifier = self.session.driver.verify_dump
                return (
                    dumpfile.check_written(dump, event, verifier, verify=self.policy.verify, checksum=True),
                    pause,
                )
            except (PydbgautoError, OSError) as e:
                return attr.evolve(dump, verify_error=f"the dump could not be checked: {e}"), pause

        def keep(checked: Tuple[Optional[DumpRecord], float]) -> None:
            dump, pause = checked
            timings = {"stop_to_dump_start": seen_at - stopped_at, "pause": pause}
            if written is not None:
                timings["stop_to_dump_file"] = file_at - stopped_at
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

        self.pending = Pending(stopped_at, check, keep, drop)

    def _read_decided(
        self, event: StopEvent, decision: DecisionRecord
    ) -> Tuple[StopEvent, Tuple[ManagedException, ...]]:
        """After the dump of a stop decided on what the debugger read: its pe and clrstack (the target is
        still stopped there), its stack remembered for dedupe, the kept decision updated, and the
        predicate asked again on what SOS shows (a disagreement is logged; the dump stays)."""
        try:
            full = self.session.read_stop(event)
        except PydbgautoError as e:
            log.warning("could not read the stop of %s after its dump: %s", event, e)
            return event, ()
        inner = self._inner_exceptions(full) if "inner" in self.needs else ()
        self.state.remember_stack(full, decision.n or 0)
        if self.decisions and self.decisions[-1][0] is event:
            self.decisions[-1] = (full, decision)
        if not event.matched_in_debugger:  # decided in Python on the thin stop: a callable runs once
            return full, inner
        verdict = preds.evaluate(self.predicate, preds.Facts(event=full, inner_exceptions=inner))
        if not verdict.matched:
            log.warning(
                "the debugger's filter matched %s but the predicate does not on what SOS shows (%s)",
                full,
                verdict.error or "no match",
            )
        return full, inner

    def _write_record(self, capture: CaptureRecord) -> CaptureRecord:
        """Write the capture record; a record that cannot be written is said in ``dump_error``."""
        path = capture.record_path or ""
        try:
            write_new_json(path, capture.to_dict())
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
