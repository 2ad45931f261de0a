#!/usr/bin/python3
"""The in-target type filter's figure (issue 10 item 1): a storm of non-matching exceptions, watched with a
type predicate, against the same storm unwatched; cold (launched under the watch) and warm (attached after
~1 s of storm). For scripts/bench: ``bench_type_filter(rt)`` returns rows (name, value, unit, baseline name,
baseline value, note) for its ``report``; run alone it prints them.

    scripts/bench_fast_filter.py [net8|net10 ...] [--seconds S]

Rates are given per wall-clock second and per CPU-second of the storm's thread (utime + stime of the main
thread from /proc): on a shared machine the wall rate of one binary moves 2-3x between runs, the CPU rate
by a few per cent. Timings are only reported, never asserted.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from typing import Any, Dict, List, Optional, Tuple

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import pydbgauto as pda  # noqa: E402
from pydbgauto.session import Session  # noqa: E402

APPS = {rt: os.path.join(ROOT, ".build", f"app-{rt}", "ThrowingApp") for rt in ("net8", "net10")}
NEVER = pda.exception_type("System.DivideByZeroException")  # the storm throws KeyNotFoundException
Row = Tuple[str, float, str, str, float, str]


def _cpu(pid: int) -> Optional[float]:
    """CPU seconds of the process's main thread (the storm runs on it)."""
    try:
        with open(f"/proc/{pid}/task/{pid}/stat") as f:
            raw = f.read()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CpuWatch(threading.Thread):
    """Samples a thread's CPU time until it is gone; ``last`` is the last sample."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.last, self.done = pid, 0.0, False

    def run(self) -> None:
        while not self.done:
            value = _cpu(self.pid)
            if value is None:
                return
            self.last = value
            time.sleep(0.01)


def _storm_line(text: str) -> Tuple[int, float]:
    m = re.search(r"STORM thrown=(\d+) seconds=([\d.]+)", text)
    if not m:
        raise RuntimeError(f"no STORM line in {text[-300:]!r}")
    return int(m.group(1)), float(m.group(2))


def unwatched(rt: str, seconds: float) -> Tuple[float, float]:
    """(throws per wall second, per CPU second) of the storm with no debugger."""
    proc = subprocess.Popen([APPS[rt], "storm", "100000000", str(seconds)], stdout=subprocess.PIPE, text=True)
    watch = CpuWatch(proc.pid)
    watch.start()
    out, _ = proc.communicate(timeout=seconds * 10 + 60)
    watch.done = True
    watch.join()
    thrown, wall = _storm_line(out)
    return thrown / wall, thrown / watch.last


def cold(rt: str, seconds: float, folder: str) -> Tuple[float, float, Dict[str, Any]]:
    """The storm launched under a session armed with a never-matching type predicate."""
    stats: Dict[str, Any] = {}
    with Session.launch([APPS[rt], "storm", "100000000", str(seconds)], output_dir=folder) as s:
        s.break_on_clr_exceptions()
        s.set_filter(NEVER)
        assert s.pid is not None
        watch = CpuWatch(s.pid)
        watch.start()
        event = s.wait_for_event(seconds * 20 + 60, parse=False)
        watch.done = True
        stats = s.driver.stats()  # type: ignore[attr-defined]
        assert event.kind == "exit", event
    with open(os.path.join(folder, "target.stdout")) as f:
        thrown, wall = _storm_line(f.read())
    return thrown / wall, thrown / watch.last, stats


def warm(rt: str, seconds: float) -> Tuple[float, float, Dict[str, Any]]:
    """Attach to a storm running for 1 s (warm), watch for ``seconds``, break in: the stub's count of the
    throws in the window over the window's wall and CPU time."""
    proc = subprocess.Popen(
        [APPS[rt], "storm", "100000000", str(seconds + 4)], stdout=subprocess.PIPE, text=True
    )
    try:
        time.sleep(1.0)
        with Session.attach(pid=proc.pid) as s:
            s.break_on_clr_exceptions()
            s.set_filter(NEVER)
            first = s.driver.stats()["inline_filter"].get("seen", 0)  # type: ignore[attr-defined]
            cpu0, t0 = _cpu(proc.pid) or 0.0, time.monotonic()
            timer = threading.Timer(seconds, s.break_in)
            timer.start()
            event = s.wait_for_event(seconds * 20 + 60, parse=False)
            t1, cpu1 = time.monotonic(), _cpu(proc.pid) or 0.0
            timer.join()
            stats = s.driver.stats()  # type: ignore[attr-defined]
            assert event.kind == "break", event
        seen = stats["inline_filter"].get("seen", 0) - first
        return seen / (t1 - t0), seen / max(cpu1 - cpu0, 1e-9), stats
    finally:
        proc.kill()
        proc.wait()


def bench_type_filter(rt: str, seconds: float = 3.0) -> List[Row]:
    import tempfile

    rows: List[Row] = []
    base_wall, base_cpu = unwatched(rt, seconds)
    with tempfile.TemporaryDirectory(prefix="pydbgauto-bench-ff-") as folder:
        wall, cpu, stats = cold(rt, seconds, folder)
    note = f"{stats.get('filter_traps')} filter stops, {stats.get('stops')} stops in all"
    rows.append(
        (f"type filter, cold, wall [{rt}]", wall, "exc/s", "same storm, no debugger", base_wall, note)
    )
    rows.append(
        (f"type filter, cold, CPU [{rt}]", cpu, "exc/cpu-s", "same storm, no debugger", base_cpu, note)
    )
    wall, cpu, stats = warm(rt, seconds)
    seen = stats["inline_filter"].get("seen")
    note = f"{stats.get('filter_traps')} filter stops; {seen} throws seen by the stub"
    rows.append(
        (f"type filter, warm, wall [{rt}]", wall, "exc/s", "same storm, no debugger", base_wall, note)
    )
    rows.append(
        (f"type filter, warm, CPU [{rt}]", cpu, "exc/cpu-s", "same storm, no debugger", base_cpu, note)
    )
    return rows


def main() -> int:
    args = sys.argv[1:]
    seconds = 3.0
    if "--seconds" in args:
        i = args.index("--seconds")
        seconds = float(args[i + 1])
        del args[i : i + 2]
    for rt in args or ["net8", "net10"]:
        for name, value, unit, baseline_name, baseline, note in bench_type_filter(rt, seconds):
            ratio = value / baseline if baseline else float("nan")
            figure = f"{name:<34} {value:>12.1f} {unit:<9}"
            print(f"{figure} | {baseline_name:<26} {baseline:>12.1f} | x{ratio:.3f}  {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
