"""Find Linux processes by name, the way users name their services."""

from __future__ import annotations

import os
import time
from typing import List, Optional

from pydbgauto.errors import ConfigurationError, NoSuchProcessError


def _names_of(pid: int) -> List[str]:
    """The names a user may call a process by: its comm, argv[0]'s base name, and for
    ``dotnet App.dll`` the app's name."""
    names = []
    try:
        with open(f"/proc/{pid}/comm", encoding="utf-8", errors="replace") as f:
            names.append(f.read().strip())
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = [a.decode("utf-8", "replace") for a in f.read().split(b"\0") if a]
    except OSError:
        return names
    if argv:
        names.append(os.path.basename(argv[0]))
        if os.path.basename(argv[0]) == "dotnet" and len(argv) > 1 and argv[1].endswith(".dll"):
            names.append(os.path.basename(argv[1])[: -len(".dll")])
    return names


def find_pids(name: str) -> List[int]:
    """Pids whose process answers to ``name`` (with or without a .exe/.dll suffix), excluding ourselves."""
    if not name or "/" in name or "\0" in name:
        raise ConfigurationError(
            f"{name!r} is not a process name: give the program's name, e.g. 'ThrowingApp'"
        )
    wanted = {name, name.rsplit(".", 1)[0] if name.endswith((".exe", ".dll")) else name}
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid():
            pid = int(entry)
            names = _names_of(pid)
            # comm is cut to 15 characters by the kernel
            if wanted & set(names) or any(len(n) == 15 and name.startswith(n) for n in names[:1]):
                found.append(pid)
    return sorted(found)


def find_one(name: str, *, wait: bool = False, timeout: Optional[float] = None, poll: float = 0.2) -> int:
    """The one process called ``name``; with ``wait`` poll until it starts (or ``timeout`` passes)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        pids = find_pids(name)
        if len(pids) == 1:
            return pids[0]
        if len(pids) > 1:
            raise ConfigurationError(
                f"{len(pids)} processes are called {name!r} (pids {', '.join(map(str, pids))}): "
                "attach by pid instead"
            )
        if not wait:
            raise NoSuchProcessError(f"no process called {name!r} is running (use wait=True to wait for it)")
        if deadline is not None and time.monotonic() > deadline:
            raise NoSuchProcessError(f"no process called {name!r} started within {timeout} s")
        time.sleep(poll)
