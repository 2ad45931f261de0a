"""What Linux's /proc says about processes: find them by the names users call them (comm, argv[0],
``dotnet App.dll``), whether a debugger can attach (gone, zombie, traced, another user's, not .NET), and
how much memory a full core of one takes."""

from __future__ import annotations

import os
import time
from typing import Dict, List, Optional

from pydbgauto import ptrace_access, single_file
from pydbgauto.errors import (
    AlreadyTracedError,
    ConfigurationError,
    NoSuchProcessError,
    NotDotnetError,
    TargetError,
)

RUNTIME_LIBRARY = "libcoreclr.so"


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
        app = hosted_app(argv)
        if app:
            names.append(app)
    return names


def hosted_app(argv: List[str]) -> Optional[str]:
    """``dotnet App.dll ...`` -> ``App``: the app a ``dotnet`` host runs (None for anything else)."""
    if len(argv) > 1 and os.path.basename(argv[0]) == "dotnet" and argv[1].endswith(".dll"):
        return os.path.basename(argv[1])[: -len(".dll")] or None
    return None


def name_of(pid: int) -> str:
    """What dumps are named after: the app of ``dotnet App.dll``, else the process's comm, else the pid
    as text where neither can be read."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            app = hosted_app([a.decode("utf-8", "replace") for a in f.read().split(b"\0") if a])
        if app:
            return app
        with open(f"/proc/{pid}/comm", encoding="utf-8", errors="replace") as f:
            return f.read().strip() or str(pid)
    except OSError:
        return str(pid)


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
                if alive(pid):  # a zombie of that name is not a process to attach to
                    found.append(pid)
    return sorted(found)


def find_one(name: str, *, wait: bool = False, timeout: Optional[float] = None, poll: float = 0.2) -> int:
    """The one process called ``name``; with ``wait`` poll until it starts (or ``timeout`` passes)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        pids = _debuggable_first(find_pids(name), name)
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


def _debuggable_first(pids: List[int], name: str) -> List[int]:
    """Without privilege only our own processes can be debugged: other users' processes of that name (a
    root service, another account's copy) do not make ours ambiguous. None of ours but some of theirs:
    refused with the cause."""
    if ptrace_access.may_debug_others() or not pids:
        return pids
    owners = {pid: uid_of(pid) for pid in pids}
    mine = [pid for pid, uid in owners.items() if uid == os.geteuid()]
    if mine:
        return mine
    theirs = ", ".join(f"pid {pid} of user id {uid}" for pid, uid in owners.items() if uid is not None)
    if not theirs:  # they all exited just now
        return []
    raise TargetError(
        f"permission denied: no process called {name!r} is yours (user id {os.geteuid()}): {theirs}; "
        "run pydbgauto as that user (or as root)"
    )


def uid_of(pid: int) -> Optional[int]:
    """The effective user id ``pid`` runs as (None when it is gone)."""
    try:
        uids = _status(pid).get("Uid", "").split()
    except OSError:
        return None
    return int(uids[1]) if len(uids) > 1 else None


# ----- can a debugger attach? (Linux /proc) -------------------------------------------------------------


