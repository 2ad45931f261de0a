"""The guardian of one lldb: ends the wait of an lldb whose pydbgauto died, so it detaches.

The lldb driver starts it beside lldb (``python3 guardian.py <lldb pid>``) and tells it on its stdin the
target's pid (``pid N``) and, when the session ends normally, ``bye``. End of input without ``bye`` means
pydbgauto died. lldb normally notices that itself at once (end of file on its pipes) and detaches, but the
agent's watchdog can miss the interrupt it sends as the target resumes; then the target runs on under lldb
for ever. The guardian then sends the target SIGSTOP once a second (only while lldb's lldb-server traces it:
lldb stops on it and suppresses it, the wait ends, lldb reads end of input, quits and detaches), sends SIGCONT
should the target be left stopped, and, if lldb is still there after ``GIVE_UP`` seconds (hung), kills lldb
and lldb-server. Standard library only; Linux /proc.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from typing import List, Optional

FIRST_LOOK = 1.0  # lldb detaches by itself within ~0.2 s; look after this long
GIVE_UP = 15.0


def _stat(pid: int) -> Optional[List[str]]:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read().decode("utf-8", "replace")
    except OSError:
        return None
    return raw[raw.rindex(")") + 2 :].split()


def _alive(pid: int) -> bool:
    fields = _stat(pid)
    return fields is not None and fields[0] not in ("Z", "X")


def _tracer(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("TracerPid:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def _children(pid: int) -> List[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat(int(entry))
            if fields is not None and fields[1] == str(pid):
                found.append(int(entry))
    return found


def _signal(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except OSError:
        pass


def guard(lldb: int, target: Optional[int]) -> None:
    """pydbgauto is gone: see that ``lldb`` lets ``target`` go, and ends."""
    servers = _children(lldb)
    deadline = time.monotonic() + GIVE_UP
    poked = False
    time.sleep(FIRST_LOOK)
    while _alive(lldb) and time.monotonic() < deadline:
        if target and _tracer(target) in servers:
            _signal(target, signal.SIGSTOP)
            poked = True
        time.sleep(1.0)
    if _alive(lldb):  # hung: nothing else will end it
        for pid in [lldb] + servers:
            _signal(pid, signal.SIGKILL)
    if target and poked:
        end = time.monotonic() + 5
        while _tracer(target) and time.monotonic() < end:
            time.sleep(0.1)
        fields = _stat(target)
        if fields is not None and fields[0] == "T" and not _tracer(target):
            _signal(target, signal.SIGCONT)


def main(argv: List[str]) -> int:
    lldb = int(argv[1])
    target: Optional[int] = None
    for line in sys.stdin:
        if line.startswith("pid "):
            target = int(line.split()[1])
        elif line.strip() == "bye":
            return 0
    guard(lldb, target)
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a terminal's Ctrl-C is for pydbgauto
    sys.exit(main(sys.argv))
