"""Survey: what does a process throw? Watch every exception for a while, dump nothing, and summarise.

    import pydbgauto as pda
    result = pda.survey(pid=1234, seconds=60)
    print(result)                       # rows by type, message pattern and throw site, with counts and rates
    print(result.watch_command(1))      # the `pydbgauto watch ...` line that dumps row 1's exceptions

From the shell: ``pydbgauto survey (--pid N | --name X) --seconds S [--json]``.

A survey is a ``watch()`` whose predicate never matches and that runs in Python (so that every stop comes
back with its parsed ``pe`` and ``clrstack``): every first-chance exception stops the whole process for
about 0.1 s while SOS reads it (docs/linux.md, "What it costs"). The rates it reports are those of the
process under the debugger.

Messages are grouped by pattern: GUIDs, hex numbers (``0x1f``, and runs of 8+ hex digits with a digit in
them) and decimal numbers are folded to ``<guid>``, ``<hex>`` and ``<n>`` (:func:`fold_message`); the
suggested ``--message`` regex matches every message of the pattern (:func:`message_regex`).
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import math
import os
import re
import shlex
import shutil
import sys
import tempfile
import time
import warnings
from collections import Counter
from typing import Any, ClassVar, Dict, List, Mapping, Optional, Sequence, Tuple, Type

import attr

from pydbgauto.errors import ConfigurationError, NoSuchProcessError
from pydbgauto.models import StopEvent, _Model

__all__ = [
    "COST_WARNING",
    "SurveyCostWarning",
    "SurveyCount",
    "SurveyResult",
    "SurveyRow",
    "fold_message",
    "message_regex",
    "register",
    "summarise",
    "survey",
]

COST_WARNING = (
    "a survey stops the process at every exception it throws (all threads, about 0.1 s each while SOS "
    "reads the exception and its stack; see docs/linux.md, 'What it costs'): a process that throws more "
    "than a few exceptions a second runs that much slower while it is surveyed"
)
MESSAGE_CHARS = 200  # a longer message is cut (with "...") in the pattern shown; the regex keeps all

_GUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_HEX_PREFIXED = r"0[xX][0-9a-fA-F]+"
_HEX_RUN = r"(?=[0-9a-fA-F]*[0-9])[0-9a-fA-F]{8,}"
_NUMBER = r"[0-9]+(?:\.[0-9]+)?"
_TOKEN = re.compile(
    rf"(?P<guid>\b{_GUID}\b)"
    rf"|(?P<hex>\b{_HEX_PREFIXED}\b|\b{_HEX_RUN}\b)"
    rf"|(?P<n>(?<![A-Za-z_0-9]){_NUMBER}(?![A-Za-z_0-9]))"
)
_PLACEHOLDER_REGEX = {"guid": _GUID, "hex": rf"(?:{_HEX_PREFIXED}|[0-9a-fA-F]{{8,}})", "n": _NUMBER}


_SPECIAL = re.compile(r"([.^$*+?{}\[\]\\|()])")


def _escape(text: str) -> str:
    """``re.escape`` for readable command lines: only the characters special in a regex."""
    return _SPECIAL.sub(r"\\\1", text)


class SurveyCostWarning(UserWarning):
    """Issued by :func:`survey` before it starts: every exception stops the surveyed process."""


def _tokens(message: str) -> List[Tuple[str, str]]:
    """``message`` as (kind, text) pieces: kind "" for literal text, else "guid", "hex" or "n"."""
    out: List[Tuple[str, str]] = []
    at = 0
    for m in _TOKEN.finditer(message):
        if m.start() > at:
            out.append(("", message[at : m.start()]))
        kind = m.lastgroup or "n"
        out.append((kind, m.group()))
        at = m.end()
    if at < len(message):
        out.append(("", message[at:]))
    return out


def fold_message(message: Optional[str]) -> Optional[str]:
    """``message`` with GUIDs, hex numbers and decimal numbers replaced by ``<guid>``, ``<hex>``, ``<n>``.

    ``"Order 42 was rejected"`` -> ``"Order <n> was rejected"``; digits inside words (``Int32``, ``utf8``)
    stay. None (no message) stays None.
    """
    if message is None:
        return None
    return "".join(text if kind == "" else f"<{kind}>" for kind, text in _tokens(message))


def message_regex(message: Optional[str]) -> Optional[str]:
    """An anchored regex (for ``--message``) matching ``message`` and every message of its pattern."""
    if message is None:
        return None
    parts = [_escape(text) if kind == "" else _PLACEHOLDER_REGEX[kind] for kind, text in _tokens(message)]
    return "^" + "".join(parts) + "$"


# ---------------------------------------------------------------------------------------------
# the result


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
        return summary_text(self)

    def _repr_html_(self) -> str:
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
        args += ["--thrown-in", "^" + _escape(site) + "$"]
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


# ---------------------------------------------------------------------------------------------
# text and HTML


def _cut(text: Optional[str], width: int) -> str:
    value = " ".join(("<no message>" if text is None else text).split())
    return value if len(value) <= width else value[: width - 3] + "..."


def summary_head(result: SurveyResult) -> str:
    if result.pid is not None:
        who = f"pid {result.pid}"
    elif len(result.by_pid) > 1:
        who = f"{len(result.by_pid)} processes"
    else:
        who = "the process"
    if result.process:
        who += f" ({result.process})"
    text = (
        f"{who}: {result.total} exception{'' if result.total == 1 else 's'} in {result.seconds:.1f} s "
        f"({result.rate:.2f}/s), {len(result.rows)} kind{'' if len(result.rows) == 1 else 's'}; "
        f"ended: {result.ended}"
    )
    if result.ended == "exit":
        text += f" (status {result.exit_status})"
    if result.unread:
        text += f"; {result.unread} could not be read by SOS"
    return text


def summary_text(result: SurveyResult, top: int = 20) -> str:
    """The survey as text: the head line, the rows, the breakdowns, and a watch command per row."""
    lines = [summary_head(result)]
    rows = result.rows[:top]
    if rows:
        lines.append(
            f"{'#':>3} {'count':>7} {'rate/s':>8}  {'type':<40} {'threads':>7}  message pattern / thrown in"
        )
        for row in rows:
            lines.append(
                f"{row.n:>3} {row.count:>7} {row.rate:>8.2f}  {_cut(row.type or '?', 40):<40} "
                f"{len(row.threads):>7}  {_cut(row.pattern, 70)}"
            )
            lines.append(f"{'':>3} {'':>7} {'':>8}  {'':<40} {'':>7}  in {_cut(row.site or '?', 70)}")
        if len(result.rows) > top:
            lines.append(f"    ... {len(result.rows) - top} more rows (--json has them all)")
        breakdowns = [("by type", result.by_type), ("by thread", result.by_thread)]
        if len(result.by_pid) > 1:
            breakdowns.append(("by process", result.by_pid))
        for title, counts in breakdowns:
            lines.append(f"{title}:")
            lines += [f"  {c}" for c in counts[:top]]
        lines.append("to dump the exceptions of a row:")
        lines += [f"  {row.n}: {result.watch_command(row.n)}" for row in rows]
    return "\n".join(lines)


def _chart_png(result: SurveyResult, top: int) -> Optional[str]:
    """A horizontal bar chart of the top rows as a base64 PNG, or None without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib.figure import Figure
    except Exception:  # absent, or broken: the table alone
        return None
    rows = list(result.rows[:top])
    if not rows:
        return None
    figure = Figure(figsize=(7, 0.35 * len(rows) + 0.8), dpi=90)
    axes = figure.add_subplot(1, 1, 1)
    labels = [f"#{r.n} {_cut((r.type or '?').rsplit('.', 1)[-1], 30)}" for r in rows]
    axes.barh(range(len(rows)), [r.rate for r in rows], color="#c0392b")
    axes.set_yticks(range(len(rows)))
    axes.set_yticklabels(labels, fontsize=8)
    axes.invert_yaxis()
    axes.set_xlabel("exceptions per second")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def survey_html(result: SurveyResult, top: int = 30) -> str:
    """The survey as HTML: a chart (with matplotlib), then the rows as a table with a bar per row and the
    watch command of each row; every value escaped."""
    from pydbgauto.display import _e, _root, _table

    parts = [f'<div class="pdg-head pdg-label">{_e(summary_head(result))}</div>']
    png = _chart_png(result, top)
    if png is not None:
        parts.append(
            f'<img class="pdg-chart" alt="exceptions per second, per row" src="data:image/png;base64,{png}"/>'
        )
    most = max((r.count for r in result.rows), default=0) or 1
    cells = []
    for row in result.rows[:top]:
        width = max(1, round(100 * row.count / most))
        bar = f'<div style="background:#c0392b;height:.7em;width:{width}px"></div>'
        threads = ", ".join(f"{t.key} ({t.count})" for t in row.threads[:5])
        cells.append(
            f"<tr><td>{row.n}</td><td>{row.count}</td><td>{row.rate:.2f}</td><td>{bar}</td>"
            f'<td class="pdg-mono">{_e(row.type or "?")}</td><td>{_e(_cut(row.pattern, 120))}</td>'
            f'<td class="pdg-mono">{_e(row.site or "?")}</td><td>{_e(threads)}</td>'
            f'<td class="pdg-mono">{_e(result.watch_command(row.n))}</td></tr>'
        )
    if cells:
        parts.append(
            _table(
                ("#", "count", "per s", "", "type", "message pattern", "thrown in", "threads", "watch it"),
                cells,
                "pdg-survey",
            )
        )
    else:
        parts.append('<div class="pdg-none">no exception was thrown while the survey watched</div>')
    parts.append(f'<div class="pdg-none">{_e(COST_WARNING)}</div>')
    return _root("survey", "".join(parts))


