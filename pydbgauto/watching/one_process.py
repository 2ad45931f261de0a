"""``watch()``: one process from its input to its result: check everything, start the debugger, run the
:class:`~pydbgauto.watching.loop.WatchLoop` under the signal guard, and raise :class:`Interrupted` after
a signal."""

from __future__ import annotations

import os
import signal
import threading
import time
from typing import Any, Mapping, Optional, Sequence, Tuple

from pydbgauto import processes
from pydbgauto.errors import ConfigurationError, Interrupted
from pydbgauto.policy import GIB
from pydbgauto.session import Session
from pydbgauto.watching.checks import check_disk_for, prepare
from pydbgauto.watching.decision_log import open_private_log
from pydbgauto.watching.loop import WatchLoop
from pydbgauto.watching.result import EventCallback, WatchResult
from pydbgauto.watching.signals import SignalGuard


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
    ``stop``: set it (from another thread) to end the watch between events (``ended == "stopped"``): the
    wait is broken into then (a driver that cannot break in waits in slices of ``poll_interval`` seconds,
    each broken into). The target is stopped only at its own stops: with the predicate decided in the
    debugger, the stops it resumed are logged at the first of them past each ``poll_interval``.
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
    guard = SignalGuard(handle_signals)
    started = time.monotonic()
    with guard, os.fdopen(log_fd, "a", encoding="utf-8") as log_file:
        try:
            session, process = _start(pid, name, launch, wait, timeout, debugger, session_options)
        except KeyboardInterrupt as e:
            guard.defer()
            signum = getattr(e, "signum", None) or guard.signum or signal.SIGINT
            result = WatchResult((), (), "interrupted", log_path, time.monotonic() - started, signal=signum)
            if on_event is not None:
                on_event("done", {"result": result})
            raise Interrupted(signum, result) from None
        loop = WatchLoop(
            session,
            predicate,
            policy,
            process,
            log_path,
            on_event,
            in_debugger_filter,
            stop,
            poll_interval,
            guard=guard,
        )
        result = loop.run(timeout, log_file)
    if result.signal is not None:
        raise Interrupted(result.signal, result)
    return result


def _start(
    pid: Optional[int],
    name: Optional[str],
    launch: Optional[Sequence[str]],
    wait: bool,
    timeout: Optional[float],
    debugger: Optional[str],
    session_options: Optional[Mapping[str, Any]],
) -> Tuple[Session, str]:
    """The session on the target, and the process name its dumps are named after."""
    options = dict(session_options or {})
    if launch is not None:
        named = processes.hosted_app([str(a) for a in launch]) or os.path.basename(str(launch[0]))
        return Session.launch(list(launch), debugger=debugger, **options), named
    if pid is not None:
        return Session.attach(pid=pid, debugger=debugger, **options), processes.name_of(pid)
    options.setdefault("wait_timeout", timeout)  # waiting for the name counts against the watch's time
    return Session.attach(name=name, wait=wait, debugger=debugger, **options), str(name)