def state_of(pid: int) -> Optional[str]:
    """The kernel's one-letter state of ``pid`` (R, S, D, T, t, Z, X, ...), or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read().decode("utf-8", "replace")
    except OSError:
        return None
    return raw[raw.rindex(")") + 2 :].split()[0]


def alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    return state_of(pid) not in (None, "Z", "X")


def tracer_of(pid: int) -> int:
    """The pid tracing ``pid`` (0: none, or ``pid`` is gone)."""
    try:
        return int(_status(pid).get("TracerPid", "0") or 0)
    except (OSError, ValueError):
        return 0


def _status(pid: int) -> Dict[str, str]:
    fields: Dict[str, str] = {}
    with open(f"/proc/{pid}/status", encoding="utf-8", errors="replace") as f:
        for line in f:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    return fields


def _describe_tracer(tracer: int) -> str:
    try:
        with open(f"/proc/{tracer}/comm", encoding="utf-8", errors="replace") as f:
            comm = f.read().strip()
    except OSError:
        return f"pid {tracer}"
    owner = None
    try:
        with open(f"/proc/{tracer}/environ", "rb") as f:
            for entry in f.read().split(b"\0"):
                if entry.startswith(b"PYDBGAUTO_OWNER_PID="):
                    owner = entry.split(b"=", 1)[1].decode()
    except OSError:
        pass
    if owner:
        return f"pid {tracer} ({comm}, the debugger of the pydbgauto watch in pid {owner})"
    return f"pid {tracer} ({comm})"


def check_attachable(pid: int, *, require_dotnet: bool = True) -> None:
    """Refuse, with the real cause, a pid that no debugger could attach to: out of range, gone, a zombie,
    already traced, another user's (without privilege), or (``require_dotnet``) not running .NET.

    Meant to run before any debugger starts; the same checks explain an attach that failed.
    """
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        raise ConfigurationError(f"pid must be a positive integer, not {pid!r}")
    if pid > _pid_max():
        raise NoSuchProcessError(f"no process with pid {pid}: pids on this system end at {_pid_max()}")
    state = state_of(pid)
    if state is None:
        raise NoSuchProcessError(f"no process with pid {pid}: check the pid (it may have exited)")
    if state in ("Z", "X"):
        raise TargetError(
            f"pid {pid} is a zombie (state {state}): it has exited and only waits for its parent to reap "
            "it; there is nothing left to debug"
        )
    try:
        status = _status(pid)
    except OSError:
        raise NoSuchProcessError(f"no process with pid {pid}: it exited just now") from None
    tracer = int(status.get("TracerPid", "0") or 0)
    if tracer:
        raise AlreadyTracedError(
            f"pid {pid} is already traced by {_describe_tracer(tracer)}: a process can have only one "
            "debugger; stop that debugger (or that watch) first"
        )
    uid = int(status.get("Uid", "0").split()[1] if status.get("Uid") else 0)  # effective uid
    if os.geteuid() != 0 and uid != os.geteuid():
        raise TargetError(
            f"permission denied: pid {pid} belongs to user id {uid}, not to you (user id {os.geteuid()}); "
            "run pydbgauto as that user (or as root)"
        )
    obstacle = ptrace_access.refusal(pid, status)
    if obstacle:
        raise TargetError(f"permission denied: {obstacle}")
    if not require_dotnet:
        return
    try:
        with open(f"/proc/{pid}/maps", encoding="utf-8", errors="replace") as f:
            maps = f.read()
    except PermissionError:
        raise TargetError(
            f"permission denied reading /proc/{pid}/maps: this user may not debug pid {pid} "
            "(run as its owner or as root)"
        ) from None
    except OSError:
        raise NoSuchProcessError(f"no process with pid {pid}: it exited just now") from None
    if RUNTIME_LIBRARY not in maps and single_file.runtime_info(f"/proc/{pid}/exe") is None:
        raise NotDotnetError(
            f"pid {pid} ({_names_of(pid)[0] if _names_of(pid) else '?'}) has no {RUNTIME_LIBRARY} "
            "loaded: it does not run .NET (Core); give the pid of the .NET process"
        )


def wait_for_runtime(pid: int, timeout: Optional[float], poll: float = 0.1) -> None:
    """Wait until a just-started process has loaded the .NET runtime (``--name X --wait``)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        try:
            check_attachable(pid)
            return
        except NotDotnetError:
            if deadline is not None and time.monotonic() > deadline:
                raise
        time.sleep(poll)


def memory_size(pid: int) -> int:
    """Bytes a full core of ``pid`` can take: the sizes of its readable mappings (an upper bound:
    all-zero pages become holes in pydbgauto's cores)."""
    total = 0
    try:
        with open(f"/proc/{pid}/maps", encoding="utf-8", errors="replace") as f:
            for line in f:
                fields = line.split()
                if len(fields) >= 2 and fields[1].startswith("r"):
                    start, _, end = fields[0].partition("-")
                    total += int(end, 16) - int(start, 16)
    except OSError:
        return 0
    return total


def _pid_max() -> int:
    try:
        with open("/proc/sys/kernel/pid_max") as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return 4194304