# ---------------------------------------------------------------------------------------------
# running one


def _never(exc: Any) -> bool:
    """The survey's predicate: nothing is dumped; every stop comes back to Python with pe and clrstack."""
    return False


_never.__name__ = "survey_nothing_dumped"


def check_seconds(seconds: Any) -> float:
    if (
        not isinstance(seconds, (int, float))
        or isinstance(seconds, bool)
        or not math.isfinite(seconds)
        or seconds <= 0
    ):
        raise ConfigurationError(f"a survey needs seconds > 0 (how long to watch), not {seconds!r}")
    return float(seconds)


def survey(
    pid: Optional[int] = None,
    *,
    name: Optional[str] = None,
    seconds: float,
    debugger: Optional[str] = None,
    log_path: Optional[str] = None,
    on_event: Optional[Any] = None,
    session_options: Optional[Mapping[str, Any]] = None,
    live: Optional[bool] = None,
) -> SurveyResult:
    """Watch every exception of a process (``pid``, or every process called ``name``: one debugger each, as
    :func:`pydbgauto.watch_all`) for ``seconds`` without dumping, and summarise them. Issues
    :class:`SurveyCostWarning` first (every exception stops the process). ``log_path``: keep the decision
    log there (default: a temporary one, removed). ``on_event``, ``live``: as :func:`pydbgauto.watch`."""
    from pydbgauto import processes
    from pydbgauto.watching import watch

    if (pid is None) == (name is None):
        raise ConfigurationError("survey takes exactly one of pid= or name=")
    if pid is not None and (not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0):
        raise ConfigurationError(f"pid must be a positive integer, not {pid!r}")
    seconds = check_seconds(seconds)
    if log_path is not None:
        log_path = os.path.abspath(log_path)
        if not os.path.isdir(os.path.dirname(log_path)):
            raise ConfigurationError(f"the folder of log_path {log_path} does not exist")
    target: Tuple[str, ...] = ("--pid", str(pid)) if pid is not None else ("--name", str(name))
    pids: List[int] = []
    if name is not None:
        pids = processes.find_pids(name)
        if not pids:
            raise NoSuchProcessError(f"no process called {name!r} is running")
        pid = pids[0] if len(pids) == 1 else None
    elif os.path.isdir("/proc") and not os.path.isdir(f"/proc/{pid}"):
        raise NoSuchProcessError(f"no process with pid {pid} is running")
    warnings.warn(COST_WARNING, SurveyCostWarning, stacklevel=2)
    armed: List[float] = []

    def collect(kind: str, data: Mapping[str, Any]) -> None:
        if kind == "armed":
            armed.append(time.time())
        if on_event is not None:
            on_event(kind, data)

    if len(pids) > 1:
        return _survey_all(str(name), seconds, debugger, log_path, collect, armed, session_options, live)
    folder = tempfile.mkdtemp(prefix="pydbgauto-survey-")
    try:
        result = watch(
            pid=pid,
            when=_never,
            dump_dir=folder,
            max_dumps=None,
            timeout=seconds,
            dedupe=False,
            min_free_disk=0,
            verify=False,
            debugger=debugger,
            in_debugger_filter=False,
            log_path=log_path or os.path.join(folder, "survey-decisions.jsonl"),
            on_event=collect,
            session_options=session_options,
            live=live,
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    started = armed[0] if armed else time.time() - result.elapsed
    watched = max(min(seconds, time.time() - started), 1e-6)  # from armed to the end
    from pydbgauto.watching import _process_name

    return summarise(
        [event for event, _ in result.decisions],
        watched,
        pid=pid,
        process=name or _process_name(pid or 0),
        target=target,
        ended=result.ended,
        exit_status=result.exit_status,
        started=started,
    )


def _survey_all(
    name: str,
    seconds: float,
    debugger: Optional[str],
    log_path: Optional[str],
    collect: Any,
    armed: List[float],
    session_options: Optional[Mapping[str, Any]],
    live: Optional[bool],
) -> SurveyResult:
    """Every process called ``name``, each with its own debugger; one summary over all of them."""
    from pydbgauto.multi import watch_all

    folder = tempfile.mkdtemp(prefix="pydbgauto-survey-")
    try:
        result = watch_all(
            name,
            when=_never,
            dump_dir=folder,
            max_dumps=None,
            timeout=seconds,
            dedupe=False,
            min_free_disk=0,
            verify=False,
            debugger=debugger,
            in_debugger_filter=False,
            log_path=log_path or os.path.join(folder, "survey-decisions.jsonl"),
            on_event=collect,
            session_options=session_options,
            live=live,
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    if not result.results:
        raise NoSuchProcessError(
            f"no process called {name!r} could be surveyed: " + "; ".join(w for _, w in result.errors)
        )
    started = min(armed) if armed else time.time() - result.elapsed
    watched = max(min(seconds, time.time() - started), 1e-6)
    events = [event for _, one in result.results for event, _ in one.decisions]
    return summarise(
        sorted(events, key=lambda e: e.time),
        watched,
        process=name,
        target=("--name", name),
        ended=result.ended,
        started=started,
    )


# ---------------------------------------------------------------------------------------------
# the command


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``survey`` to the ``pydbgauto`` command's subparsers."""
    p = subparsers.add_parser(
        "survey",
        help="watch every exception of a process for a while, dump nothing, and summarise them",
        description="Watch every exception a .NET process throws for --seconds, without dumping, and "
        "summarise them by type, message pattern (numbers, hex and GUIDs folded), throw site and thread, "
        "with counts and rates, and the `pydbgauto watch` command line for each row. Every exception "
        "stops the process (about 0.1 s each). Exit codes: 0 exceptions seen, 1 none seen, 2 bad input, "
        "3 the target cannot be debugged, 4 the debugger or SOS is missing or failed, 130 interrupted.",
    )
    target = p.add_mutually_exclusive_group(required=True)
    target.add_argument("--pid", type=_positive_int, help="the process id")
    target.add_argument("--name", help="the process name (every process of that name, one debugger each)")
    p.add_argument("--seconds", type=_positive_float, required=True, help="how long to watch")
    p.add_argument("--top", type=_positive_int, default=20, help="rows to print (default 20; --json: all)")
    p.add_argument("--debugger", choices=["lldb", "cdb"], help="default: lldb on Linux, cdb on Windows")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    p.set_defaults(run=run)
    return p


def _positive_int(text: str) -> int:
    try:
        value = int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive integer") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive integer")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r}: give a positive number of seconds")
    return value


