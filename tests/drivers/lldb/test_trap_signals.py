"""The stub's trap when another signal stops the thread first (trap_signals.py): each throw handled once."""

from __future__ import annotations

from pydbgauto.drivers.lldb.trap_signals import TrapSignals

SP, THROW, NEXT_THROW = 0x7FFD_0000_1000, 0x7F70_3D81_8C50, 0x7F70_3D81_8E78
T = 4242


def test_a_trap_alone_is_handled_at_its_sigurg():
    traps = TrapSignals()
    assert traps.urg_at_trap(T, (SP, THROW))
    assert traps.urg_at_trap(T, (SP, NEXT_THROW))  # the next throw at the same depth
    assert (traps.early, traps.dropped) == (0, 0)


def test_a_sigstop_at_the_trap_is_the_trap_and_its_sigurg_that_follows_is_dropped():
    traps = TrapSignals()
    assert traps.other_signal_at_trap(T, (SP, THROW))
    assert not traps.urg_at_trap(T, (SP, THROW))
    assert traps.urg_at_trap(T, (SP, NEXT_THROW))
    assert (traps.early, traps.dropped) == (1, 1)


def test_the_owed_sigurg_that_comes_after_the_thread_ran_on_is_dropped_not_passed():
    """Seen in the trace of a lost throw: SIGSTOP at the trap, then SIGURG at a managed pc."""
    traps = TrapSignals()
    assert traps.other_signal_at_trap(T, (SP, THROW))
    assert traps.urg_elsewhere(T)
    assert not traps.urg_elsewhere(T)  # a later SIGURG there is the target's own
    assert traps.urg_at_trap(T, (SP, NEXT_THROW))


def test_a_signal_behind_a_trap_already_reported_is_the_same_throw():
    traps = TrapSignals()
    assert traps.urg_at_trap(T, (SP, THROW))
    assert not traps.other_signal_at_trap(T, (SP, THROW))
    assert not traps.urg_elsewhere(T)  # nothing owed
    assert traps.other_signal_at_trap(T, (SP, NEXT_THROW))  # a new throw's trap, stopped by a signal


def test_an_owed_sigurg_merged_into_the_next_traps_leaves_nothing_owed():
    """A standard signal pends once: the next throw's tgkill may be the one SIGURG for both."""
    traps = TrapSignals()
    assert traps.other_signal_at_trap(T, (SP, THROW))
    assert traps.urg_at_trap(T, (SP, NEXT_THROW))
    assert not traps.urg_elsewhere(T)
    assert traps.urg_at_trap(T, (SP, THROW + 0x1000))


def test_threads_are_kept_apart():
    traps = TrapSignals()
    assert traps.other_signal_at_trap(T, (SP, THROW))
    assert not traps.urg_elsewhere(T + 1)
    assert traps.urg_at_trap(T + 1, (SP, THROW))
    assert not traps.urg_at_trap(T, (SP, THROW))
