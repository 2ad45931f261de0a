"""Why the kernel would refuse this user a debugger on a process of its own (Linux, ``ptrace_may_access``).

Without root or CAP_SYS_PTRACE, a process of the same user can still be out of reach (docs/linux.md, "As a
normal user"):

- it is not dumpable: its program gained privileges when it started (file capabilities such as
  ``setcap cap_net_bind_service+ep`` on a service's apphost, setuid/setgid) or it turned dumping off;
  /proc/PID/maps and friends then belong to root;
- it holds capabilities the debugger does not (systemd ``AmbientCapabilities=``: the process stays
  dumpable, but a tracer needs at least its permitted set);
- Yama's ``kernel.yama.ptrace_scope`` is 1 (only a descendant may attach: lldb-server never is the
  target's parent), 2 (CAP_SYS_PTRACE only) or 3 (no attach at all).
"""

from __future__ import annotations

import os
from typing import Dict, Optional

CAP_SYS_PTRACE = 19
YAMA_SCOPE = "/proc/sys/kernel/yama/ptrace_scope"
_CAP_NAMES = {
    0: "cap_chown",
    1: "cap_dac_override",
    2: "cap_dac_read_search",
    5: "cap_kill",
    6: "cap_setgid",
    7: "cap_setuid",
    10: "cap_net_bind_service",
    12: "cap_net_admin",
    13: "cap_net_raw",
    19: "cap_sys_ptrace",
    21: "cap_sys_admin",
    24: "cap_sys_resource",
}
_AS_ROOT = "run pydbgauto as root (or give it CAP_SYS_PTRACE)"


def _caps(status: Dict[str, str], field: str) -> int:
    try:
        return int(status.get(field, "0"), 16)
    except ValueError:
        return 0


def _own_status() -> Dict[str, str]:
    fields: Dict[str, str] = {}
    try:
        with open("/proc/self/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                fields[key] = value.strip()
    except OSError:
        pass
    return fields


def may_debug_others() -> bool:
    """Root, or CAP_SYS_PTRACE in the effective set: may attach to other users' processes."""
    return os.geteuid() == 0 or bool(_caps(_own_status(), "CapEff") >> CAP_SYS_PTRACE & 1)


def cap_names(mask: int) -> str:
    return ", ".join(_CAP_NAMES.get(bit, f"capability {bit}") for bit in range(64) if mask >> bit & 1)


def refusal(pid: int, status: Dict[str, str]) -> Optional[str]:
    """What keeps this (unprivileged) user from debugging its own ``pid``, or None; ``status`` is the
    target's /proc/PID/status as a dict."""
    if may_debug_others():
        return None
    uids = status.get("Uid", "").split()
    try:
        owner = os.stat(f"/proc/{pid}/maps").st_uid
    except OSError:
        return None
    if len(uids) > 1 and owner != int(uids[1]):
        return (
            f"pid {pid} is not dumpable: its program gained privileges when it started (file "
            "capabilities, e.g. setcap cap_net_bind_service on its apphost, or setuid/setgid) or it turned "
            f"dumping off, so the kernel lets only root or CAP_SYS_PTRACE debug it: {_AS_ROOT}"
        )
    extra = _caps(status, "CapPrm") & ~_caps(_own_status(), "CapPrm")
    if extra:
        return (
            f"pid {pid} holds capabilities this user's debugger does not ({cap_names(extra)}); the kernel "
            f"lets only a debugger with at least those (or CAP_SYS_PTRACE) attach: {_AS_ROOT}"
        )
    return None


def yama_refusal(scope_path: str = YAMA_SCOPE) -> Optional[str]:
    """Why Yama refuses this user's attach (``scope_path``: the sysctl's file), or None. Not checked up front:
    a target may have allowed its debugger with prctl(PR_SET_PTRACER); it explains an attach that failed."""
    try:
        with open(scope_path) as f:
            scope = int(f.read().strip())
    except (OSError, ValueError):
        return None
    if scope >= 3:  # root too
        return "kernel.yama.ptrace_scope is 3: no process may be attached to until the next boot"
    if may_debug_others():
        return None
    if scope == 1:
        return (
            "kernel.yama.ptrace_scope is 1: without CAP_SYS_PTRACE a debugger may attach only to its own "
            "descendants; launch the program under pydbgauto instead (watch -- PROGRAM ARGS), "
            f"{_AS_ROOT}, or set kernel.yama.ptrace_scope=0 (sysctl, as root)"
        )
    if scope == 2:
        return f"kernel.yama.ptrace_scope is 2: only CAP_SYS_PTRACE may attach: {_AS_ROOT}"
    return None
