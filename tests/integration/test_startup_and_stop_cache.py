"""Attach runs no SOS command; a stop like an earlier one is served from the agent's stop cache and is
still exactly what SOS says (pydbgauto/drivers/lldb/stop_cache.py). Counts, never times."""

from __future__ import annotations

from typing import Dict

import pytest

from pydbgauto.session import Session
from pydbgauto.sos import parse_clrstack, parse_pe

pytestmark = pytest.mark.lldb

# SOS's commands (the agent's other commands are lldb's own: plugin load, settings, process, expr...)
SOS_COMMANDS = {"clrstack", "pe", "dumpmt", "dumpobj", "clrthreads", "ip2md", "eeversion", "bpmd", "sos"}


def commands(session: Session) -> Dict[str, int]:
    return dict(session.driver.stats()["commands"])


def sos_run(before: Dict[str, int], after: Dict[str, int]) -> int:
    return sum(after.get(name, 0) - before.get(name, 0) for name in SOS_COMMANDS)


def assert_as_sos_says(session: Session, event) -> None:  # type: ignore[no-untyped-def]
    """The event's pe and clrstack equal SOS's own at this stop, text for text."""
    truth_pe = parse_pe(session.execute(f"pe 0x{event.exception_address:x}"))
    truth_stack = parse_clrstack(session.execute("clrstack", thread_id=event.thread_id))
    assert event.exception == truth_pe and event.exception.raw.strip() == truth_pe.raw.strip()
    assert event.stack == truth_stack


def test_attach_and_arm_run_no_sos_command(waiting_app, no_lldb_left):
    with Session.attach(pid=waiting_app.pid) as s:
        s.break_on_clr_exceptions()
        ran = commands(s)
        assert sos_run({}, ran) == 0, ran
        assert sum(ran.values()) <= 12, ran  # plugin load, settings, attach, signal handling (.NET 8: expr)