def _print_armed(kind: str, data: Mapping[str, Any], seconds: float) -> None:
    if kind == "armed":
        print(f"pydbgauto survey: watching pid {data['pid']} for {seconds:g} s", file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    """The ``survey`` subcommand; errors go up to ``cli.main``, which maps them to exit codes."""
    from pydbgauto import processes

    pid = args.pid
    if args.name is not None:
        if not args.name.strip() or "/" in args.name:
            raise ConfigurationError(f"--name takes a process name such as ThrowingApp, not {args.name!r}")
        if not processes.find_pids(args.name):  # refused before the warning and any debugger
            raise NoSuchProcessError(f"no process called {args.name!r} is running")
    elif os.path.isdir("/proc") and not os.path.isdir(f"/proc/{pid}"):
        raise NoSuchProcessError(f"no process with pid {pid} is running")
    print(f"pydbgauto survey: {COST_WARNING}", file=sys.stderr, flush=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SurveyCostWarning)
        result = survey(
            pid,
            name=args.name,
            seconds=args.seconds,
            debugger=args.debugger,
            live=False,
            on_event=lambda kind, data: _print_armed(kind, data, args.seconds),
        )
    if args.json:
        print(
            json.dumps(
                dict(result.to_dict(), watch_commands={r.n: result.watch_command(r.n) for r in result.rows})
            )
        )
    else:
        print(summary_text(result, args.top))
    return 0 if result.total else 1
