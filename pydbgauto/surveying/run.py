"""Running a survey: a ``watch()`` (or, for several processes of a name, a ``watch_all()``) whose predicate
never matches and runs in Python, so that every stop comes back with its parsed ``pe`` and ``clrstack``;
its decisions are summarised (:func:`pydbgauto.surveying.summary.summarise`)."""

from __future__ import annotations

import math
import os
import shutil
import tempfile
import time
import warnings
from typing import Any, Callable, List, Mapping, Optional, Tuple

from pydbgauto.errors import ConfigurationError, NoSuchProcessError
from pydbgauto.models import StopEvent
from pydbgauto.surveying.summary import SurveyResult, summarise

COST_WARNING = (
    "a survey stops the process at every exception it throws (all threads, about 0.1 s each while SOS "
    "reads the exception and its stack; see docs/linux.md, 'What it costs'): a process that throws more "
    "than a few exceptions a second runs that much slower while it is surveyed"
)


class SurveyCostWarning(UserWarning):
    """Issued by :func:`survey` before it starts: every exception stops the surveyed process."""


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

    if (pid is None) == (name is None):
        raise ConfigurationError("survey takes exactly one of pid= or name=")
    if pid is not None and (not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0):
        raise ConfigurationError(f"pid must be a positive integer, not {pid!r}")
    seconds = check_seconds(seconds)
    if log_path is not None:
        log_path = os.path.abspath(log_path)
        if not os.path.isdir(os.path.dirname(log_path)):
            raise ConfigurationError(f"the folder of log_path {log_path} does not exist")
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

    options = dict(debugger=debugger, on_event=collect, session_options=session_options, live=live)
    if len(pids) > 1:
        return _survey_all(str(name), seconds, log_path, armed, options)
    from pydbgauto.watching import watch

    result = _unrecorded(lambda **o: watch(pid=pid, **o), seconds, log_path, options)
    events = [event for event, _ in result.decisions]
    target: Tuple[str, ...] = ("--pid", str(pid)) if name is None else ("--name", name)
    return _summary(events, seconds, armed, result.elapsed, target, result.ended, result.exit_status, pid)


def _survey_all(
    name: str, seconds: float, log_path: Optional[str], armed: List[float], options: Mapping[str, Any]
) -> SurveyResult:
    """Every process called ``name``, each with its own debugger; one summary over all of them."""
    from pydbgauto.multi import watch_all

    result = _unrecorded(lambda **o: watch_all(name, **o), seconds, log_path, options)
    if not result.results:
        raise NoSuchProcessError(
            f"no process called {name!r} could be surveyed: " + "; ".join(w for _, w in result.errors)
        )
    events = sorted((event for _, one in result.results for event, _ in one.decisions), key=lambda e: e.time)
    return _summary(events, seconds, armed, result.elapsed, ("--name", name), result.ended, None, None)


def _unrecorded(
    run: Callable[..., Any], seconds: float, log_path: Optional[str], options: Mapping[str, Any]
) -> Any:
    """``run(**watch options)`` for ``seconds`` with nothing dumped, in a temporary dump folder (removed)."""
    folder = tempfile.mkdtemp(prefix="pydbgauto-survey-")
    try:
        return run(
            when=_never,
            dump_dir=folder,
            max_dumps=None,
            timeout=seconds,
            dedupe=False,
            min_free_disk=0,
            verify=False,
            in_debugger_filter=False,
            log_path=log_path or os.path.join(folder, "survey-decisions.jsonl"),
            **options,
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _summary(
    events: List[StopEvent],
    seconds: float,
    armed: List[float],
    elapsed: float,
    target: Tuple[str, ...],
    ended: str,
    exit_status: Optional[int],
    pid: Optional[int],
) -> SurveyResult:
    """The summary over the time from the first process armed to the end."""
    from pydbgauto import processes

    started = min(armed) if armed else time.time() - elapsed
    watched = max(min(seconds, time.time() - started), 1e-6)
    return summarise(
        events,
        watched,
        pid=pid,
        process=target[1] if target[0] == "--name" else processes.name_of(pid or 0),
        target=target,
        ended=ended,
        exit_status=exit_status,
        started=started,
    )
