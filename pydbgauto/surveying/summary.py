"""What a survey saw, as data: rows by (type, message pattern, throw site) with counts and rates, and
breakdowns by type, throw site, thread and process. Pure: :func:`summarise` takes the StopEvents."""

from __future__ import annotations

import math
import shlex
from collections import Counter
from typing import ClassVar, Dict, List, Optional, Sequence, Tuple, Type

import attr

from pydbgauto.errors import ConfigurationError
from pydbgauto.models import StopEvent, _Model
from pydbgauto.surveying.patterns import escape, fold_message, message_regex


@attr.frozen
class SurveyCount(_Model):
    """One value of a breakdown (a type, a thread, a throw site) and how often it was seen."""

    key: str
    count: int
    rate: float  # per second of the survey

    def __str__(self) -> str:
        return f"{self.count:>7} {self.rate:>8.2f}/s  {self.key}"


@attr.frozen
class SurveyRow(_Model):
    """Exceptions of one type, message pattern and throw site."""

    n: int  # 1-based, most frequent first
    type: Optional[str]
    pattern: Optional[str]  # the folded message (None: the exception had no message)
    site: Optional[str]  # the throw site's method (None: SOS gave no managed frame)
    count: int
    rate: float
    first_chance: int = 0
    second_chance: int = 0
    threads: Tuple[SurveyCount, ...] = ()  # OS thread id (hex) -> count
    example: Optional[str] = None  # one message as thrown
    first_seen: float = 0.0  # seconds after the survey was armed
    last_seen: float = 0.0
    watch_args: Tuple[str, ...] = ()  # the predicate options of a `pydbgauto watch` for this row

    _nested: ClassVar[Dict[str, Type[_Model]]] = {"threads": SurveyCount}

    def __str__(self) -> str:
        return (
            f"#{self.n} {self.count} x {self.type or '?'} ({self.rate:.2f}/s): {self.pattern!r} "
            f"in {self.site or '?'} on {len(self.threads)} thread{'' if len(self.threads) == 1 else 's'}"
        )


@attr.frozen
class SurveyResult(_Model):
    """What a survey saw: one row per (type, message pattern, throw site), and breakdowns by type,
    throw site and thread. Rates are per second of ``seconds`` (from armed to the end)."""

    pid: Optional[int]
    process: str
    seconds: float
    total: int
    rows: Tuple[SurveyRow, ...] = ()
    by_type: Tuple[SurveyCount, ...] = ()
    by_site: Tuple[SurveyCount, ...] = ()
    by_thread: Tuple[SurveyCount, ...] = ()  # with several processes the keys are "<pid>:<thread>"
    by_pid: Tuple[SurveyCount, ...] = ()
    ended: str = "timeout"  # as watch's: "timeout", "exit", "stopped", ...
    exit_status: Optional[int] = None
    unread: int = 0  # stops where SOS could not read the exception (type None)
    target: Tuple[str, ...] = ()  # the target options for a suggested watch: ("--pid", "1234")
    started: float = 0.0  # epoch seconds when the survey was armed

    _nested: ClassVar[Dict[str, Type[_Model]]] = {
        "rows": SurveyRow,
        "by_type": SurveyCount,
        "by_site": SurveyCount,
        "by_thread": SurveyCount,
        "by_pid": SurveyCount,
    }

    @property
    def rate(self) -> float:
        return _rate(self.total, self.seconds)

    def row(self, n: int) -> SurveyRow:
        """Row ``n`` (1-based, as printed)."""
        for row in self.rows:
            if row.n == n:
                return row
        raise ConfigurationError(f"the survey has rows 1 to {len(self.rows)}, not {n!r}")

    def watch_command(self, n: int, *, dump_dir: Optional[str] = None) -> str:
        """The ``pydbgauto watch`` command line that dumps the exceptions of row ``n``."""
        row = self.row(n)
        args = ["pydbgauto", "watch", *self.target, *row.watch_args]
        if dump_dir is not None:
            args += ["--dump-dir", dump_dir]
        return " ".join(shlex.quote(a) for a in args)

    def __str__(self) -> str:
        from pydbgauto.surveying.view import summary_text

        return summary_text(self)

    def _repr_html_(self) -> str:
        from pydbgauto.surveying.view import survey_html

        return survey_html(self)


