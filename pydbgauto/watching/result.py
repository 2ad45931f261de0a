"""What a watch hands back (:class:`WatchResult`; :class:`MultiWatchResult` for every process of a name),
and the type of its ``on_event`` callback."""

from __future__ import annotations

import signal
from typing import Any, Callable, Mapping, Optional, Tuple

import attr

from pydbgauto.models import CaptureRecord, DecisionRecord, StopEvent

# on_event(kind, data): "armed", "decision", "dump-start", "dump-done", "done" (see pydbgauto.progress)
EventCallback = Callable[[str, Mapping[str, Any]], None]


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
    # Exceptions the target threw from the arming to the end, by the runtime's own counter (every throw and
    # rethrow, those the debugger's filter let go without a stop too; a throw the watch ends stopped at is
    # counted on .NET 9+, not yet on .NET 8; at an exit, as read at its exit() call or abort); None: not
    # known (no counter found, another driver, a process killed by a signal, or running at the end).
    thrown: Optional[int] = None

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
        ended = self.ended if self.signal is None else f"{self.ended} ({signal_name(self.signal)})"
        return (
            f"{thrown_text(self.thrown)}{self.events_seen} exceptions seen, {self.matched} matched, "
            f"{len(self.dumps)} dumps written{f', {failed} failed' if failed else ''}; "
            f"ended: {ended} after {self.elapsed:.1f} s; decision log: {self.log_path}"
        )


@attr.frozen
class MultiWatchResult:
    """What a watch of every process of a name saw and did: one ``WatchResult`` per process watched."""

    name: str
    results: Tuple[Tuple[int, WatchResult], ...]  # (pid, result), in the order they were attached
    errors: Tuple[Tuple[int, str], ...]  # (pid, why it could not be watched)
    ended: str  # "max-dumps", "timeout", "exit" (every process ended), "stopped", "interrupted"
    log_path: str
    elapsed: float

    @property
    def pids(self) -> Tuple[int, ...]:
        return tuple(pid for pid, _ in self.results)

    @property
    def captures(self) -> Tuple[CaptureRecord, ...]:
        """Every process's captures, in the order their stops were seen."""
        every = [c for _, r in self.results for c in r.captures]
        return tuple(sorted(every, key=lambda c: c.event.time))

    @property
    def events_seen(self) -> int:
        return sum(r.events_seen for _, r in self.results)

    @property
    def matched(self) -> int:
        return sum(r.matched for _, r in self.results)

    @property
    def thrown(self) -> Optional[int]:
        """Every process's count of throws (``WatchResult.thrown``); None unless each is known."""
        counts = [r.thrown for _, r in self.results]
        return sum(c for c in counts if c is not None) if counts and None not in counts else None

    def __str__(self) -> str:
        text = (
            f"{len(self.results)} processes called {self.name!r} watched: {thrown_text(self.thrown)}"
            f"{self.events_seen} exceptions seen, {self.matched} matched, {len(self.captures)} dumps "
            f"written; ended: {self.ended} after {self.elapsed:.1f} s; decision log: {self.log_path}"
        )
        if self.errors:
            text += "; not watched: " + ", ".join(f"pid {pid} ({why})" for pid, why in self.errors)
        return text

    def _repr_html_(self) -> str:
        from pydbgauto.display import _details_html, _e, _root, watch_result_html

        parts = [f'<div class="pdg-head pdg-label">{_e(self)}</div>']
        for pid, result in self.results:
            parts.append(_details_html(f"pid {pid}: {result}", watch_result_html(result), open_=False))
        return _root("watch-all", "".join(parts))


def signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def thrown_text(thrown: Optional[int]) -> str:
    """The summary's first words: the runtime's count, where it is known."""
    return "" if thrown is None else f"{thrown} exceptions thrown (the runtime's count), "
