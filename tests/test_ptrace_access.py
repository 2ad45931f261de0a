"""pydbgauto.ptrace_access on this machine; the refusals a normal user meets are in
tests/integration/test_normal_user.py (they need a non-root user)."""

from __future__ import annotations

import os

from pydbgauto import ptrace_access


def test_capability_names():
    assert ptrace_access.cap_names(1 << 10) == "cap_net_bind_service"
    assert ptrace_access.cap_names(1 << 10 | 1 << 40) == "cap_net_bind_service, capability 40"


def test_privilege_is_root_or_cap_sys_ptrace(tmp_path):
    with open("/proc/self/status") as f:
        eff = int(next(line for line in f if line.startswith("CapEff:")).split()[1], 16)
    assert ptrace_access.may_debug_others() == (os.geteuid() == 0 or bool(eff >> 19 & 1))
    fake = tmp_path / "ptrace_scope"  # stands in for the sysctl's file
    fake.write_text("3\n")
    assert "is 3: no process may be attached" in (ptrace_access.yama_refusal(str(fake)) or "")
    if ptrace_access.may_debug_others():  # nothing else stops a privileged debugger
        fake.write_text("2\n")
        assert ptrace_access.yama_refusal(str(fake)) is None
        assert ptrace_access.refusal(os.getpid(), {"Uid": "0 0 0 0", "CapPrm": "ffffffffff"}) is None
