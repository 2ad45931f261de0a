"""lost_forks.py: what the agent sends at a fork, vfork or vfork-done stop lldb left undone (pure parts;
the real case, a target starting processes under interrupts, is tests/integration/test_fast_filter.py)."""

from __future__ import annotations

import subprocess

from pydbgauto.drivers.lldb import lost_forks
from pydbgauto.drivers.lldb.lost_forks import FORK, VFORK, VFORK_DONE, plan
from pydbgauto.processes import tracer_of

SITES = [0x7FFFF7FCC060, 0x7FFFF7A00010]


def test_a_lost_vfork_takes_the_breakpoints_out_then_lets_the_child_go():
    assert plan([(1, 0), (VFORK, 0x4F07)], SITES, lambda child: True) == [
        "z0,7ffff7fcc060,1",
        "z0,7ffff7a00010,1",
        "D;4f07",
    ]


def test_a_lost_vfork_done_puts_them_back():
    assert plan([(VFORK_DONE, 0)], SITES, lambda child: True) == ["Z0,7ffff7fcc060,1", "Z0,7ffff7a00010,1"]


def test_a_fork_child_is_let_go_and_a_child_lldb_let_go_is_left_alone():
    assert plan([(FORK, 0x10)], SITES, lambda child: True) == ["D;10"]
    assert plan([(VFORK, 0x10), (FORK, 0x11)], SITES, lambda child: False) == []
    assert plan([(3, 1), (5, 19)], SITES, lambda child: True) == []  # a breakpoint, a signal: nothing


class _Location:  # test double of lldb's SBBreakpointLocation
    def __init__(self, address: int, enabled: bool = True, resolved: bool = True) -> None:
        self.address, self.enabled, self.resolved = address, enabled, resolved

    def IsEnabled(self) -> bool:  # noqa: N802 - lldb's names
        return self.enabled

    def IsResolved(self) -> bool:  # noqa: N802
        return self.resolved

    def GetLoadAddress(self) -> int:  # noqa: N802
        return self.address


class _Breakpoint:  # test double of SBBreakpoint
    def __init__(self, *locations: _Location, enabled: bool = True, valid: bool = True) -> None:
        self.locations, self.enabled, self.valid = locations, enabled, valid

    def IsValid(self) -> bool:  # noqa: N802
        return self.valid

    def IsEnabled(self) -> bool:  # noqa: N802
        return self.enabled

    def GetNumLocations(self) -> int:  # noqa: N802
        return len(self.locations)

    def GetLocationAtIndex(self, i: int) -> _Location:  # noqa: N802
        return self.locations[i]


class _Target:  # test double of SBTarget: user breakpoints, and lldb's internal ones by negative id
    def __init__(self, user, internal) -> None:  # type: ignore[no-untyped-def]
        self.user, self.internal = user, internal

    def breakpoint_iter(self):  # type: ignore[no-untyped-def]
        return iter(self.user)

    def FindBreakpointByID(self, bp_id: int) -> _Breakpoint:  # noqa: N802
        return self.internal.get(bp_id, _Breakpoint(valid=False))


def test_enabled_sites_counts_lldbs_own_breakpoints_and_each_address_once():
    target = _Target(
        [
            _Breakpoint(_Location(0x30), _Location(0x20)),
            _Breakpoint(_Location(0x20)),  # a second breakpoint at one address: one site
            _Breakpoint(_Location(0x40), enabled=False),
            _Breakpoint(_Location(0x50, enabled=False), _Location(0x60, resolved=False)),
        ],
        {-1: _Breakpoint(_Location(0x10)), -3: _Breakpoint(_Location(0x70))},  # ids with a gap
    )
    assert lost_forks.enabled_sites(target) == [0x10, 0x20, 0x30, 0x70]


def test_tracer_of():
    child = subprocess.Popen(["sleep", "5"])
    try:
        assert tracer_of(child.pid) == 0
    finally:
        child.kill()
        child.wait()
    assert tracer_of(child.pid) == 0  # gone
