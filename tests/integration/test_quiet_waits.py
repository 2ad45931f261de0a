"""A wait with the predicate in the debugger stops the target only at its own stops.

The watch logs the stops the debugger's filter resumed as they come (``flush_after``): the wait ends at the
first such stop past the interval, where the target is stopped anyway, never by breaking in. Counted by
the agent (its ``interrupts`` and ``flushes``) and by the target's state, never timed.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from typing import Iterator, List

import pytest

import pydbgauto as pda
from pydbgauto.errors import DebuggerTimeoutError
from pydbgauto.models import StopEvent
from pydbgauto.session import Session
from pydbgauto.watching import watch
from tests.integration.conftest import process_state, stopped_state, tracer_of

pytestmark = pytest.mark.lldb

IOE = "System.InvalidOperationException"
NOWHERE = pda.thrown_in("NoSuchMethodAnywhere")  # decided by the agent at every stop: all filtered


@pytest.fixture(autouse=True)
def every_throw_stops(monkeypatch: pytest.MonkeyPatch) -> None:
    """These waits are about stops the agent resumes: the throw-site keys (throw_sites.py), which let
    NOWHERE's throws go without a stop (or without clrstack), are off."""
    monkeypatch.setenv("PYDBGAUTO_NO_THROW_SITES", "1")


def test_an_idle_target_is_not_broken_into_while_waiting(waiting_app, no_lldb_left):
    with Session.attach(pid=waiting_app.pid) as s:
        s.break_on_clr_exceptions()
        assert s.set_filter(NOWHERE)
        before = s.driver.stats()  # type: ignore[attr-defined]
        with pytest.raises(DebuggerTimeoutError):
            s.wait_for_event(1.5, flush_after=0.05)
        after = s.driver.stats()  # type: ignore[attr-defined]
    assert after["interrupts"] - before["interrupts"] == 1  # the time limit's, at the end: no slices
    assert after["flushes"] == before["flushes"]  # no stop came, so none to end the wait at


@pytest.fixture
def busy_machine() -> Iterator[None]:
    """Two processes spinning on the two cores: the interrupt then often lands in lldb's step over a
    breakpoint (5 runs of 5 without rehits.py saw a throw logged twice)."""
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    try:
        yield
    finally:
        for p in spinners:
            p.kill()
            p.wait()


def test_filtered_stops_are_flushed_at_their_own_stops(waiting_app, busy_machine, no_lldb_left):
    """Every throw stops in the agent and is resumed (a stack predicate): each wait ends with resumed
    throws to log, at one of those stops (a flush) or, for the last of a burst, by an interrupt; every
    throw is logged once (under load an interrupt used to make lldb report a breakpoint hit twice:
    drivers/lldb/rehits.py); an idle wait after them is interrupted only by its time limit."""
    throws = 300
    with Session.attach(pid=waiting_app.pid) as s:
        s.break_on_clr_exceptions()
        assert s.set_filter(NOWHERE)
        before = s.driver.stats()  # type: ignore[attr-defined]
        waiting_app.send(f"repeat {throws}")
        logged: List[StopEvent] = []
        waits = 0
        deadline = time.monotonic() + 60
        while len(logged) < throws and time.monotonic() < deadline:
            with pytest.raises(DebuggerTimeoutError):
                s.wait_for_event(20, flush_after=0.01)
            waits += 1
            batch = s.take_filtered()
            assert batch, (f"wait {waits} ended with nothing to log", len(logged), waiting_app.lines[-2:])
            logged.extend(batch)
        middle = s.driver.stats()  # type: ignore[attr-defined]
        with pytest.raises(DebuggerTimeoutError):
            s.wait_for_event(0.5, flush_after=0.01)  # the app ends its repeat meanwhile, and idles
        assert s.take_filtered() == []
        assert waiting_app.wait_for_line(f"OK repeat {throws}", 10)
        after = s.driver.stats()  # type: ignore[attr-defined]
    assert len(logged) == throws and waits >= 2, (len(logged), waits, middle["rehits"])
    assert len({e.exception_address for e in logged}) == throws
    assert {e.exception_type for e in logged} == {IOE}
    flushes, interrupts = (middle[k] - before[k] for k in ("flushes", "interrupts"))
    assert flushes + interrupts == waits and flushes >= 1
    assert (after["flushes"], after["interrupts"]) == (middle["flushes"], middle["interrupts"] + 1)


def test_a_watch_holds_the_target_only_for_its_matches(waiting_app, tmp_path, no_lldb_left):
    """Sampled every half millisecond: once its match's dump is checked, the watched target (idle now) is
    never seen stopped for the second that the samples go on."""
    pid = waiting_app.pid
    states: List[str] = []
    sampling = threading.Event()

    def sample() -> None:
        while not sampling.is_set():
            time.sleep(0.0005)
        while sampling.is_set():
            state = stopped_state(pid)
            if not states or states[-1] != state:
                states.append(state)
            time.sleep(0.0005)

    def on_event(kind: str, data: dict) -> None:
        if kind == "armed":
            sampling.set()
            waiting_app.send("invalid-op")
        elif kind == "dump-done":
            states.append("dump-done")
            time.sleep(1.0)  # idle and watched, while the samples go on
            sampling.clear()

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        result = watch(
            pid=pid,
            when=pda.exception_type(IOE),
            dump_dir=str(tmp_path),
            max_dumps=2,  # the watch waits on after the first
            timeout=6,
            poll_interval=0.02,
            on_event=on_event,
        )
    finally:
        sampling.clear()
        sampler.join()
    assert result.ended == "timeout" and len(result.dumps) == 1
    assert "t" in states[: states.index("dump-done")]  # the samples saw the stop of the match
    after = states[states.index("dump-done") + 1 :]
    assert after and "t" not in after, states


@pytest.mark.parametrize("filtered", [True, False], ids=["in-debugger", "callable"])
def test_a_watch_with_a_stop_is_broken_into_only_to_end(waiting_app, filtered, tmp_path, no_lldb_left):
    """``stop=`` (watch_all's shared stop, the pytest fixture's): the target is never stopped to look at
    it (every thread stopped: conftest.stopped_state); setting it breaks in once and the watch ends
    "stopped", the target running, untraced."""
    pid = waiting_app.pid
    states: List[str] = []
    armed, stop = threading.Event(), threading.Event()
    outcome: dict = {}

    def run() -> None:
        outcome["result"] = watch(
            pid=pid,
            when=pda.exception_type(IOE) if filtered else (lambda exc: False),
            dump_dir=str(tmp_path),
            timeout=60,
            stop=stop,
            poll_interval=0.02,
            on_event=lambda kind, data: armed.set() if kind == "armed" else None,
        )

    watcher = threading.Thread(target=run)
    watcher.start()
    assert armed.wait(60)
    while stopped_state(pid) == "t":  # the attach's stop, until the first wait
        time.sleep(0.0005)
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        state = stopped_state(pid)
        if not states or states[-1] != state:
            states.append(state)
        time.sleep(0.0005)
    stop.set()
    watcher.join(30)
    assert not watcher.is_alive() and outcome["result"].ended == "stopped"
    assert "t" not in states, states
    assert tracer_of(pid) == 0 and process_state(pid) in ("R", "S")
