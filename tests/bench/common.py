"""What every figure of scripts/bench shares: the sample apps, the rows, one printed line per figure."""

from __future__ import annotations

import os
import subprocess
import time
from typing import Any, Dict, List

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
APPS = {rt: os.path.join(ROOT, ".build", f"app-{rt}", "ThrowingApp") for rt in ("net8", "net10")}
LLDB = "lldb-19"
rows: List[Dict[str, Any]] = []


def report(name: str, value: float, unit: str, baseline_name: str, baseline: float, note: str = "") -> None:
    """One figure beside its named baseline, measured in the same run; the ratio is value / baseline."""
    ratio = value / baseline if baseline else float("nan")
    rows.append(
        {
            "figure": name,
            "value": round(value, 4),
            "unit": unit,
            "baseline": baseline_name,
            "baseline_value": round(baseline, 4),
            "ratio": round(ratio, 3),
            "note": note,
        }
    )
    line = f"{name:<50} {value:>10.3f} {unit:<6} | {baseline_name:<36} {baseline:>10.3f} | x{ratio:>8.3g}"
    print(f"{line}  {note}", flush=True)


def header() -> None:
    print(f"{'figure':<50} {'value':>10} {'unit':<6} | {'baseline':<36} {'value':>10} | ratio", flush=True)


def bare_lldb_attach(pid: int, settings: tuple = ()) -> float:
    """Seconds for a bare ``lldb -p PID`` attach + detach, as a user runs it (``settings``: set first)."""
    argv = [LLDB, "--no-lldbinit", "--batch"]
    for setting in settings:
        argv += ["-O", f"settings set {setting}"]
    argv += ["-p", str(pid), "-o", "process detach"]
    started = time.monotonic()
    subprocess.run(argv, capture_output=True, timeout=120)
    return time.monotonic() - started


def rss_kb(pid: int) -> int:
    """Resident set size of a process in KiB (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0