@pytest.fixture
def cold_cache(tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    """An empty runtime cache (scan_cache.py) for this test's sessions: lldb inherits the variable."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("PYDBGAUTO_NO_SCAN_CACHE", raising=False)


@pytest.mark.parametrize("runtime", ["net8"])
def test_the_runtimes_signal_handlers_are_asked_for_once_per_runtime_file(
    waiting_app, cold_cache, no_lldb_left
):
    """.NET 8 arming asks the target for its SIGSEGV / SIGFPE handlers by expressions (legacy_faults.py);
    a later attach with the same libcoreclr.so breaks at the kept handlers without asking, and a null
    dereference is still caught at first chance."""
    armed = []
    for _ in range(2):
        with Session.attach(pid=waiting_app.pid) as s:
            s.break_on_clr_exceptions()
            stats = s.driver.stats()
            armed.append((stats["commands"].get("expr", 0), stats["fault_arming"]))
            waiting_app.send("nullref")
            event = s.wait_for_event(60)
            assert event.exception.type == "System.NullReferenceException"
            assert event.stack.frames and "NullDereference" in str(event.stack)
    (asked, first), (asked_again, again) = armed
    assert asked == 2 and asked_again == 0, armed
    assert first["faults"] == again["faults"] == "runtime-handlers" and first["handlers"] == again["handlers"]


@pytest.mark.parametrize("runtime", ["net8"])
def test_the_thread_slots_checked_in_one_session_serve_the_next(waiting_app, cold_cache, no_lldb_left):
    """.NET 8 reads a throw's object from the runtime's Thread object, checked against a bare pe at the
    first LTO_CHECKS stops of a session; the slots are kept with libcoreclr.so, so the next session's
    repeated stops run no SOS command from its second stop on, and each is still what SOS says."""
    ran_per_session = []
    for _ in range(2):
        with Session.attach(pid=waiting_app.pid) as s:
            s.break_on_clr_exceptions()
            ran = []
            for _ in range(4):
                before = commands(s)
                waiting_app.send("invalid-op")
                event = s.wait_for_event(60)
                ran.append(sos_run(before, commands(s)))
                assert event.exception.type == "System.InvalidOperationException"
                assert_as_sos_says(s, event)
            ran_per_session.append((ran, s.driver.stats()["thread_slots_kept"]))
    (first, kept_before), (second, kept_after) = ran_per_session
    assert not kept_before and kept_after, ran_per_session
    assert all(n >= 1 for n in first[1:3]), ran_per_session  # the bare pe of the checks
    assert second[1:] == [0, 0, 0], ran_per_session


def test_the_exception_layout_learnt_in_one_session_serves_the_next(waiting_app, cold_cache, no_lldb_left):
    """System.Exception's field offsets come from one dumpobj at a session's first stop; they are kept
    with the runtime's files (exception_layout.py), so the next session's first stop runs no dumpobj,
    and its repeated stops are still served from the stop cache, as SOS says."""
    dumpobjs = []
    for _ in range(2):
        with Session.attach(pid=waiting_app.pid) as s:
            s.break_on_clr_exceptions()
            for _ in range(3):
                waiting_app.send("invalid-op")
                event = s.wait_for_event(60)
                assert_as_sos_says(s, event)
            stats = s.driver.stats()
            dumpobjs.append(stats["commands"].get("dumpobj", 0))
            assert stats["stop_cache"]["pe_hits"] >= 1, stats["stop_cache"]
    assert dumpobjs == [1, 0], dumpobjs


def test_a_repeated_stop_costs_no_sos_command_and_is_still_right(waiting_app, no_lldb_left):
    with Session.attach(pid=waiting_app.pid) as s:
        s.break_on_clr_exceptions()
        seen = []
        for i in range(6):
            before = commands(s)
            waiting_app.send("invalid-op")
            event = s.wait_for_event(60)
            # The first stop at a place runs SOS, later ones are remembered; .NET 8 checks its read of the
            # thread's last thrown object against a bare pe at its first LTO_CHECKS (3) stops.
            if i >= 4:
                assert sos_run(before, commands(s)) == 0
            assert event.exception.type == "System.InvalidOperationException"
            assert event.stack.frames and "ThrowInvalidOperation" in str(event.stack)
            assert_as_sos_says(s, event)
            seen.append(event.exception_address)
        assert len(set(seen)) == 6  # a new object at each throw, never the remembered one's address
        cache = s.driver.stats()["stop_cache"]
        assert cache["stack_hits"] >= 4 and cache["pe_hits"] >= 4, cache
        # found by the frame-pointer chain, without lldb's unwinding (frame_chain.py)
        assert cache["chain_hits"] >= 4, cache


def test_other_threads_types_and_messages_are_not_served_from_the_cache(waiting_app, no_lldb_left):
    """Same type on new threads (other stacks), other types and inner exceptions at other places: each
    event is SOS's own answer (the cache may only serve a provably identical stop)."""
    with Session.attach(pid=waiting_app.pid) as s:
        s.break_on_clr_exceptions()
        for command, events in (("invalid-op", 1), ("invalid-op", 1), ("threads 3", 3), ("custom", 1)):
            waiting_app.send(command)
            for _ in range(events):
                assert_as_sos_says(s, s.wait_for_event(60))
        waiting_app.send("inner")
        inner = s.wait_for_event(60)  # the inner exception, then the one that wraps it
        assert_as_sos_says(s, inner)
        outer = s.wait_for_event(60)
        assert_as_sos_says(s, outer)
        assert outer.exception.inner_address == inner.exception_address
        waiting_app.send("rethrow")
        for _ in range(2):  # the throw, then the rethrow of the same object (its stack trace is not empty)
            assert_as_sos_says(s, s.wait_for_event(60))


def test_a_watch_filtered_in_the_debugger_logs_resumed_stops_while_it_runs(app, tmp_path, no_lldb_left):
    """The agent's resumed stops reach the decision log during the watch, not all at its end (so neither
    lldb nor Python holds a long watch's worth of them)."""
    import os
    import threading

    import pydbgauto as pda
    from pydbgauto.watching import watch

    dumps = tmp_path / "dumps"
    dumps.mkdir()
    log_path = os.path.join(str(dumps), "pydbgauto-decisions.jsonl")
    done = threading.Event()
    lines_while_running = []

    def watcher() -> None:
        try:
            watch(
                launch=[app, "storm", "200", "6"],
                # decided in the agent at every stop: every storm message ("storm") has the regex's
                # literal, so neither the type cache nor .NET 8's message prefilter passes these throws
                when=pda.message_matches("^storm(?!$)"),
                dump_dir=str(dumps),
                max_dumps=1,
                timeout=120,
                verify=False,
            )
        finally:
            done.set()

    thread = threading.Thread(target=watcher)
    thread.start()
    while not done.wait(0.2):
        if os.path.exists(log_path):
            with open(log_path) as f:
                count = sum(1 for _ in f)
            if not done.is_set() and count:
                lines_while_running.append(count)
    thread.join()
    # the log grew in steps while the watch ran (had it been written at the end, it would jump once)
    assert len(set(lines_while_running)) >= 2, lines_while_running