def _rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else 0.0


def _site_of(event: StopEvent) -> Optional[str]:
    site = event.throw_site
    if site is None:
        return None
    return site.method or site.call_site


def _watch_args(type_name: Optional[str], example: Optional[str], site: Optional[str]) -> Tuple[str, ...]:
    args: List[str] = []
    if type_name:
        args += ["--type", type_name]
    regex = message_regex(example)
    if regex is not None:
        args += ["--message", regex]
    if site:
        args += ["--thrown-in", "^" + escape(site) + "$"]
    return tuple(args)


def _counts(counter: "Counter[str]", seconds: float) -> Tuple[SurveyCount, ...]:
    ordered = sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))
    return tuple(SurveyCount(key, count, _rate(count, seconds)) for key, count in ordered)


def _tid(event: StopEvent, several: bool = False) -> str:
    """The thread as ``0x1a2b``; with several processes ``<pid>:0x1a2b``."""
    tid = "?" if event.thread_id is None else f"0x{event.thread_id:x}"
    return f"{event.pid}:{tid}" if several else tid


def summarise(
    events: Sequence[StopEvent],
    seconds: float,
    *,
    pid: Optional[int] = None,
    process: str = "",
    target: Sequence[str] = (),
    ended: str = "timeout",
    exit_status: Optional[int] = None,
    started: float = 0.0,
) -> SurveyResult:
    """Group exception stops by (type, message pattern, throw site); count them per row, per type, per throw
    site and per thread. Pure: ``events`` are StopEvents (an ``exit`` is left out), ``seconds`` the time
    watched, ``started`` its epoch start (for ``first_seen``/``last_seen``)."""
    if not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or not math.isfinite(seconds):
        raise ConfigurationError(f"summarise: seconds must be a finite number, not {seconds!r}")
    groups: Dict[Tuple[str, str, str], List[StopEvent]] = {}
    keys: Dict[Tuple[str, str, str], Tuple[Optional[str], Optional[str], Optional[str]]] = {}
    by_type: "Counter[str]" = Counter()
    by_site: "Counter[str]" = Counter()
    by_thread: "Counter[str]" = Counter()
    by_pid: "Counter[str]" = Counter()
    unread = 0
    total = 0
    several = len({e.pid for e in events if e.kind != "exit"}) > 1
    for event in events:
        if event.kind == "exit":
            continue
        total += 1
        type_name = event.exception_type
        if type_name is None:
            unread += 1
        message = event.exception.message if event.exception else None
        pattern = fold_message(message)
        site = _site_of(event)
        key = (type_name or "", "\0" if pattern is None else pattern, site or "")
        groups.setdefault(key, []).append(event)
        keys[key] = (type_name, pattern, site)
        by_type[type_name or "?"] += 1
        by_site[site or "?"] += 1
        by_thread[_tid(event, several)] += 1
        by_pid[str(event.pid)] += 1
    ordered = sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    rows = []
    for n, (key, members) in enumerate(ordered, 1):
        type_name, pattern, site = keys[key]
        first = members[0]
        example = first.exception.message if first.exception else None
        threads: "Counter[str]" = Counter(_tid(e, several) for e in members)
        times = [e.time - started for e in members if e.time and started]
        rows.append(
            SurveyRow(
                n=n,
                type=type_name,
                pattern=pattern,
                site=site,
                count=len(members),
                rate=_rate(len(members), seconds),
                first_chance=sum(1 for e in members if e.kind == "first-chance"),
                second_chance=sum(1 for e in members if e.kind == "second-chance"),
                threads=_counts(threads, seconds),
                example=example,
                first_seen=round(min(times), 3) if times else 0.0,
                last_seen=round(max(times), 3) if times else 0.0,
                watch_args=_watch_args(type_name, example, site),
            )
        )
    return SurveyResult(
        pid=pid,
        process=process,
        seconds=float(seconds),
        total=total,
        rows=tuple(rows),
        by_type=_counts(by_type, seconds),
        by_site=_counts(by_site, seconds),
        by_thread=_counts(by_thread, seconds),
        by_pid=_counts(by_pid, seconds),
        ended=ended,
        exit_status=exit_status,
        unread=unread,
        target=tuple(target),
        started=started,
    )
