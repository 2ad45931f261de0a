"""Memory over a long watch: lldb's and Python's resident size while a storm of exceptions is watched.

The predicate sees every exception and never matches: a regex whose literal ("storm") every storm message
has, decided in lldb's agent at every stop (a type predicate, or a message whose literal is in no storm
message, would be ruled out inside the target: the watch would not be told of the rest at all). RSS is
sampled every second (the count at a sample is estimated from the watch's mean rate); the growth is the
slope of a line through the samples after start-up (for Python, after the first 1.5 x KEEP_DECISIONS: a
watch keeps its last 1000 decisions by design), and the figure for a million exceptions is that slope
extrapolated, beside the number really watched.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
from typing import List, Tuple

import pydbgauto as pda
from pydbgauto.watching import watch
from pydbgauto.watching.capture import KEEP_DECISIONS
from tests.bench.common import APPS, report, rss_kb

NEVER_SAID = "^storm(?!$)"  # the storm says "storm": the literal is there, the regex never matches
SETTLE = 3.0  # seconds of start-up left out of the slope


def _lldb_pids() -> List[int]:
    """lldb processes of this Python (the driver tags their environment with our pid)."""
    tag = f"PYDBGAUTO_OWNER_PID={os.getpid()}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/comm") as f:
                if not f.read().startswith("lldb"):
                    continue
            with open(f"/proc/{entry}/environ", "rb") as f:
                if tag in f.read().split(b"\0"):
                    found.append(int(entry))
        except OSError:
            continue
    return found


def _slope(points: List[Tuple[float, float]]) -> float:
    """Least-squares slope of y over x (0 for fewer than two distinct x)."""
    if len(points) < 2:
        return 0.0
    mx = sum(x for x, _ in points) / len(points)
    my = sum(y for _, y in points) / len(points)
    sxx = sum((x - mx) ** 2 for x, _ in points)
    return sum((x - mx) * (y - my) for x, y in points) / sxx if sxx else 0.0


def bench_memory(rt: str, folder: str, seconds: float) -> None:
    argv = [APPS[rt], "storm", "1000000", str(seconds)]
    out_dir = tempfile.mkdtemp(dir=folder)
    samples: List[Tuple[float, int, int]] = []  # (time, lldb KiB incl. lldb-server, python KiB)
    done = threading.Event()

    def sample() -> None:
        while not done.wait(1.0):
            pids = _lldb_pids()
            samples.append((time.monotonic(), sum(rss_kb(p) for p in pids), rss_kb(os.getpid())))

    python_before = rss_kb(os.getpid())
    sampler = threading.Thread(target=sample, daemon=True)
    started = time.monotonic()
    sampler.start()
    try:
        result = watch(
            launch=argv,
            when=pda.message_matches(NEVER_SAID),
            dump_dir=out_dir,
            max_dumps=1,
            timeout=seconds * 20 + 60,
            verify=False,
            session_options={"output_dir": out_dir},
        )
    finally:
        done.set()
        sampler.join()
    elapsed = time.monotonic() - started
    python_after = rss_kb(os.getpid())
    watched = result.events_seen
    rate = watched / elapsed if elapsed else 0.0
    # lldb loads SOS and the DAC in the first seconds, and lets go at the end: the slope is of the middle
    steady = [(t, kb) for t, kb, _ in samples if kb and t - started >= SETTLE][:-1]
    lldb_points = [(rate * (t - started), float(kb)) for t, kb in steady]
    if len(lldb_points) < 2 or not watched:
        report(
            f"memory: exceptions watched [{rt}]", watched, "exc", "storm seconds", seconds, "too few samples"
        )
        return
    lldb_first, lldb_peak = lldb_points[0][1], max(kb for _, kb in lldb_points)
    per_k = _slope(lldb_points) * 1000
    note = f"{watched:,} watched in {elapsed:.0f} s; x1M = slope extrapolated"
    report(
        f"memory: lldb RSS first/peak [{rt}]",
        lldb_peak / 1024,
        "MiB",
        "lldb RSS at the first sample",
        lldb_first / 1024,
        note,
    )
    report(
        f"memory: lldb RSS per 1M exceptions [{rt}]",
        per_k * 1000 / 1024,
        "MiB",
        "lldb RSS at the first sample",
        lldb_first / 1024,
        f"slope {per_k:.2f} KiB per 1000 exceptions",
    )
    # Python keeps the last KEEP_DECISIONS (event, decision) pairs by design: its slope starts after them
    python_points = [
        (rate * (t - started), float(py))
        for t, kb, py in samples
        if t - started >= SETTLE and rate * (t - started) > 1.5 * KEEP_DECISIONS
    ][:-1]
    python_note = f"after {python_after / 1024:.0f} MiB; slope past the first {int(1.5 * KEEP_DECISIONS)}"
    python_per_m = _slope(python_points) * 1e6 / 1024 if len(python_points) >= 2 else float("nan")
    report(
        f"memory: Python RSS per 1M exceptions [{rt}]",
        python_per_m,
        "MiB",
        "Python RSS before the watch",
        python_before / 1024,
        python_note if len(python_points) >= 2 else "too few exceptions for a slope",
    )


def bench_memory_count(rt: str, folder: str, count: int, every: float = 10.0) -> None:
    """RSS over ``count`` exceptions really watched (each decided in lldb's agent: a message predicate
    that never matches), counted exactly from the watch's decisions; sampled every ``every`` seconds
    (each sample also printed as a JSON line, so a long run can be followed). Reported: the RSS after
    the first 5 % of the run beside the RSS at the end, and the slope over the rest."""
    argv = [APPS[rt], "storm", "1000000", str(48 * 3600)]
    out_dir = tempfile.mkdtemp(dir=folder)
    seen = [0]
    enough = threading.Event()
    samples: List[Tuple[float, int, int, int]] = []  # (time, exceptions, lldb KiB, python KiB)

    def on_event(kind: str, data: object) -> None:
        if kind == "decision":
            seen[0] += 1
            if seen[0] >= count:
                enough.set()

    def sample() -> None:
        while not enough.wait(every):
            row = (time.monotonic(), seen[0], sum(rss_kb(p) for p in _lldb_pids()), rss_kb(os.getpid()))
            samples.append(row)
            print(
                json.dumps(
                    {
                        "rt": rt,
                        "t": round(row[0] - started, 1),
                        "n": row[1],
                        "lldb_kib": row[2],
                        "python_kib": row[3],
                    }
                ),
                flush=True,
            )

    started = time.monotonic()
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        result = watch(
            launch=argv,
            when=pda.message_matches(NEVER_SAID),
            dump_dir=out_dir,
            max_dumps=1,
            verify=False,
            stop=enough,
            on_event=on_event,
            handle_signals=False,
            session_options={"output_dir": out_dir},
        )
    finally:
        enough.set()
        sampler.join()
    target = next((e.pid for e, _ in reversed(result.decisions) if e.pid), None)
    if target:
        try:
            os.kill(target, 9)  # the launched storm runs on after the detach
        except OSError:
            pass
    elapsed = time.monotonic() - started
    steady = [s for s in samples if s[1] >= count * 0.05]
    if len(steady) < 2:
        report(f"memory: exceptions watched [{rt}]", seen[0], "exc", "asked for", count, "too few samples")
        return
    first, last = steady[0], steady[-1]
    note = f"{seen[0]:,} really watched in {elapsed:.0f} s ({seen[0] / elapsed:.0f}/s); from {first[1]:,} on"
    report(
        f"memory, {count:,} watched: lldb RSS at the end [{rt}]",
        last[2] / 1024,
        "MiB",
        f"lldb RSS at {first[1]:,}",
        first[2] / 1024,
        note,
    )
    report(
        f"memory, {count:,} watched: Python RSS at the end [{rt}]",
        last[3] / 1024,
        "MiB",
        f"Python RSS at {first[1]:,}",
        first[3] / 1024,
        note,
    )
    lldb_slope = _slope([(float(n), float(kb)) for _, n, kb, _ in steady]) * 1e6 / 1024
    python_slope = _slope([(float(n), float(py)) for _, n, _, py in steady]) * 1e6 / 1024
    report(
        f"memory, {count:,} watched: lldb growth per 1M [{rt}]",
        lldb_slope,
        "MiB",
        "lldb RSS at the start of the slope",
        first[2] / 1024,
        f"least squares over {len(steady)} samples",
    )
    report(
        f"memory, {count:,} watched: Python growth per 1M [{rt}]",
        python_slope,
        "MiB",
        "Python RSS at the start of the slope",
        first[3] / 1024,
        f"least squares over {len(steady)} samples",
    )
