"""Reading the log of the cdb replay TEST DOUBLE (tests/doubles/cdb_replay_double.py), for its tests."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Dict, List


class DoubleLog:
    """What the double saw: one JSON object per line in ``log_path`` (argv, pid, each input line)."""

    log_path: Path

    def log(self) -> List[Dict[str, Any]]:
        if not self.log_path.exists():
            return []
        return [json.loads(line) for line in self.log_path.read_text().splitlines()]

    def sent(self) -> List[str]:
        """Lines the live session sent (not those of a 'cdb -z' that reopened a dump)."""
        return [e["in"] for e in self.log() if "in" in e]

    def argvs(self) -> List[List[str]]:
        return [e["argv"] for e in self.log() if "argv" in e]

    def double_pid(self) -> int:
        return [e["pid"] for e in self.log() if "pid" in e][0]


def process_gone(pid: int, within: float = 5.0) -> bool:
    """True once ``pid`` has ended (reaped if it is our child) within ``within`` seconds."""
    end = time.monotonic() + within
    while time.monotonic() < end:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
        time.sleep(0.05)
    return False
