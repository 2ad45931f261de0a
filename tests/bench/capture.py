"""Throw to dump file complete as a user runs it (scripts/bench): ``watch(pid=..., when=<a type>)`` on a
running sample app, one throw of the matching type sent once the watch is armed, against the runtime's
own ``createdump --full`` of the same process (after the watch has detached), in the same run.

The figure is the throw (the command written to the app) to the dump file complete under its final name:
(the stop's time - the send's) + the capture record's ``stop_to_dump_file``. Each round is a new watch
(the first stop after an attach, the one a user waits for); medians over the rounds.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import tempfile
import threading
import time
from typing import Any, List, Mapping

import pydbgauto as pda
from pydbgauto.watching import watch
from tests.bench.common import APPS, report
from tests.integration.conftest import WaitingApp

MATCH = "System.InvalidOperationException"  # what the app's "invalid-op" command throws


def createdump_seconds(pid: int, path: str, rt: str) -> float:
    tool = os.path.join(os.path.dirname(APPS[rt]), "createdump")
    if not os.path.exists(tool):
        tool = "/usr/share/dotnet/shared/Microsoft.NETCore.App/10.0.12/createdump"
    started = time.monotonic()
    subprocess.run([tool, "--full", "-f", path, str(pid)], capture_output=True, timeout=300, check=True)
    return time.monotonic() - started


def _one_watch(app: WaitingApp, folder: str) -> Mapping[str, float]:
    sent: List[float] = []

    def on_event(kind: str, data: Mapping[str, Any]) -> None:
        if kind == "armed":  # the throw goes once the watch is armed (from another thread: it runs on)
            threading.Timer(0.3, lambda: (sent.append(time.time()), app.send("invalid-op"))).start()

    result = watch(
        pid=app.pid,
        when=pda.exception_type(MATCH),
        dump_dir=folder,
        max_dumps=1,
        timeout=60,
        verify=False,
        on_event=on_event,
        handle_signals=False,
    )
    capture = result.captures[0]
    assert capture.dump is not None and sent, capture.dump_error
    throw_to_stop = capture.event.time - sent[0]
    for name in os.listdir(folder):  # the dump and its record (this watch's own folder)
        os.unlink(os.path.join(folder, name))
    return {
        "throw_to_file": throw_to_stop + capture.timings["stop_to_dump_file"],
        "throw_to_stop": throw_to_stop,
        "write": capture.timings.get("dump_write", 0.0),
        "pause": capture.timings.get("pause", 0.0),
        "read_after": float(capture.event.matched_in_debugger),
    }


def bench_throw_to_file(rt: str, folder: str, rounds: int = 3) -> None:
    """watch() with a type predicate: throw to dump file complete, vs createdump --full of it."""
    folder = tempfile.mkdtemp(dir=folder)  # the other figures' folders are not this one's to empty
    app = WaitingApp(APPS[rt])
    ours: List[Mapping[str, float]] = []
    base: List[float] = []
    try:
        for i in range(rounds):
            ours.append(_one_watch(app, folder))
            path = os.path.join(folder, f"createdump-{rt}-{i}.core")
            base.append(createdump_seconds(app.pid, path, rt))
            os.unlink(path)
    finally:
        app.finish()
    value = statistics.median(r["throw_to_file"] for r in ours)
    stop = statistics.median(r["throw_to_stop"] for r in ours)
    note = (
        f"throw->stop {stop:.3f} s, write {statistics.median(r['write'] for r in ours):.3f} s; "
        f"rounds {[round(r['throw_to_file'], 3) for r in ours]} vs {[round(b, 3) for b in base]}; "
        f"dumped before pe/clrstack: {sum(int(r['read_after']) for r in ours)}/{len(ours)}"
    )
    report(
        f"watch: throw to dump file complete [{rt}]",
        value,
        "s",
        "createdump --full, same process",
        statistics.median(base),
        note,
    )
    report(
        f"watch: target pause per capture [{rt}]",
        statistics.median(r["pause"] for r in ours),
        "s",
        "createdump --full, same process",
        statistics.median(base),
        "stop -> resume (dump, then pe, clrstack, clrthreads at the same stop)",
    )
